"""The public contract: request and response bodies of the HTTP API.

Requests are strict: numbers must be JSON numbers (``true`` is not ``1``, ``"3"`` is not
``3``), dates must be ``YYYY-MM-DD`` strings, unknown fields are rejected and every string
and list is bounded. These models are separate from the domain types on purpose: the
contract changes only when we decide it should.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic.json_schema import WithJsonSchema

from app.domain.movement import Axis, Demand, Position
from app.domain.types import (
    AbilityLevel,
    Aim,
    Category,
    Change,
    ConditionKind,
    Contraindication,
    DirectionalPreference,
    DoseVariable,
    Equipment,
    Phase,
    RecommendationStatus,
    RedFlag,
    ReferralUrgency,
    Section,
    SessionFocus,
    Side,
    SymptomChange,
)
from app.settings import HISTORY_SESSIONS_CEILING

# The service's ids (users, episodes, sessions, recommendations, cards) are UUIDs in their
# canonical form; anything else names nothing and is refused with 422 before any query.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_only(value: Any) -> Any:
    # Lax pydantic would read 0 as 1970-01-01; the contract accepts only ISO date strings.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date string in the form YYYY-MM-DD")
    return value


def plausible_date(value: date) -> date:
    # Keeps date arithmetic (a date plus a rest interval) far from the calendar's ends.
    if not date(1900, 1, 1) <= value <= date(2100, 12, 31):
        raise ValueError("must be between 1900-01-01 and 2100-12-31")
    return value


IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date_only),
    AfterValidator(plausible_date),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            # The range the service accepts, 1900-01-01 to 2100-12-31, as a pattern.
            "pattern": r"^(19[0-9]{2}|20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
            "description": "A date, YYYY-MM-DD, from 1900-01-01 to 2100-12-31.",
        }
    ),
]


# RFC 3339 with its offset, the year from 1901 to 2099: whatever the offset (at most a day),
# the moment then exists in UTC and stays inside the 1900-2100 calendar dates live in.
_INSTANT_PATTERN = (
    r"^(190[1-9]|19[1-9][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_INSTANT = re.compile(_INSTANT_PATTERN)


def _rfc3339_only(value: Any) -> Any:
    # Lax pydantic would read a number as seconds since 1970, and any year at all.
    if not isinstance(value, str) or not _INSTANT.match(value):
        raise ValueError(
            "must be an RFC 3339 date-time with its offset (2026-11-24T10:05:31Z), "
            "from 1901 to 2099"
        )
    return value


def _in_utc(value: datetime) -> datetime:
    # Stored and compared in UTC: converted here, at the edge, never in the database layer.
    return value.astimezone(UTC)


# A moment with its offset, as the service accepts it everywhere: kept in UTC.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_only),
    AfterValidator(_in_utc),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": _INSTANT_PATTERN,
            "description": "A moment with its UTC offset (RFC 3339), from 1901 to 2099.",
        }
    ),
]


def _whole(value: Any) -> Any:
    # JSON Schema counts 42.0 as an integer; booleans and strings stay refused (strict).
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# Last in an Annotated, so the range constraints still publish as minimum and maximum.
WHOLE = BeforeValidator(_whole)
Pain = Annotated[int, Field(strict=True, ge=0, le=10, description="0 (none) to 10 (worst)"), WHOLE]
Effort = Annotated[
    int, Field(strict=True, ge=0, le=10, description="0 (rest) to 10 (maximal)"), WHOLE
]
Flag = Annotated[bool, Field(strict=True)]
ExerciseId = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=80)]


# The ages the rules were written for (adolescents to the very old), inclusive.
AGES = (13, 110)


def _int(low: int, high: int, description: str) -> Any:
    return Field(strict=True, ge=low, le=high, description=description)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DoseIn(_Request):
    sets: Annotated[int, _int(1, 20, "Sets"), WHOLE]
    reps: Annotated[int | None, _int(1, 200, "Reps per set (per side when per_side)"), WHOLE] = None
    hold_seconds: Annotated[int | None, _int(1, 3600, "Hold per rep, seconds"), WHOLE] = None
    duration_seconds: Annotated[int | None, _int(1, 7200, "Continuous work, seconds"), WHOLE] = None
    load_kg: Annotated[
        float | None,
        Field(strict=True, ge=0, le=500, allow_inf_nan=False, description="Added load, kg"),
    ] = None
    per_side: Flag = False
    rest_seconds: Annotated[int, _int(0, 600, "Rest between sets, seconds"), WHOLE] = 0
    per_week: Annotated[int, _int(1, 7, "Days a week"), WHOLE] = 3
    per_day: Annotated[int, _int(1, 12, "Times a day"), WHOLE] = 1


class ProfileIn(_Request):
    age: Annotated[int, _int(*AGES, "Age in years"), WHOLE]
    ability: AbilityLevel = AbilityLevel.BEGINNER
    equipment: Annotated[list[Equipment], Field(max_length=len(Equipment))] = Field(
        default_factory=list,
        description="Kit the person has; household items (chair, wall, towel ...) are assumed.",
    )
    contraindications: Annotated[
        list[Contraindication], Field(max_length=len(Contraindication))
    ] = Field(default_factory=list)
    minutes_available: Annotated[int, _int(10, 120, "Minutes for one session"), WHOLE] = 30


class ConditionIn(_Request):
    kind: ConditionKind
    onset_date: IsoDate = Field(description="When the current episode began; not after today.")
    baseline_pain: Pain = Field(description="Typical pain (0-10) at the start of the programme.")
    red_flags: Annotated[list[RedFlag], Field(max_length=len(RedFlag))] = Field(
        default_factory=list
    )
    side: Side = Side.NONE
    directional_preference: DirectionalPreference = DirectionalPreference.UNKNOWN
    stenosis_like_symptoms: Flag = Field(
        default=False,
        description="Leg symptoms brought on by standing or walking, eased by sitting or bending.",
    )


class ExerciseResultIn(_Request):
    exercise_id: ExerciseId
    prescribed: DoseIn
    performed: DoseIn | None = Field(default=None, description="What was done; null if skipped.")
    completed: Flag = True
    pain_during: Pain | None = None
    pain_after: Pain | None = None
    effort: Effort | None = None
    symptom_change: SymptomChange = SymptomChange.STABLE
    slot: ExerciseId | None = Field(
        default=None,
        description="The `slot` the recommendation gave this exercise; lets a swapped-in "
        "exercise keep its place in the programme.",
    )


class SessionIn(_Request):
    date: IsoDate
    completed: Flag = Field(default=True, description="False when the session was missed.")
    exercises: Annotated[list[ExerciseResultIn], Field(max_length=40)] = Field(default_factory=list)
    pain_before: Pain | None = None
    pain_after: Pain | None = None
    next_day_pain: Pain | None = Field(default=None, description="Pain the next morning (0-10).")
    symptom_change: SymptomChange = SymptomChange.STABLE
    new_numbness_or_tingling: Flag = False


_EXAMPLE_DOSE = {"sets": 1, "reps": 10, "per_week": 5, "rest_seconds": 30}
RECOMMENDATION_REQUEST_EXAMPLE: dict[str, Any] = {
    "profile": {
        "age": 42,
        "ability": "intermediate",
        "equipment": ["band"],
        "contraindications": [],
        "minutes_available": 30,
    },
    "condition": {
        "kind": "sciatica",
        "onset_date": "2026-10-01",
        "baseline_pain": 5,
        "red_flags": [],
        "side": "left",
        "directional_preference": "extension",
    },
    "history": [
        {
            "date": "2026-11-19",
            "pain_before": 3,
            "next_day_pain": 2,
            "exercises": [
                {
                    "exercise_id": "sciatic-slider-supine",
                    "prescribed": _EXAMPLE_DOSE,
                    "performed": _EXAMPLE_DOSE,
                    "pain_during": 1,
                    "pain_after": 1,
                    "effort": 4,
                    "symptom_change": "stable",
                    "slot": "sciatic-nerve-glide",
                }
            ],
        },
        {
            "date": "2026-11-21",
            "pain_before": 2,
            "next_day_pain": 2,
            "exercises": [
                {
                    "exercise_id": "sciatic-slider-supine",
                    "prescribed": _EXAMPLE_DOSE,
                    "performed": _EXAMPLE_DOSE,
                    "pain_during": 1,
                    "pain_after": 0,
                    "effort": 4,
                    "symptom_change": "centralising",
                    "slot": "sciatic-nerve-glide",
                }
            ],
        },
    ],
    "today": "2026-11-24",
}


class RecommendationRequest(_Request):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [RECOMMENDATION_REQUEST_EXAMPLE]}
    )

    profile: ProfileIn
    condition: ConditionIn
    history: Annotated[list[SessionIn], Field(max_length=HISTORY_SESSIONS_CEILING)] = Field(
        default_factory=list, description="Past sessions, any order; the newest matter most."
    )
    today: IsoDate | None = Field(
        default=None,
        description="The date to plan for; the server's date if omitted. Pass it to replay.",
    )


# ---------------------------------------------------------------------------------------------
# Responses


class _Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DoseOut(_Response):
    sets: int
    reps: int | None
    hold_seconds: int | None
    duration_seconds: int | None
    load_kg: float | None
    per_side: bool
    rest_seconds: int
    per_week: int
    per_day: int


class ReasonOut(_Response):
    code: str = Field(description="Stable reason code (see GET /v1/ruleset).")
    message: str
    rule: str = Field(description="The named rule that produced this reason.")
    thresholds: list[str] = Field(description="Threshold ids the rule used (GET /v1/ruleset).")


class ExerciseDecisionOut(_Response):
    exercise_id: str
    name: str
    section: Section | None
    change: Change
    reasons: list[ReasonOut]
    dose: DoseOut | None
    previous_exercise_id: str | None
    previous_dose: DoseOut | None
    ladder: str
    level: int
    slot: str = Field(description="The programme slot it fills; echo it back in history.")
    minutes: float
    side: Side
    cautions: list[str]


class ReferralOut(_Response):
    urgency: ReferralUrgency
    flags: list[RedFlag]
    message: str
    reasons: list[ReasonOut]


class ClinicianReviewOut(_Response):
    required: bool
    reasons: list[ReasonOut]


class AvoidItemOut(_Response):
    id: str
    text: str
    because: str = Field(description="The condition or contraindication that adds this item.")


class EducationPointOut(_Response):
    id: str
    topic: str
    text: str


class ProgrammePositionOut(_Response):
    phase: Phase
    phase_number: int
    phases_total: int
    week: int
    programme_weeks: int
    completed_sessions: int
    expected_weeks_to_meaningful_change: int
    complete: bool
    next_phase: Phase | None
    next_phase_criteria: str


class ScheduleOut(_Response):
    next_session_date: date
    next_session_focus: SessionFocus
    rest_days_before_next_hard_session: int


class MaintenancePlanOut(_Response):
    sessions_per_week: int
    exercise_ids: list[str]
    advice: list[str]


class TraceStepOut(_Response):
    rule: str
    subject: str
    outcome: str
    detail: str


_RESPONSE_EXAMPLE: dict[str, Any] = {
    "status": "ok",
    "condition": "sciatica",
    "today": "2026-11-24",
    "ruleset_version": "1.0.0+8ddc4c94f806",
    "focus": "full",
    "summary": "Calm phase: 1 progressed, 4 new.",
    "exercises": [
        {
            "exercise_id": "sciatic-slider-supine",
            "name": "Sciatic nerve slider lying down",
            "section": "mobility",
            "change": "progressed",
            "reasons": [
                {
                    "code": "two_green_sessions",
                    "message": "The last 2 sessions ...",
                    "rule": "progress_after_green_sessions",
                    "thresholds": ["green_sessions_to_progress"],
                }
            ],
            "dose": {
                "sets": 1,
                "reps": 12,
                "hold_seconds": None,
                "duration_seconds": None,
                "load_kg": None,
                "per_side": False,
                "rest_seconds": 30,
                "per_week": 5,
                "per_day": 1,
            },
            "previous_exercise_id": "sciatic-slider-supine",
            "previous_dose": None,
            "ladder": "sciatic-nerve-glide",
            "level": 1,
            "slot": "sciatic-nerve-glide",
            "minutes": 1.4,
            "side": "left",
            "cautions": [],
        }
    ],
    "removed": [],
    "total_minutes": 14.5,
    "referral": None,
    "status_reasons": [],
    "avoid": [],
    "safety_notes": [],
    "clinician_review": {"required": False, "reasons": []},
    "education": [],
    "programme": None,
    "schedule": None,
    "maintenance_plan": None,
    "trace": [
        {"rule": "triage_red_flags", "subject": "condition", "outcome": "clear", "detail": ""}
    ],
}


class RecommendationOut(_Response):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_RESPONSE_EXAMPLE]}
    )

    status: RecommendationStatus
    condition: ConditionKind
    today: date
    ruleset_version: str = Field(description="Rules version + hash of catalog and thresholds.")
    focus: SessionFocus | None
    summary: str
    exercises: list[ExerciseDecisionOut] = Field(description="Today's session, in order.")
    removed: list[ExerciseDecisionOut] = Field(description="Left out today, with reasons.")
    total_minutes: float
    referral: ReferralOut | None
    status_reasons: list[ReasonOut] = Field(
        description="Why the status is refer or rest; with ok, why a clinician is asked for "
        "before anything new is added (repeated flares)."
    )
    avoid: list[AvoidItemOut]
    safety_notes: list[str]
    clinician_review: ClinicianReviewOut
    education: list[EducationPointOut]
    programme: ProgrammePositionOut | None
    schedule: ScheduleOut | None
    maintenance_plan: MaintenancePlanOut | None
    trace: list[TraceStepOut]


# ---------------------------------------------------------------------------------------------
# Catalog


class BoundOut(BaseModel):
    start: float
    min: float
    max: float
    step: float


class DoseTemplateOut(BaseModel):
    sets: BoundOut
    reps: BoundOut | None
    hold_seconds: BoundOut | None
    duration_seconds: BoundOut | None
    load_kg: BoundOut | None
    per_week: BoundOut
    per_day: BoundOut | None
    per_side: bool
    rest_seconds: int
    tempo_seconds: float
    progression: list[DoseVariable]


class ContraindicationNoteOut(BaseModel):
    level: str
    note: str


class ExerciseOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "glute-bridge",
                    "name": "Glute bridge",
                    "category": "strength",
                    "aims": ["strength"],
                    "movement_pattern": "hip-extension",
                    "spinal_direction": "neutral",
                    "ladder": "glute-bridge",
                    "level": 2,
                    "position": "supine",
                    "purpose": "Strengthens the buttocks and thighs with repeated hip lifts.",
                    "demands": [],
                    "difficulty": {"base": 0, "load": 0, "pace": 1, "range": 0},
                    "trade_offs": {},
                    "equipment": [],
                    "minutes_estimate": 0.7,
                    "conditions": {
                        "strain": "suitable",
                        "sciatica": "suitable",
                        "posture": "suitable",
                        "overuse": "suitable",
                    },
                    "condition_notes": {},
                    "contraindications": {},
                    "alternatives": ["bird-dog"],
                    "instructions": "Lie on your back ...",
                    "cues": ["Squeeze your buttocks", "..."],
                    "dose": {
                        "sets": {"start": 1, "min": 1, "max": 1, "step": 1},
                        "reps": None,
                        "hold_seconds": None,
                        "duration_seconds": None,
                        "load_kg": None,
                        "per_week": {"start": 3, "min": 2, "max": 4, "step": 1},
                        "per_day": None,
                        "per_side": False,
                        "rest_seconds": 45,
                        "tempo_seconds": 3,
                        "progression": ["reps", "variant"],
                    },
                }
            ]
        }
    )

    id: str
    name: str
    category: Category
    aims: list[Aim]
    movement_pattern: str
    spinal_direction: str
    ladder: str
    level: int
    position: Position = Field(description="Where the body is: lying, kneeling, sitting ...")
    purpose: str = Field(description="Why the exercise is in a programme, in one line.")
    demands: list[Demand] = Field(
        description="What it does that an avoid list may rule out (lifting a load, twisting "
        "to the end of the range ...)."
    )
    difficulty: dict[Axis, int] = Field(
        description="Its rating on each axis its ladder rises on (support, lever, load, "
        "range, base, pace, senses); compare it only with the other levels of the same "
        "ladder."
    )
    trade_offs: dict[Axis, str] = Field(
        description="Axes on which it is easier than the level below, and why it is harder overall."
    )
    equipment: list[Equipment]
    minutes_estimate: float = Field(
        description="Minutes at an adult's starting dose (below the older-adult age)."
    )
    conditions: dict[ConditionKind, str]
    condition_notes: dict[ConditionKind, str]
    contraindications: dict[Contraindication, ContraindicationNoteOut]
    alternatives: list[str]
    instructions: str
    cues: list[str]
    dose: DoseTemplateOut


_BRIDGE_HOLD_EXAMPLE: dict[str, Any] = {
    "id": "bridge-hold",
    "name": "Bridge hold",
    "category": "strength",
    "aims": ["strength", "endurance"],
    "movement_pattern": "hip-extension",
    "spinal_direction": "neutral",
    "ladder": "glute-bridge",
    "level": 1,
    "position": "supine",
    "purpose": "Wakes up the buttock muscles by lifting the hips and holding them still.",
    "demands": [],
    "difficulty": {"base": 0, "load": 0, "pace": 0, "range": 0},
    "trade_offs": {},
    "equipment": [],
    "minutes_estimate": 1.2,
    "conditions": {
        "strain": "suitable",
        "sciatica": "suitable",
        "posture": "suitable",
        "overuse": "suitable",
    },
    "condition_notes": {},
    "contraindications": {
        "pregnancy": {"level": "caution", "note": "From about 16 weeks, lying flat ..."},
        "hypertension": {"level": "caution", "note": "Breathe steadily through every hold ..."},
    },
    "alternatives": ["sit-to-stand", "bird-dog-leg-reach"],
    "instructions": "Lie on your back with your knees bent ...",
    "cues": ["Squeeze your buttocks to lift; don't push your lower back into an arch.", "..."],
    "dose": {
        "sets": {"start": 1, "min": 1, "max": 1, "step": 1},
        "reps": {"start": 5, "min": 3, "max": 8, "step": 1},
        "hold_seconds": {"start": 10, "min": 5, "max": 30, "step": 5},
        "duration_seconds": None,
        "load_kg": None,
        "per_week": {"start": 2, "min": 2, "max": 3, "step": 1},
        "per_day": None,
        "per_side": False,
        "rest_seconds": 20,
        "tempo_seconds": 3,
        "progression": ["hold_seconds", "reps", "variant", "per_week"],
    },
}


class ExercisePage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_BRIDGE_HOLD_EXAMPLE], "total": 7, "limit": 1, "offset": 0}]
        }
    )

    items: list[ExerciseOut]
    total: int = Field(description="How many exercises match the filters.")
    limit: int
    offset: int


class SlotOut(BaseModel):
    ladder: str
    start: dict[AbilityLevel, int]
    max_level: int
    priority: int
    when_directional: list[DirectionalPreference]


class PhaseOut(BaseModel):
    id: Phase
    goal: str
    min_days_since_onset: int
    min_completed_sessions: int
    max_recent_pain: int
    slots: list[SlotOut]


class AvoidSpecOut(BaseModel):
    id: str
    text: str


class EducationSpecOut(BaseModel):
    id: str
    topic: str
    text: str
    phases: list[Phase]


class ConditionProtocolOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "posture",
                    "name": "Poor posture",
                    "emphasis": "Build endurance ...",
                    "source": "Convention",
                    "expected_weeks_to_meaningful_change": 8,
                    "programme_weeks": 10,
                    "maintenance_sessions_per_week": 3,
                    "avoid": [{"id": "sustained-end-range", "text": "Staying at end range ..."}],
                    "education": [],
                    "safety_notes": [],
                    "phases": [],
                }
            ]
        }
    )

    kind: ConditionKind
    name: str
    emphasis: str
    source: str
    expected_weeks_to_meaningful_change: int
    programme_weeks: int
    maintenance_sessions_per_week: int
    avoid: list[AvoidSpecOut]
    education: list[EducationSpecOut]
    safety_notes: list[str]
    phases: list[PhaseOut]


class ThresholdOut(BaseModel):
    id: str
    value: float
    unit: str
    description: str
    source: str


class RuleOut(BaseModel):
    name: str = Field(description="The rule's name, as reasons and trace steps cite it.")
    stage: Literal[
        "triage", "review", "programme", "selection", "progression", "easing", "scheduling"
    ] = Field(description="The decision stage the rule belongs to.")
    statement: str = Field(description="The rule in plain words, to check against its source.")
    source: str = Field(description="Where the rule comes from.")


class SignalOut(BaseModel):
    name: str
    meaning: str
    thresholds: list[str] = Field(description="The thresholds that define the signal.")


class RedFlagOut(BaseModel):
    flag: RedFlag
    concern: str
    urgency: ReferralUrgency
    text: str
    only_with_fracture_risk: bool


class RulesetOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ruleset_version": "1.0.0+8ddc4c94f806",
                    "rules_version": "1.0.0",
                    "rules": ["triage_red_flags", "progress_after_green_sessions"],
                    "rulebook": [
                        {
                            "name": "regress_on_pain_flare",
                            "stage": "progression",
                            "statement": "Pain during the exercise above the acceptable band "
                            "lowers its dose one step.",
                            "source": "Silbernagel 2007 (pain during above 5/10 is too much)",
                        }
                    ],
                    "signals": [
                        {
                            "name": "flare",
                            "meaning": "Pain during an exercise above the acceptable band, ...",
                            "thresholds": ["pain_acceptable_max", "next_day_pain_rise_allowed"],
                        }
                    ],
                    "thresholds": [
                        {
                            "id": "pain_safe_max",
                            "value": 2,
                            "unit": "pain NRS 0-10",
                            "description": "...",
                            "source": "Silbernagel 2007",
                        }
                    ],
                    "red_flags": [],
                    "reason_codes": {"two_green_sessions": "The last ..."},
                }
            ]
        }
    )

    ruleset_version: str
    rules_version: str
    rules: list[str] = Field(
        description="Every rule a reason or trace step can cite, in stage order; within the "
        "progression stage, in precedence order."
    )
    rulebook: list[RuleOut] = Field(
        description="The same rules with their stage, plain-words statement and source."
    )
    signals: list[SignalOut] = Field(
        description="The signals the rules read (green, flare, alert, ...), each defined once."
    )
    thresholds: list[ThresholdOut]
    red_flags: list[RedFlagOut]
    reason_codes: dict[str, str] = Field(description="Every reason code and its message template.")


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "ruleset_version": "1.0.0+8ddc4c94f806", "exercises": 116}
            ]
        }
    )

    status: str
    ruleset_version: str
    exercises: int


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ready", "database": "postgresql", "schema_revision": "0d3c5c13d57e"}
            ]
        }
    )

    status: Literal["ready"]
    database: Literal["sqlite", "postgresql"]
    schema_revision: str = Field(description="The migration the database is at (its head).")


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. history[0].date")
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/invalid-input",
                    "title": "Invalid input",
                    "status": 422,
                    "detail": "profile.age: Input should be a valid integer",
                    "errors": [
                        {
                            "field": "profile.age",
                            "message": "Input should be a valid integer",
                            "type": "int_type",
                        }
                    ],
                }
            ]
        }
    )

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
