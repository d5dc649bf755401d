"""Value objects the rules engine reads and writes.

Inputs (``Profile``, ``Condition``, ``SessionRecord``) arrive already validated by the API
layer; outputs (``Recommendation`` and its parts) are plain frozen dataclasses so that one
decision costs microseconds, not milliseconds. Nothing here touches a clock, a file or a
network: "today" is always an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "NO_TREND",
    "AbilityLevel",
    "Aim",
    "AvoidItem",
    "Category",
    "Change",
    "ClinicianReview",
    "Condition",
    "ConditionKind",
    "Contraindication",
    "DayDigest",
    "DirectionalPreference",
    "Dose",
    "DoseVariable",
    "EducationPoint",
    "Equipment",
    "ExerciseDecision",
    "ExerciseResult",
    "HistorySummary",
    "MaintenancePlan",
    "PainResponse",
    "Phase",
    "Profile",
    "ProgrammePosition",
    "Reason",
    "Recommendation",
    "RecommendationStatus",
    "RedFlag",
    "Referral",
    "ReferralUrgency",
    "Schedule",
    "Section",
    "SessionFocus",
    "SessionRecord",
    "Side",
    "SymptomChange",
    "TraceStep",
    "Trend",
]


class ConditionKind(StrEnum):
    STRAIN = "strain"
    SCIATICA = "sciatica"
    POSTURE = "posture"
    OVERUSE = "overuse"


class Phase(StrEnum):
    """Programme phases, in the order a person moves through them."""

    CALM = "calm"
    MOBILISE = "mobilise"
    STRENGTHEN = "strengthen"
    FUNCTION = "function"
    MAINTAIN = "maintain"


class AbilityLevel(StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"


class Side(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"
    NONE = "none"


class DirectionalPreference(StrEnum):
    """The direction of repeated movement that eases or centralises symptoms."""

    EXTENSION = "extension"
    FLEXION = "flexion"
    NONE = "none"
    UNKNOWN = "unknown"


class SymptomChange(StrEnum):
    CENTRALISING = "centralising"
    STABLE = "stable"
    PERIPHERALISING = "peripheralising"


class Contraindication(StrEnum):
    """Facts about the person that rule exercises out or call for care."""

    PREGNANCY = "pregnancy"
    OSTEOPOROSIS = "osteoporosis"
    RECENT_SPINAL_SURGERY = "recent_spinal_surgery"
    HYPERTENSION = "hypertension"
    FALL_RISK = "fall_risk"


class RedFlag(StrEnum):
    """Red-flag findings (AHCPR table); any one that applies leads to referral."""

    MAJOR_TRAUMA = "major_trauma"
    MINOR_TRAUMA = "minor_trauma"
    HISTORY_OF_CANCER = "history_of_cancer"
    FEVER_OR_CHILLS = "fever_or_chills"
    UNEXPLAINED_WEIGHT_LOSS = "unexplained_weight_loss"
    IV_DRUG_USE = "iv_drug_use"
    IMMUNOSUPPRESSION = "immunosuppression"
    SEVERE_NIGHT_PAIN = "severe_night_pain"
    PAIN_WORSE_LYING_DOWN = "pain_worse_lying_down"
    SADDLE_NUMBNESS = "saddle_numbness"
    BLADDER_OR_BOWEL_DYSFUNCTION = "bladder_or_bowel_dysfunction"
    PROGRESSIVE_LEG_WEAKNESS = "progressive_leg_weakness"
    BILATERAL_LEG_SYMPTOMS = "bilateral_leg_symptoms"


class ReferralUrgency(StrEnum):
    EMERGENCY = "emergency"
    URGENT = "urgent"
    SOON = "soon"


class Equipment(StrEnum):
    """Kit an exercise may need. Household items are assumed to be at hand (catalog data)."""

    MAT = "mat"
    CHAIR = "chair"
    WALL = "wall"
    DOORWAY = "doorway"
    TOWEL = "towel"
    PILLOW = "pillow"
    BROOMSTICK = "broomstick"
    BOX = "box"
    SHOPPING_BAGS = "shopping_bags"
    BAND = "band"
    HEAVY_BAND = "heavy_band"
    DUMBBELL = "dumbbell"
    KETTLEBELL = "kettlebell"
    ANKLE_WEIGHT = "ankle_weight"
    STATIONARY_BIKE = "stationary_bike"
    BALANCE_PAD = "balance_pad"


class Category(StrEnum):
    AEROBIC_WARM_UP = "aerobic_warm_up"
    ENDURANCE = "endurance"
    DYNAMIC_STRETCH = "dynamic_stretch"
    DIRECTIONAL_MOBILITY = "directional_mobility"
    NERVE_GLIDE = "nerve_glide"
    STATIC_STRETCH = "static_stretch"
    ISOMETRIC = "isometric"
    STRENGTH = "strength"
    CORE_STABILITY = "core_stability"
    FUNCTIONAL = "functional"
    BALANCE = "balance"
    POSTURE = "posture"
    HABIT = "habit"
    RELAXATION = "relaxation"


class Aim(StrEnum):
    """The article's four aims plus the supporting ones an exercise may serve."""

    STRENGTH = "strength"
    FLEXIBILITY = "flexibility"
    ENDURANCE = "endurance"
    BALANCE = "balance"
    MOBILITY = "mobility"
    CONTROL = "control"
    RELAXATION = "relaxation"
    AWARENESS = "awareness"


