"""Programme: where the person stands in their condition's programme, and what it asks.

A phase is reached when all its entry criteria hold (days since onset, completed training
days, latest pain), checked in order, replayed one training day at a time; a flare can move
someone back a phase. The maintain phase also needs capability, not only weeks.
"""

from __future__ import annotations

from datetime import date

from app.domain.catalog import (
    Catalog,
    ConditionProtocol,
    EpisodeStage,
    Exercise,
    PhaseSpec,
    Slot,
)
from app.domain.history import (
    HistoryView,
    PhaseFold,
    fold_training_days,
    phase_for_day,
    phase_reached,
    resume_fold,
)
from app.domain.reasons import ReasonCode, reason
from app.domain.rules.base import Reads, Stage, rule
from app.domain.types import (
    AvoidItem,
    Condition,
    ConditionKind,
    DirectionalPreference,
    EducationPoint,
    Phase,
    Profile,
    ProgrammePosition,
    Reason,
    TraceStep,
)

__all__ = [
    "active_slots",
    "avoid_list",
    "build_session_from_phase",
    "education_for",
    "effective_direction",
    "episode_stage",
    "flexion_bias_for_stenosis",
    "profile_safety_notes",
    "programme_position",
    "read_history_window",
    "require_capability_to_maintain",
    "select_phase",
]


@rule(Stage.PROGRAMME, "Hebert 2011, Sports Health 3:534 (flexion bias over 50 with stenosis)")
def flexion_bias_for_stenosis(profile: Profile, condition: Condition, th: Reads) -> Reason | None:
    """Sciatica with stenosis-like symptoms above the age threshold, with no tested
    preference, gets a flexion bias."""
    if (
        condition.kind is ConditionKind.SCIATICA
        and condition.stenosis_like_symptoms
        and profile.age > th.flexion_bias_age.value
    ):
        return reason(
            ReasonCode.FLEXION_BIAS_FOR_AGE,
            flexion_bias_for_stenosis,
            th.cited(),
            age=int(th.flexion_bias_age.value),
        )
    return None


def effective_direction(
    profile: Profile, condition: Condition, catalog: Catalog
) -> tuple[DirectionalPreference, Reason | None]:
    """The tested preference, else a flexion bias for older people with stenosis-like signs."""
    preference = condition.directional_preference
    if preference in (DirectionalPreference.EXTENSION, DirectionalPreference.FLEXION):
        return preference, None
    why = flexion_bias_for_stenosis(profile, condition, Reads(catalog.thresholds))
    if why is not None:
        return DirectionalPreference.FLEXION, why
    return preference, None


@rule(Stage.PROGRAMME, "Clinical rules §10 (complete means capable)")
def require_capability_to_maintain(
    phase: PhaseSpec,
    before: PhaseSpec | None,
    direction: DirectionalPreference,
    profile: Profile,
    kind: ConditionKind,
    history: HistoryView,
) -> Reason | None:
    """The maintain phase waits until every ladder it shares with the phase before it is at
    least at the level the maintain phase would start a newcomer of the person's ability on.

    Only shared ladders count: the others cannot climb before maintain, so waiting on them
    would hold the programme for ever; maintain starts them where the person left off."""
    if phase.id is not Phase.MAINTAIN or before is None:
        return None
    catalog = history.catalog
    working = {slot.ladder for slot in before.slots_by_direction[direction]}
    for slot in phase.slots_by_direction[direction]:
        if slot.ladder not in working:
            continue
        latest = history.latest_in(catalog.ladder_ids[slot.ladder])
        if latest is None:
            continue
        current = catalog.by_id[latest.result.exercise_id].level
        needed = min(slot.start[profile.ability], slot.max_level)
        # A level the person cannot do (kit, a contraindication) is not asked of them.
        while needed > current and not _can_do(
            catalog.at_level(slot.ladder, needed), profile, kind, catalog
        ):
            needed -= 1
        if current < needed:
            return reason(
                ReasonCode.NOT_YET_CAPABLE,
                require_capability_to_maintain,
                phase=phase.id.value,
                ladder=slot.ladder.replace("-", " "),
                level=needed,
                current=current,
            )
    return None


def _can_do(
    exercise: Exercise | None, profile: Profile, kind: ConditionKind, catalog: Catalog
) -> bool:
    """The person has the kit for the exercise and nothing rules it out for them."""
    if exercise is None or exercise.conditions[kind] == "avoid":
        return False
    if not (profile.equipment | catalog.household).issuperset(exercise.equipment):
        return False
    return not any(
        spec.level == "avoid" and item in profile.contraindications
        for item, spec in exercise.contraindications.items()
    )


