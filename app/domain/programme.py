"""Where a person stands in their condition's programme, and what the programme asks of them.

A phase is reached when all its entry criteria hold (days since onset, completed sessions,
latest pain), checked in order; a flare can therefore move someone back a phase.
"""

from __future__ import annotations

from datetime import date

from app.domain.catalog import Catalog, ConditionProtocol, PhaseSpec, Slot
from app.domain.history import (
    HistoryView,
    fold_training_days,
    phase_for_day,
    phase_reached,
    resume_fold,
)
from app.domain.reasons import ReasonCode, reason
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
    "education_for",
    "effective_direction",
    "no_meaningful_change",
    "profile_safety_notes",
    "programme_position",
    "select_phase",
]


def effective_direction(
    profile: Profile, condition: Condition, catalog: Catalog
) -> tuple[DirectionalPreference, Reason | None]:
    """The tested preference, else a flexion bias for older people with stenosis-like signs."""
    preference = condition.directional_preference
    if preference in (DirectionalPreference.EXTENSION, DirectionalPreference.FLEXION):
        return preference, None
    th = catalog.thresholds
    if (
        condition.kind is ConditionKind.SCIATICA
        and condition.stenosis_like_symptoms
        and profile.age > th.flexion_bias_age.value
    ):
        why = reason(
            ReasonCode.FLEXION_BIAS_FOR_AGE,
            "flexion_bias_for_stenosis",
            ("flexion_bias_age",),
            age=int(th.flexion_bias_age.value),
        )
        return DirectionalPreference.FLEXION, why
    return preference, None


def select_phase(
    protocol: ConditionProtocol,
    condition: Condition,
    history: HistoryView,
    today: date,
    *,
    hold: bool = False,
) -> tuple[int, TraceStep]:
    """The phase for today, as the history earned it, one training day at a time.

    On each day the phase is the furthest one whose entry criteria (days since onset,
    completed sessions, latest pain) and all earlier ones' hold, with two limits: it moves up
    at most one phase per training day, and never after a day that held it (a missed
    session, a flare, spreading symptoms, an alert). ``hold`` adds today's own reasons to
    hold (the last day's signals, a week-on-week pain rise). The phase may always fall back.

    The replay starts where the history's summary left off and goes through its sessions.
    """
    state = fold_training_days(
        protocol,
        condition,
        history.catalog.thresholds,
        history.sessions,
        resume_fold(protocol, history.summary),
        history.calm,
    )
    days = (today - condition.onset_date).days
    pain = condition.baseline_pain if state.pain is None else state.pain
    uncapped = phase_reached(protocol, days, state.completed, pain)
    index = phase_for_day(protocol, condition, state, today, holding=state.held or hold)
    detail = f"days since onset {days}, completed sessions {state.completed}, pain {pain}"
    if index < uncapped:
        detail += "; held: one phase per training day, none after a flare, alert or miss"
    phase = protocol.phases[index]
    return index, TraceStep("select_phase", condition.kind.value, phase.id.value, detail)


def active_slots(phase: PhaseSpec, direction: DirectionalPreference) -> tuple[Slot, ...]:
    """The phase's slots that apply to this directional preference."""
    return phase.slots_by_direction[direction]


def _criteria_text(phase: PhaseSpec) -> str:
    return (
        f"{phase.min_completed_sessions} completed sessions, "
        f"{phase.min_days_since_onset} days since onset and pain at or below "
        f"{phase.max_recent_pain}/10"
    )


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


def no_meaningful_change(
    condition: Condition, history: HistoryView, position: ProgrammePosition, catalog: Catalog
) -> Reason | None:
    """After the review period, pain has not fallen by the meaningful-change margin."""
    th = catalog.thresholds
    pain = history.latest_pain()
    if pain is None or position.week <= th.no_change_review_weeks.value:
        return None
    baseline = condition.baseline_pain
    needed = min(th.meaningful_change_points.value, baseline * th.meaningful_change_pct.value / 100)
    if baseline == 0 or baseline - pain >= needed:
        return None
    return reason(
        ReasonCode.NO_MEANINGFUL_CHANGE,
        "flag_for_clinician_review",
        ("no_change_review_weeks", "meaningful_change_points", "meaningful_change_pct"),
        weeks=position.week - 1,
        points=int(th.meaningful_change_points.value),
        pct=int(th.meaningful_change_pct.value),
    )


def education_for(protocol: ConditionProtocol, phase: Phase) -> tuple[EducationPoint, ...]:
    return protocol.education_by_phase[phase]


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