class Section(StrEnum):
    """Parts of a session, in the order they are done."""

    WARM_UP = "warm_up"
    MOBILITY = "mobility"
    STRENGTH_STABILITY = "strength_stability"
    ENDURANCE = "endurance"
    STRETCH = "stretch"
    COOL_DOWN = "cool_down"
    HABITS = "habits"


class DoseVariable(StrEnum):
    """What a progression step may change, one at a time."""

    REPS = "reps"
    HOLD_SECONDS = "hold_seconds"
    DURATION_SECONDS = "duration_seconds"
    SETS = "sets"
    LOAD_KG = "load_kg"
    VARIANT = "variant"
    PER_WEEK = "per_week"
    PER_DAY = "per_day"


class PainResponse(StrEnum):
    """How one exercise went, in the pain-monitoring model's terms."""

    GREEN = "green"
    ACCEPTABLE = "acceptable"
    FLARE = "flare"
    PERIPHERALISING = "peripheralising"


class Change(StrEnum):
    NEW = "new"
    PROGRESSED = "progressed"
    MAINTAINED = "maintained"
    REGRESSED = "regressed"
    SUBSTITUTED = "substituted"
    REMOVED = "removed"


class RecommendationStatus(StrEnum):
    OK = "ok"
    REFER = "refer"
    REST = "rest"


class SessionFocus(StrEnum):
    FULL = "full"
    RECOVERY = "recovery"


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, slots=True)
class Dose:
    """One exercise's prescription. ``None`` means the variable does not apply."""

    sets: int
    reps: int | None = None
    hold_seconds: int | None = None
    duration_seconds: int | None = None
    load_kg: float | None = None
    per_side: bool = False
    rest_seconds: int = 0
    per_week: int = 3
    per_day: int = 1

    def value(self, variable: DoseVariable) -> float | None:
        """The current value of a dose variable (``variant`` has none)."""
        if variable is DoseVariable.VARIANT:
            return None
        value: float | None = getattr(self, variable)
        return value

    def with_value(self, variable: DoseVariable, value: float) -> Dose:
        """A copy with one variable set (load in kilograms, everything else whole numbers)."""
        sets, reps, hold, duration = self.sets, self.reps, self.hold_seconds, self.duration_seconds
        load, per_week, per_day = self.load_kg, self.per_week, self.per_day
        if variable is DoseVariable.LOAD_KG:
            load = float(value)
        elif variable is DoseVariable.REPS:
            reps = int(value)
        elif variable is DoseVariable.HOLD_SECONDS:
            hold = int(value)
        elif variable is DoseVariable.DURATION_SECONDS:
            duration = int(value)
        elif variable is DoseVariable.SETS:
            sets = int(value)
        elif variable is DoseVariable.PER_WEEK:
            per_week = int(value)
        elif variable is DoseVariable.PER_DAY:
            per_day = int(value)
        else:
            raise ValueError("a variant is not a dose value")
        return Dose(
            sets, reps, hold, duration, load, self.per_side, self.rest_seconds, per_week, per_day
        )

    def covers(self, target: Dose) -> bool:
        """True when this (performed) dose reached every part of ``target`` (prescribed)."""
        if self is target:
            return True  # the usual report: done as prescribed (one Dose serves both)
        if self.sets < target.sets:
            return False
        for done, asked in (
            (self.reps, target.reps),
            (self.hold_seconds, target.hold_seconds),
            (self.duration_seconds, target.duration_seconds),
            (self.load_kg, target.load_kg),
        ):
            if asked is not None and (done is None or done < asked):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Profile:
    age: int
    ability: AbilityLevel = AbilityLevel.BEGINNER
    equipment: frozenset[Equipment] = frozenset()
    contraindications: frozenset[Contraindication] = frozenset()
    minutes_available: int = 30


@dataclass(frozen=True, slots=True)
class Condition:
    kind: ConditionKind
    onset_date: date
    baseline_pain: int
    red_flags: frozenset[RedFlag] = frozenset()
    side: Side = Side.NONE
    directional_preference: DirectionalPreference = DirectionalPreference.UNKNOWN
    stenosis_like_symptoms: bool = False


