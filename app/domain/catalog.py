"""The catalog's shape: exercises, ladders, condition protocols, red flags and thresholds.

These models validate the data files once at start-up (``app.catalog.loader`` reads them);
the engine then reads the frozen ``Catalog`` through its precomputed indexes. Every number
that steers a decision lives in ``Thresholds`` with a unit and a source.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.domain.movement import PURPOSE_OF_PATTERN, Axis, Demand, Position
from app.domain.types import (
    AbilityLevel,
    Aim,
    AvoidItem,
    Category,
    ConditionKind,
    Contraindication,
    DirectionalPreference,
    DoseVariable,
    EducationPoint,
    Equipment,
    Phase,
    RedFlag,
    ReferralUrgency,
    Section,
)

__all__ = [
    "HARD_CATEGORIES",
    "SECTION_OF",
    "STAND_IN_FAMILIES",
    "Catalog",
    "ConditionProtocol",
    "DoseTemplate",
    "EpisodeStage",
    "Exercise",
    "PhaseSpec",
    "RedFlagSpec",
    "Slot",
    "Threshold",
    "Thresholds",
]

# How long the episode has run: acute (under 6 weeks), subacute (6-12), persistent (over 12).
EpisodeStage = Literal["acute", "subacute", "persistent"]
EPISODE_STAGES: tuple[EpisodeStage, ...] = ("acute", "subacute", "persistent")

Slug = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=80)]
Text = Annotated[str, Field(min_length=3, max_length=1200)]

# Where each category sits in a session; the order of ``Section`` is the order of the session.
SECTION_OF: dict[Category, Section] = {
    Category.AEROBIC_WARM_UP: Section.WARM_UP,
    Category.DYNAMIC_STRETCH: Section.MOBILITY,
    Category.DIRECTIONAL_MOBILITY: Section.MOBILITY,
    Category.NERVE_GLIDE: Section.MOBILITY,
    Category.ISOMETRIC: Section.STRENGTH_STABILITY,
    Category.STRENGTH: Section.STRENGTH_STABILITY,
    Category.CORE_STABILITY: Section.STRENGTH_STABILITY,
    Category.FUNCTIONAL: Section.STRENGTH_STABILITY,
    Category.BALANCE: Section.STRENGTH_STABILITY,
    Category.POSTURE: Section.STRENGTH_STABILITY,
    Category.ENDURANCE: Section.ENDURANCE,
    Category.STATIC_STRETCH: Section.STRETCH,
    Category.RELAXATION: Section.COOL_DOWN,
    Category.HABIT: Section.HABITS,
}

# Loading categories: the ones that need recovery days between sessions (overuse: never two
# such days in a row).
HARD_CATEGORIES = frozenset(
    {
        Category.ISOMETRIC,
        Category.STRENGTH,
        Category.CORE_STABILITY,
        Category.FUNCTIONAL,
        Category.ENDURANCE,
    }
)


# The broad families a stand-in must share with the exercise it replaces. A category may
# belong to more than one family when its exercises really do both jobs.
#
# - aerobic: continuous rhythmic work that raises the heart rate (walking, marching,
#   cycling). The ACSM's warm-up is light aerobic activity (Garber CE et al. 2011, Med Sci
#   Sports Exerc 43:1334), so a warm-up is only ever replaced by another one (see
#   tests/catalog/test_alternatives.py) and endurance walking by aerobic work.
# - mobility: unloaded movement or positions that restore range and ease symptoms:
#   stretches, directional movements, nerve glides, and relaxation (the calm end of the same
#   job; it is where a cool-down's stretching sits too).
# - loading: muscles working to hold or move the body against a load: isometric holds,
#   strength, trunk stability, functional tasks and balance. These build capacity; a stretch
#   in their place drops the training stimulus, and one of them in place of a stretch adds a
#   hard day the programme did not plan (overuse: never two loading days in a row).
# - posture drills (chin tucks, wall and floor angels) are low-load holds for the neck and
#   shoulder-blade muscles taken through the end of the shoulder's range: their aims are
#   control with mobility or strength, so they belong to mobility and to loading.
# - habit: a posture check or movement break happens through the day, not in the session.
#   Only another habit stands in for it: a chin tuck or a march in its place would move a
#   habit into the session's time.
#
# A stand-in also shares a purpose with what it replaces (``Exercise.purposes``, from its
# movement pattern): an angel is posture work for the shoulders, not a row.
STAND_IN_FAMILIES: dict[Category, frozenset[str]] = {
    Category.AEROBIC_WARM_UP: frozenset({"aerobic"}),
    Category.ENDURANCE: frozenset({"aerobic"}),
    Category.DYNAMIC_STRETCH: frozenset({"mobility"}),
    Category.DIRECTIONAL_MOBILITY: frozenset({"mobility"}),
    Category.NERVE_GLIDE: frozenset({"mobility"}),
    Category.STATIC_STRETCH: frozenset({"mobility"}),
    Category.RELAXATION: frozenset({"mobility"}),
    Category.POSTURE: frozenset({"mobility", "loading"}),
    Category.ISOMETRIC: frozenset({"loading"}),
    Category.STRENGTH: frozenset({"loading"}),
    Category.CORE_STABILITY: frozenset({"loading"}),
    Category.FUNCTIONAL: frozenset({"loading"}),
    Category.BALANCE: frozenset({"loading"}),
    Category.HABIT: frozenset({"habit"}),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Bound(_Frozen):
    """A dose variable's starting value, its floor and ceiling, and one progression step."""

    start: float
    min: float
    max: float
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Bound:
        if not self.min <= self.start <= self.max:
            raise ValueError(f"needs min <= start <= max, got {self.min}, {self.start}, {self.max}")
        return self