@rule(Stage.PROGRAMME, "Clinical rules §6 (phases); §10 (no advance after a bad day)")
def select_phase(
    protocol: ConditionProtocol, condition: Condition, history: HistoryView, today: date
) -> tuple[int, TraceStep, PhaseFold]:
    """The phase for today, as the history earned it, one training day at a time: the
    furthest whose entry criteria and all earlier ones' hold, at most one phase up per
    training day, never up after a day that broke streaks or while the trends (pain risen
    over the baseline, pain climbing week on week, repeated flares) hold it. It may always
    fall back. Also returns the replay's state, whose trends the rules read."""
    th = history.catalog.thresholds
    state = fold_training_days(
        protocol, condition, th, history.days, resume_fold(protocol, history.summary)
    )
    days = (today - condition.onset_date).days
    pain = condition.baseline_pain if state.pain is None else state.pain
    uncapped = phase_reached(protocol, days, state.completed, pain)
    index = phase_for_day(protocol, condition, th, state, today)
    detail = f"days since onset {days}, completed training days {state.completed}, pain {pain}"
    if index < uncapped:
        detail += "; held: one phase per training day, none after a flare, alert or miss"
    phase = protocol.phases[index]
    step = TraceStep(select_phase.__name__, condition.kind.value, phase.id.value, detail)
    return index, step, state


def active_slots(phase: PhaseSpec, direction: DirectionalPreference) -> tuple[Slot, ...]:
    """The phase's slots that apply to this directional preference."""
    return phase.slots_by_direction[direction]


def _criteria_text(phase: PhaseSpec) -> str:
    text = (
        f"{phase.min_completed_sessions} completed training days, "
        f"{phase.min_days_since_onset} days since onset and pain at or below "
        f"{phase.max_recent_pain}/10"
    )
    if phase.id is Phase.MAINTAIN:
        text += ", and every ladder at least at the level the phase starts on"
    return text


def programme_position(
    protocol: ConditionProtocol, phase_index: int, history: HistoryView, today: date
) -> ProgrammePosition:
    phase = protocol.phases[phase_index]
    start = history.first_date or today
    nxt = protocol.phases[phase_index + 1] if phase_index + 1 < len(protocol.phases) else None
    return ProgrammePosition(
        phase=phase.id,
        phase_number=phase_index + 1,
        phases_total=len(protocol.phases),
        week=max(1, (today - start).days // 7 + 1),
        programme_weeks=protocol.programme_weeks,
        completed_sessions=history.completed_sessions,
        expected_weeks_to_meaningful_change=protocol.expected_weeks_to_meaningful_change,
        complete=phase.id is Phase.MAINTAIN,
        next_phase=None if nxt is None else nxt.id,
        next_phase_criteria="" if nxt is None else _criteria_text(nxt),
    )


@rule(Stage.PROGRAMME, "NICE NG59; Lancet 2018 series; WHO 2023 (acute, subacute, persistent)")
def episode_stage(condition: Condition, today: date, th: Reads) -> EpisodeStage:
    """Acute under six weeks since onset, subacute to twelve, persistent beyond: the
    education fits the stage."""
    days = (today - condition.onset_date).days
    if days >= th.persistent_from_days.value:
        return "persistent"
    if days >= th.subacute_from_days.value:
        return "subacute"
    return "acute"


def education_for(
    protocol: ConditionProtocol, phase: Phase, stage: EpisodeStage
) -> tuple[EducationPoint, ...]:
    return protocol.education_by_phase[phase, stage]


def avoid_list(
    protocol: ConditionProtocol, profile: Profile, catalog: Catalog
) -> tuple[AvoidItem, ...]:
    """The condition's avoid list, then what each of the person's contraindications adds."""
    advice = catalog.advice_about(profile.contraindications)
    if not advice:
        return protocol.avoid_items
    return (*protocol.avoid_items, *(item for a in advice for item in a.avoid_items))


def profile_safety_notes(profile: Profile, catalog: Catalog) -> list[str]:
    return [
        note
        for advice in catalog.advice_about(profile.contraindications)
        for note in advice.safety_notes
    ]


@rule(Stage.PROGRAMME, "Clinical rules §6 (each phase has its own slots)")
def build_session_from_phase(phase: Phase) -> Reason:
    """An exercise of the last prescription that no slot of today's phase accounts for has
    left the programme."""
    return reason(ReasonCode.NOT_IN_PHASE, build_session_from_phase, phase=phase.value)


@rule(Stage.PROGRAMME, "Convention: every rule's look-back fits the bounded window")
def read_history_window(window_sessions: int, first: date | None, earlier: int) -> TraceStep:
    """A decision reads the recent window in full and a folded summary of everything older."""
    detail = (
        f"{_count(window_sessions, 'session')} from {first.isoformat()}"
        if first is not None
        else "no sessions in the window"
    )
    return TraceStep(
        read_history_window.__name__,
        "history",
        "window",
        f"{detail}; {_count(earlier, 'earlier session')} summarised",
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