@dataclass(frozen=True, slots=True)
class ExerciseResult:
    """What happened to one exercise in one logged session."""

    exercise_id: str
    prescribed: Dose
    performed: Dose | None = None
    completed: bool = True
    pain_during: int | None = None
    pain_after: int | None = None
    effort: int | None = None
    symptom_change: SymptomChange = SymptomChange.STABLE
    slot: str | None = None  # the programme slot (ladder) it filled, as recommended


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session the person was given, and how it went (``completed`` false when missed)."""

    date: date
    exercises: tuple[ExerciseResult, ...] = ()
    completed: bool = True
    pain_before: int | None = None
    pain_after: int | None = None
    next_day_pain: int | None = None
    symptom_change: SymptomChange = SymptomChange.STABLE
    new_numbness_or_tingling: bool = False


class DayDigest(NamedTuple):
    """What the trend signals keep of a training day (the history summary carries the
    last weeks of these, so the trends read the same across the window's edge)."""

    date: date
    pains: tuple[int, ...]  # the lowest pain before a session and the next-morning check
    pain_before: int | None
    flared: bool  # flared or spread symptoms


class Trend(NamedTuple):
    """The running state the trend signals need: the first session's date, the first
    weeks' pains (total and count) and the digests of the last two weeks."""

    first: date | None
    early_total: int
    early_count: int
    recent: tuple[DayDigest, ...]


NO_TREND = Trend(None, 0, 0, ())


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """The sessions before the decision window, folded: what the programme has earned so far.

    A decision reads the sessions of a bounded window in full and only this from everything
    older (``app.domain.history``). It is the phase replay's running state, so a summary is
    only as good as the condition and catalog it was folded under: fold again when either
    changes.
    """

    through: date  # date of the last session folded in (whole days are always folded)
    first_date: date  # date of the first session of the episode
    sessions: int  # sessions folded in (completed or missed)
    completed_sessions: int
    # The phase the last folded training day was planned at (select_phase's fold index, as
    # the Phase id).
    phase: Phase | None
    pain: int | None  # latest reported pain carried by the fold (None: baseline)
    held: bool  # the last folded day holds the phase (missed/flare/spread/alert)
    # Every exercise done before the window (at most the catalog's size): whether the
    # window's silence about an exercise means "never done" or "done, how it went folded".
    exercises_done: frozenset[str] = frozenset()
    # What the trend signals need from before the window (first weeks, last two weeks).
    trend: Trend = NO_TREND


# ---------------------------------------------------------------------------------------------
# Outputs


@dataclass(frozen=True, slots=True)
class Reason:
    """Why something was decided: a stable code, plain words, the rule and its thresholds."""

    code: str
    message: str
    rule: str
    thresholds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TraceStep:
    rule: str
    subject: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ExerciseDecision:
    exercise_id: str
    name: str
    section: Section | None
    change: Change
    reasons: tuple[Reason, ...]
    dose: Dose | None = None
    previous_exercise_id: str | None = None
    previous_dose: Dose | None = None
    ladder: str = ""
    level: int = 0
    slot: str = ""  # the programme slot (ladder) this exercise fills; echo it back in history
    minutes: float = 0.0
    side: Side = Side.NONE
    cautions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Referral:
    urgency: ReferralUrgency
    flags: tuple[RedFlag, ...]
    message: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class ClinicianReview:
    required: bool
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class EducationPoint:
    id: str
    topic: str
    text: str


@dataclass(frozen=True, slots=True)
class ProgrammePosition:
    phase: Phase
    phase_number: int
    phases_total: int
    week: int
    programme_weeks: int
    completed_sessions: int
    expected_weeks_to_meaningful_change: int
    complete: bool
    next_phase: Phase | None = None
    next_phase_criteria: str = ""


@dataclass(frozen=True, slots=True)
class Schedule:
    next_session_date: date
    next_session_focus: SessionFocus
    rest_days_before_next_hard_session: int


@dataclass(frozen=True, slots=True)
class MaintenancePlan:
    sessions_per_week: int
    exercise_ids: tuple[str, ...]
    advice: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AvoidItem:
    id: str
    text: str
    because: str


@dataclass(frozen=True, slots=True)
class Recommendation:
    status: RecommendationStatus
    condition: ConditionKind
    today: date
    ruleset_version: str
    focus: SessionFocus | None = None
    exercises: tuple[ExerciseDecision, ...] = ()
    removed: tuple[ExerciseDecision, ...] = ()
    total_minutes: float = 0.0
    referral: Referral | None = None
    status_reasons: tuple[Reason, ...] = ()  # why the status is refer or rest
    avoid: tuple[AvoidItem, ...] = ()
    safety_notes: tuple[str, ...] = ()
    clinician_review: ClinicianReview = field(default_factory=lambda: ClinicianReview(False))
    education: tuple[EducationPoint, ...] = ()
    programme: ProgrammePosition | None = None
    schedule: Schedule | None = None
    maintenance_plan: MaintenancePlan | None = None
    trace: tuple[TraceStep, ...] = ()
    summary: str = ""