class DoseTemplate(_Frozen):
    sets: Bound
    reps: Bound | None = None
    hold_seconds: Bound | None = None
    duration_seconds: Bound | None = None
    load_kg: Bound | None = None
    per_week: Bound
    per_day: Bound | None = None
    per_side: bool = False
    rest_seconds: int = Field(ge=0, le=600)
    tempo_seconds: float = Field(default=3.0, gt=0, le=20)
    progression: tuple[DoseVariable, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> DoseTemplate:
        if self.reps is None and self.hold_seconds is None and self.duration_seconds is None:
            raise ValueError("a dose needs reps, hold_seconds or duration_seconds")
        for variable in self.progression:
            if variable is not DoseVariable.VARIANT and self.bound(variable) is None:
                raise ValueError(f"progression names {variable.value} but the dose has no bound")
        if len(set(self.progression)) != len(self.progression):
            raise ValueError("progression lists a variable twice")
        return self

    def bound(self, variable: DoseVariable) -> Bound | None:
        if variable is DoseVariable.VARIANT:
            return None
        bound: Bound | None = getattr(self, variable)
        return bound


class ContraindicationNote(_Frozen):
    level: Literal["caution", "avoid"]
    note: Text


class Exercise(_Frozen):
    id: Slug
    name: Annotated[str, Field(min_length=3, max_length=80)]
    category: Category
    aims: tuple[Aim, ...] = Field(min_length=1)
    movement_pattern: Slug
    spinal_direction: Literal["neutral", "flexion", "extension", "rotation", "side_bend"]
    ladder: Slug
    level: int = Field(ge=1, le=10)
    position: Position
    demands: tuple[Demand, ...] = Field(
        default=(), description="What it does that an avoid list may name."
    )
    difficulty: dict[Axis, Annotated[int, Field(ge=0, le=9)]] = Field(
        default_factory=dict,
        description="Its rating on each axis its ladder rises on (compared within the ladder).",
    )
    trade_offs: dict[Axis, Text] = Field(
        default_factory=dict,
        description="Axes on which it is easier than the level below, and why it is harder.",
    )
    purpose: Text
    equipment: tuple[Equipment, ...] = ()
    conditions: dict[ConditionKind, Literal["suitable", "caution", "avoid"]]
    condition_notes: dict[ConditionKind, Text] = Field(default_factory=dict)
    contraindications: dict[Contraindication, ContraindicationNote] = Field(default_factory=dict)
    dose: DoseTemplate
    alternatives: tuple[Slug, ...] = ()
    symptom_free_to_enter: bool = Field(
        default=False,
        description="Progress into this variant only after symptom-free sessions (tensioners).",
    )
    instructions: Annotated[str, Field(min_length=40, max_length=1500)]
    cues: tuple[Text, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _covers_every_condition(self) -> Exercise:
        missing = set(ConditionKind) - set(self.conditions)
        if missing:
            raise ValueError(f"conditions must rate every condition; missing {sorted(missing)}")
        if self.movement_pattern not in PURPOSE_OF_PATTERN:
            raise ValueError(f"movement_pattern {self.movement_pattern} has no purpose")
        return self

    # Cached: every decision reads them for every exercise it weighs.

    @cached_property
    def section(self) -> Section:
        return SECTION_OF[self.category]

    @cached_property
    def hard(self) -> bool:
        return self.category in HARD_CATEGORIES

    @cached_property
    def purposes(self) -> frozenset[str]:
        return PURPOSE_OF_PATTERN[self.movement_pattern]


class Threshold(_Frozen):
    value: float
    unit: Text
    description: Text
    source: Text


class Thresholds(_Frozen):
    """Every number the rules use. Field names are the ids that reasons cite."""

    pain_safe_max: Threshold
    pain_acceptable_max: Threshold
    next_day_pain_rise_allowed: Threshold
    weekly_pain_rise_points: Threshold
    pain_trend_days: Threshold
    early_weeks_days: Threshold
    repeated_flares_count: Threshold
    repeated_flares_window_days: Threshold
    subacute_from_days: Threshold
    persistent_from_days: Threshold
    pain_alert_min: Threshold
    green_sessions_to_progress: Threshold
    effort_headroom_max: Threshold
    effort_too_hard_min: Threshold
    stopped_direction_days: Threshold
    long_gap_days: Threshold
    volume_growth_cap_pct: Threshold
    volume_growth_window_days: Threshold
    history_window_days: Threshold
    history_window_sessions: Threshold
    load_step_max_pct: Threshold
    load_step_min_kg: Threshold
    stretch_hold_min_seconds: Threshold
    stretch_hold_max_seconds: Threshold
    older_adult_age: Threshold
    older_stretch_hold_min_seconds: Threshold
    older_stretch_hold_max_seconds: Threshold
    stretch_total_seconds: Threshold
    warm_up_minutes: Threshold
    hard_session_min_gap_days: Threshold
    overuse_hard_session_min_gap_days: Threshold
    meaningful_change_points: Threshold
    meaningful_change_pct: Threshold
    no_change_review_weeks: Threshold
    new_pain_days: Threshold
    risk_age_over: Threshold
    risk_age_under: Threshold
    fracture_risk_age: Threshold
    flexion_bias_age: Threshold
    set_change_seconds: Threshold
    sciatica_single_side_required: Threshold

    @model_validator(mode="after")
    def _coherent(self) -> Thresholds:
        checks = [
            (self.pain_safe_max, self.pain_acceptable_max, "pain_safe_max <= pain_acceptable_max"),
            (
                self.pain_acceptable_max,
                self.pain_alert_min,
                "pain_acceptable_max <= pain_alert_min",
            ),
            (
                self.effort_headroom_max,
                self.effort_too_hard_min,
                "effort_headroom_max <= effort_too_hard_min",
            ),
            (
                self.stretch_hold_min_seconds,
                self.stretch_hold_max_seconds,
                "stretch_hold_min_seconds <= stretch_hold_max_seconds",
            ),
            (
                self.older_stretch_hold_min_seconds,
                self.older_stretch_hold_max_seconds,
                "older_stretch_hold_min_seconds <= older_stretch_hold_max_seconds",
            ),
        ]
        for low, high, rule in checks:
            if low.value > high.value:
                raise ValueError(f"thresholds must satisfy {rule}")
        if self.sciatica_single_side_required.value not in (0, 1):
            raise ValueError("sciatica_single_side_required is a flag: 0 or 1")
        self._window_covers_every_look_back()
        return self

    def _window_covers_every_look_back(self) -> None:
        """The decision window must reach past every rule's look-back, or that rule would
        miss sessions it reads: a decision reads nothing older than the window."""
        window = self.history_window_days
        for name in ("history_window_days", "history_window_sessions"):
            value = getattr(self, name).value
            if value < 1 or not float(value).is_integer():
                raise ValueError(f"{name} must be a whole number of at least 1")
        # These rules reach back to sessions exactly that many days old, and the window's
        # oldest day is history_window_days - 1 days ago: the window must be longer.
        for name in (
            "stopped_direction_days",
            "long_gap_days",
            "volume_growth_window_days",
            "pain_trend_days",
            "repeated_flares_window_days",
        ):
            if window.value <= getattr(self, name).value:
                raise ValueError(f"thresholds must satisfy history_window_days > {name}")
        # The week-on-week pain rule compares this week with the last: two whole weeks.
        if window.value < 14:
            raise ValueError("thresholds must satisfy history_window_days >= 14")
        # The green gate needs that many sessions of one exercise; ask for room to spare.
        needed = 2 * self.green_sessions_to_progress.value
        if self.history_window_sessions.value < needed:
            raise ValueError(
                "thresholds must satisfy history_window_sessions >= 2 * green_sessions_to_progress"
            )


class Slot(_Frozen):
    """One place in a phase's session, filled from a ladder at a level fitted to the person."""

    ladder: Slug
    start: dict[AbilityLevel, int]
    max_level: int = Field(ge=1, le=10)
    priority: int = Field(ge=1, le=9, description="1 is kept first when time is short")
    when_directional: tuple[DirectionalPreference, ...] = ()
    optional_for: dict[Contraindication, Text] = Field(
        default_factory=dict,
        description="Contraindications for which nothing may fill the slot, and why it is "
        "left out for them.",
    )

    @model_validator(mode="after")
    def _starts(self) -> Slot:
        if set(self.start) != set(AbilityLevel):
            raise ValueError("start needs a level for every ability")
        if any(level > self.max_level for level in self.start.values()):
            raise ValueError("a start level exceeds max_level")
        return self


class PhaseSpec(_Frozen):
    id: Phase
    goal: Text
    min_days_since_onset: int = Field(ge=0)
    min_completed_sessions: int = Field(ge=0)
    max_recent_pain: int = Field(ge=0, le=10)
    slots: tuple[Slot, ...] = Field(min_length=2)

    @cached_property
    def slots_by_direction(self) -> dict[DirectionalPreference, tuple[Slot, ...]]:
        """The slots that apply under each directional preference: every slot that names
        no preference, and those that name this one."""
        return {
            direction: tuple(
                s for s in self.slots if not s.when_directional or direction in s.when_directional
            )
            for direction in DirectionalPreference
        }


class AvoidSpec(_Frozen):
    id: Slug
    text: Text
    demands: tuple[Demand, ...] = Field(
        default=(), description="What an exercise does that this item rules out."
    )
    positions: tuple[Position, ...] = Field(
        default=(), description="Positions it rules out (lying face down in pregnancy)."
    )
    exercise_flag: Literal["caution", "avoid"] = Field(
        default="avoid",
        description="How an exercise that does it must be flagged: a long spell is avoided, "
        "a short one in an exercise calls for care.",
    )
    phases: tuple[Phase, ...] = Field(
        default=(), description="The phases it applies in; none listed means all of them."
    )


class EducationSpec(_Frozen):
    id: Slug
    topic: Literal[
        "posture",
        "lifting",
        "movement_breaks",
        "staying_active",
        "sleep",
        "diet",
        "pain",
        "pacing",
        "condition",
    ]
    text: Text
    phases: tuple[Phase, ...] = Field(min_length=1)
    stages: tuple[EpisodeStage, ...] = Field(
        default=EPISODE_STAGES,
        min_length=1,
        description="The episode stages the point fits (acute, subacute, persistent).",
    )


class ConditionProtocol(_Frozen):
    kind: ConditionKind
    name: Text
    emphasis: Text
    source: Text
    expected_weeks_to_meaningful_change: int = Field(ge=1, le=52)
    programme_weeks: int = Field(ge=1, le=52)
    maintenance_sessions_per_week: int = Field(ge=1, le=7)
    avoid: tuple[AvoidSpec, ...] = Field(min_length=1)
    education: tuple[EducationSpec, ...] = Field(min_length=1)
    safety_notes: tuple[Text, ...] = ()
    phases: tuple[PhaseSpec, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _phases_in_order(self) -> ConditionProtocol:
        order = list(Phase)
        ids = [p.id for p in self.phases]
        if ids != sorted(ids, key=order.index) or len(set(ids)) != len(ids):
            raise ValueError("phases must be distinct and in programme order")
        return self

    @cached_property
    def entry_criteria(self) -> tuple[tuple[int, int, int], ...]:
        """Each phase's (min_days_since_onset, min_completed_sessions, max_recent_pain), in
        order: the phase replay checks them for every training day of every decision."""
        return tuple(
            (p.min_days_since_onset, p.min_completed_sessions, p.max_recent_pain)
            for p in self.phases
        )

    # What every recommendation for the condition states, built once (the values are frozen).

    @cached_property
    def avoid_items(self) -> tuple[AvoidItem, ...]:
        return tuple(AvoidItem(a.id, a.text, self.kind.value) for a in self.avoid)

    @cached_property
    def education_by_phase(self) -> dict[tuple[Phase, EpisodeStage], tuple[EducationPoint, ...]]:
        """Each phase's education points for each episode stage, in catalog order."""
        return {
            (phase, stage): tuple(
                EducationPoint(id=e.id, topic=e.topic, text=e.text)
                for e in self.education
                if phase in e.phases and stage in e.stages
            )
            for phase in Phase
            for stage in EPISODE_STAGES
        }


class RedFlagSpec(_Frozen):
    flag: RedFlag
    concern: Literal["fracture", "tumour_or_infection", "cauda_equina"]
    urgency: ReferralUrgency
    text: Text
    only_with_fracture_risk: bool = False


class PositionNote(_Frozen):
    """A caution every exercise done in these positions carries for the person."""

    positions: tuple[Position, ...] = Field(min_length=1)
    note: Text


class ProfileAdvice(_Frozen):
    contraindication: Contraindication
    avoid: tuple[AvoidSpec, ...] = ()
    safety_notes: tuple[Text, ...] = ()
    position_notes: tuple[PositionNote, ...] = ()
    clinician_review: bool = False

    @cached_property
    def note_for_position(self) -> dict[Position, str]:
        return {p: n.note for n in self.position_notes for p in n.positions}

    @cached_property
    def avoid_items(self) -> tuple[AvoidItem, ...]:
        return tuple(AvoidItem(a.id, a.text, self.contraindication.value) for a in self.avoid)


class Catalog(_Frozen):
    """Everything the engine knows, validated, with indexes built once."""

    rules_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
    exercises: tuple[Exercise, ...]
    protocols: tuple[ConditionProtocol, ...]
    red_flags: tuple[RedFlagSpec, ...]
    profile_advice: tuple[ProfileAdvice, ...]
    household_equipment: tuple[Equipment, ...]
    thresholds: Thresholds

    @model_validator(mode="after")
    def _referentially_sound(self) -> Catalog:
        ids = [e.id for e in self.exercises]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate exercise ids: {dupes}")
        known = set(ids)
        levels: dict[tuple[str, int], str] = {}
        for exercise in self.exercises:
            key = (exercise.ladder, exercise.level)
            if key in levels:
                raise ValueError(
                    f"{exercise.id} and {levels[key]} share ladder {key[0]} level {key[1]}"
                )
            levels[key] = exercise.id
            unknown = [a for a in exercise.alternatives if a not in known or a == exercise.id]
            if unknown:
                raise ValueError(f"{exercise.id}: unknown alternatives {unknown}")
        ladders = {e.ladder for e in self.exercises}
        for ladder in ladders:
            got = sorted(level for (name, level) in levels if name == ladder)
            if got != list(range(1, len(got) + 1)):
                raise ValueError(f"ladder {ladder} levels must run 1..n without gaps, got {got}")
            rungs = [e for e in self.exercises if e.ladder == ladder]
            axes = {frozenset(e.difficulty) for e in rungs}
            if len(rungs) > 1 and (len(axes) != 1 or not next(iter(axes))):
                raise ValueError(f"ladder {ladder}: every level rates itself on the same axes")
        kinds = [p.kind for p in self.protocols]
        if sorted(kinds) != sorted(ConditionKind):
            raise ValueError("need exactly one protocol per condition")
        for protocol in self.protocols:
            for phase in protocol.phases:
                for slot in phase.slots:
                    if slot.ladder not in ladders:
                        raise ValueError(
                            f"{protocol.kind.value}/{phase.id.value}: unknown ladder {slot.ladder}"
                        )
                    for ability, level in slot.start.items():
                        start = self.at_level(slot.ladder, level)
                        if start is not None and start.symptom_free_to_enter:
                            raise ValueError(
                                f"{protocol.kind.value}/{phase.id.value}/{slot.ladder}: "
                                f"{ability.value} may not start on {start.id}; it is reached "
                                "only from symptom-free sessions"
                            )
                    top = max(level for (name, level) in levels if name == slot.ladder)
                    if slot.max_level > top:
                        raise ValueError(
                            f"{protocol.kind.value}/{phase.id.value}/{slot.ladder}: "
                            f"max_level {slot.max_level} above the ladder's top {top}"
                        )
        warm_up = self.thresholds.warm_up_minutes.value * 60
        for exercise in self.exercises:
            duration = exercise.dose.duration_seconds
            if exercise.category is Category.AEROBIC_WARM_UP and (
                duration is None or duration.start != warm_up
            ):
                raise ValueError(f"{exercise.id}: a warm-up lasts warm_up_minutes ({warm_up} s)")
        if list(self.household_equipment) != sorted(set(self.household_equipment)):
            raise ValueError("household_equipment must be sorted and without repeats")
        if {f.flag for f in self.red_flags} != set(RedFlag):
            raise ValueError("red_flags must describe every RedFlag")
        return self

    # Indexes: built on first use and kept (the model is frozen, the data never changes).

    @cached_property
    def by_id(self) -> dict[str, Exercise]:
        return {e.id: e for e in self.exercises}

    @cached_property
    def ladders(self) -> dict[str, tuple[Exercise, ...]]:
        """Each ladder's exercises, easiest first."""
        grouped: dict[str, list[Exercise]] = {}
        for exercise in self.exercises:
            grouped.setdefault(exercise.ladder, []).append(exercise)
        return {k: tuple(sorted(v, key=lambda e: e.level)) for k, v in sorted(grouped.items())}

    @cached_property
    def household(self) -> frozenset[Equipment]:
        return frozenset(self.household_equipment)

    @cached_property
    def ladder_ids(self) -> dict[str, tuple[str, ...]]:
        return {name: tuple(e.id for e in steps) for name, steps in self.ladders.items()}

    @cached_property
    def _families(self) -> dict[tuple[str, frozenset[str]], tuple[str, ...]]:
        return {}

    def slot_family(self, ladder: str, slot_ladders: frozenset[str]) -> tuple[str, ...]:
        """A slot's ladder plus the alternatives it may have been swapped for.

        ``slot_ladders`` are every ladder the condition's protocol uses in any phase: an
        alternative from one of those is that slot's own exercise, not a swap, so it never
        takes over another slot when the phase changes. Memoised per protocol."""
        key = (ladder, slot_ladders)
        family = self._families.get(key)
        if family is None:
            family = self.ladder_ids[ladder] + tuple(
                alt
                for alt in self.ladder_alternatives[ladder]
                if self.by_id[alt].ladder not in slot_ladders
            )
            self._families[key] = family
        return family

    @cached_property
    def ladder_alternatives(self) -> dict[str, tuple[str, ...]]:
        """Every alternative named by any exercise of a ladder, in ladder order, no repeats."""
        out: dict[str, tuple[str, ...]] = {}
        for name, steps in self.ladders.items():
            seen: dict[str, None] = {}
            for exercise in steps:
                for alt in exercise.alternatives:
                    if self.by_id[alt].ladder != name:
                        seen.setdefault(alt, None)
            out[name] = tuple(seen)
        return out

    @cached_property
    def protocol_ladders(self) -> dict[ConditionKind, frozenset[str]]:
        """Every ladder a condition's protocol uses, across all its phases."""
        return {
            p.kind: frozenset(s.ladder for phase in p.phases for s in phase.slots)
            for p in self.protocols
        }

    @cached_property
    def protocol_for(self) -> dict[ConditionKind, ConditionProtocol]:
        return {p.kind: p for p in self.protocols}

    @cached_property
    def red_flag_spec(self) -> dict[RedFlag, RedFlagSpec]:
        return {f.flag: f for f in self.red_flags}

    @cached_property
    def advice_for(self) -> dict[Contraindication, ProfileAdvice]:
        return {a.contraindication: a for a in self.profile_advice}

    @cached_property
    def _advice_in_order(self) -> tuple[ProfileAdvice, ...]:
        return tuple(self.advice_for[c] for c in Contraindication if c in self.advice_for)

    def advice_about(self, contraindications: frozenset[Contraindication]) -> list[ProfileAdvice]:
        """The advice for each of these contraindications that has any, in the order of
        ``Contraindication`` (so the answer never depends on set iteration order)."""
        if not contraindications:
            return []
        return [a for a in self._advice_in_order if a.contraindication in contraindications]

    @cached_property
    def ruleset_version(self) -> str:
        """The rules version plus a content hash of everything that can change a decision."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        return f"{self.rules_version}+{digest}"

    def at_level(self, ladder: str, level: int) -> Exercise | None:
        steps = self.ladders.get(ladder, ())
        return steps[level - 1] if 1 <= level <= len(steps) else None
