"""The per-exercise progression rules, one small named function each, in precedence order.

Each rule reads an ``ExerciseState`` (the exercise a person is on, its current dose and how it
went) and either returns a ``RuleOutcome`` or ``None`` to pass to the next rule. The first
outcome wins, so the order of ``RULES`` is the clinical decision order: stepping back outranks
holding, and holding outranks progressing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from app.domain.catalog import Exercise, Slot, Thresholds
from app.domain.dosing import DoseBounds, weekly_volume
from app.domain.history import Appearance, HistoryView, classify_response, next_day_pain_up
from app.domain.reasons import ReasonCode, reason
from app.domain.types import (
    Category,
    Condition,
    Dose,
    PainResponse,
    Reason,
    SymptomChange,
)

__all__ = [
    "RULES",
    "Action",
    "ExerciseState",
    "RuleOutcome",
    "SessionSignals",
    "check_volume_cap",
    "decide",
    "dose_key",
    "session_signals",
    "symptom_free_streak",
]


class Action(StrEnum):
    STEP_BACK_LEVEL = "step_back_level"
    STOP_DIRECTION = "stop_direction"
    LOWER_DOSE = "lower_dose"
    HOLD = "hold"
    PROGRESS = "progress"


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    action: Action
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class SessionSignals:
    """What the most recent sessions say about the whole person, computed once per decision."""

    days_since_last: int | None
    last_missed: bool
    flare_in_last: bool
    next_day_up: bool
    peripheralising_session: bool
    alert_in_last: bool
    weekly_pain_rise: tuple[float, float] | None = None  # (last week, this week) when rising

    @property
    def flared(self) -> bool:
        """Anything in the last session that must stop progression and phase advances."""
        return self.flare_in_last or self.next_day_up or self.peripheralising_session


@dataclass(frozen=True, slots=True)
class ExerciseState:
    exercise: Exercise
    dose: Dose
    bounds: DoseBounds
    appearances: list[Appearance]  # newest first
    latest: Appearance  # appearances[0], or the alternative the slot was last swapped to
    th: Thresholds
    slot: Slot
    condition: Condition
    history: HistoryView
    signals: SessionSignals
    today: date


def dose_key(dose: Dose) -> tuple[object, ...]:
    """The parts of a dose that define "the same dose" for the green gate."""
    return (
        dose.sets,
        dose.reps,
        dose.hold_seconds,
        dose.duration_seconds,
        dose.load_kg,
        dose.per_week,
        dose.per_day,
    )


def step_back_after_long_gap(s: ExerciseState) -> RuleOutcome | None:
    """After a long break (more than ``long_gap_days``), every exercise steps back one level."""
    gap = s.signals.days_since_last
    limit = s.th.long_gap_days.value
    if gap is None or gap <= limit:
        return None
    why = reason(
        ReasonCode.LONG_GAP,
        "step_back_after_long_gap",
        ("long_gap_days",),
        days=gap,
        limit=int(limit),
    )
    return RuleOutcome(Action.STEP_BACK_LEVEL, (why,))


def stop_direction_on_peripheralisation(s: ExerciseState) -> RuleOutcome | None:
    """Symptoms spreading down the leg with this exercise stop it; a neutral one may step down.

    A session-level report (spreading symptoms or new numbness that names no exercise) is
    pinned on every movement that loads a spinal direction or the nerve.
    """
    latest = s.latest
    own = latest.result.symptom_change is SymptomChange.PERIPHERALISING
    session = latest.session
    session_wide = (
        session.symptom_change is SymptomChange.PERIPHERALISING or session.new_numbness_or_tingling
    ) and (s.exercise.spinal_direction != "neutral" or s.exercise.category is Category.NERVE_GLIDE)
    if not (own or session_wide):
        return None
    code = (
        ReasonCode.PERIPHERALISATION
        if own or not session.new_numbness_or_tingling
        else (ReasonCode.NEW_NUMBNESS_OR_TINGLING)
    )
    why = reason(code, "stop_direction_on_peripheralisation")
    return RuleOutcome(Action.STOP_DIRECTION, (why,))


def regress_on_pain_flare(s: ExerciseState) -> RuleOutcome | None:
    """Pain during the exercise above the acceptable band lowers its dose one step."""
    latest = s.latest
    during = latest.result.pain_during
    limit = s.th.pain_acceptable_max.value
    if during is None or during <= limit:
        return None
    why = reason(
        ReasonCode.PAIN_FLARE,
        "regress_on_pain_flare",
        ("pain_acceptable_max",),
        value=during,
        limit=int(limit),
    )
    return RuleOutcome(Action.LOWER_DOSE, (why,))


def reduce_load_when_next_day_pain_up(s: ExerciseState) -> RuleOutcome | None:
    """Pain above its pre-session level the next morning lowers the loading exercises' dose."""
    latest = s.latest
    session = latest.session
    if not s.exercise.hard:
        return None
    if not next_day_pain_up(session, s.th, s.condition.baseline_pain):
        return None
    before = session.pain_before if session.pain_before is not None else s.condition.baseline_pain
    why = reason(
        ReasonCode.NEXT_DAY_PAIN_UP,
        "reduce_load_when_next_day_pain_up",
        ("next_day_pain_rise_allowed",),
        after=session.next_day_pain,
        before=before,
    )
    return RuleOutcome(Action.LOWER_DOSE, (why,))


def regress_when_too_hard(s: ExerciseState) -> RuleOutcome | None:
    """Effort at the alert level, or a dose that could not be completed, lowers the dose."""
    latest = s.latest
    result = latest.result
    limit = s.th.effort_too_hard_min.value
    if result.effort is not None and result.effort >= limit:
        detail = f"Effort was {result.effort}/10 (alert level {int(limit)}): the dose steps down."
        why = reason(
            ReasonCode.TOO_HARD, "regress_when_too_hard", ("effort_too_hard_min",), detail=detail
        )
        return RuleOutcome(Action.LOWER_DOSE, (why,))
    if result.performed is not None and not result.performed.covers(result.prescribed):
        detail = "The prescribed dose was not reached last time: the dose steps down."
        why = reason(ReasonCode.TOO_HARD, "regress_when_too_hard", detail=detail)
        return RuleOutcome(Action.LOWER_DOSE, (why,))
    return None


def hold_after_session_flare(s: ExerciseState) -> RuleOutcome | None:
    """A flare or spreading symptoms anywhere in the last session holds every other exercise."""
    if not s.signals.flared:
        return None
    why = reason(
        ReasonCode.SESSION_FLARE_HOLD,
        "hold_after_session_flare",
        ("pain_acceptable_max", "next_day_pain_rise_allowed"),
    )
    return RuleOutcome(Action.HOLD, (why,))


def hold_at_alert_level(s: ExerciseState) -> RuleOutcome | None:
    """Pain or effort at the clinician-alert level anywhere last session holds every dose."""
    if not s.signals.alert_in_last:
        return None
    why = reason(
        ReasonCode.ALERT_HOLD, "hold_at_alert_level", ("pain_alert_min", "effort_too_hard_min")
    )
    return RuleOutcome(Action.HOLD, (why,))


def hold_when_pain_climbs_week_on_week(s: ExerciseState) -> RuleOutcome | None:
    """Average pain before sessions climbing from last week to this one holds every dose."""
    rise = s.signals.weekly_pain_rise
    if rise is None:
        return None
    why = reason(
        ReasonCode.WEEKLY_PAIN_RISING,
        "hold_when_pain_climbs_week_on_week",
        ("weekly_pain_rise_points",),
        before=round(rise[0], 1),
        after=round(rise[1], 1),
    )
    return RuleOutcome(Action.HOLD, (why,))


def hold_after_missed_session(s: ExerciseState) -> RuleOutcome | None:
    """A missed session, or this exercise skipped last time, never leads to progression."""
    latest = s.latest
    if s.signals.last_missed or not latest.session.completed or latest.result.performed is None:
        why = reason(ReasonCode.MISSED_SESSION, "hold_after_missed_session")
        return RuleOutcome(Action.HOLD, (why,))
    return None


def progress_after_green_sessions(s: ExerciseState) -> RuleOutcome | None:
    """Two complete, green sessions in a row at this dose, with effort headroom: one step up.

    Only sessions at the current dose count, so a step needs fresh evidence and skipped
    sessions are never made up for. Whether the step fits the volume cap is checked when the
    step is chosen (``check_volume_cap``).
    """
    th = s.th
    needed = int(th.green_sessions_to_progress.value)
    key = dose_key(s.dose)
    headroom = th.effort_headroom_max.value
    green = 0
    for appearance in s.appearances[:needed]:
        result = appearance.result
        if dose_key(result.prescribed) != key or not appearance.performed_as_prescribed:
            break
        response = classify_response(
            result,
            appearance.session,
            th,
            s.condition.baseline_pain,
            s.history.calm(appearance.session),
        )
        if response is not PainResponse.GREEN:
            if green == 0:
                shown = (
                    "not fully reported (during the exercise and the next morning)"
                    if response is None
                    else f"above the safe band of {int(th.pain_safe_max.value)}/10"
                    if response is PainResponse.ACCEPTABLE
                    else response.value
                )
                why = reason(
                    ReasonCode.NOT_GREEN,
                    "progress_after_green_sessions",
                    ("pain_safe_max",),
                    response=shown,
                )
                return RuleOutcome(Action.HOLD, (why,))
            break
        if result.effort is None:
            why = reason(
                ReasonCode.EFFORT_NOT_REPORTED,
                "progress_after_green_sessions",
                ("effort_headroom_max",),
                limit=int(headroom),
            )
            return RuleOutcome(Action.HOLD, (why,))
        if result.effort > headroom:
            why = reason(
                ReasonCode.NO_EFFORT_HEADROOM,
                "progress_after_green_sessions",
                ("effort_headroom_max",),
                value=result.effort,
                limit=int(headroom),
            )
            return RuleOutcome(Action.HOLD, (why,))
        green += 1
    if green < needed:
        why = reason(
            ReasonCode.GREEN_STREAK_TOO_SHORT,
            "progress_after_green_sessions",
            ("green_sessions_to_progress",),
            count=green,
            needed=needed,
        )
        return RuleOutcome(Action.HOLD, (why,))
    why = reason(
        ReasonCode.TWO_GREEN_SESSIONS,
        "progress_after_green_sessions",
        (
            "green_sessions_to_progress",
            "pain_safe_max",
            "effort_headroom_max",
            "next_day_pain_rise_allowed",
        ),
        count=needed,
        pain=int(th.pain_safe_max.value),
        effort=int(headroom),
    )
    return RuleOutcome(Action.PROGRESS, (why,))


RULES = (
    stop_direction_on_peripheralisation,
    step_back_after_long_gap,
    regress_on_pain_flare,
    reduce_load_when_next_day_pain_up,
    regress_when_too_hard,
    hold_after_session_flare,
    hold_at_alert_level,
    hold_when_pain_climbs_week_on_week,
    hold_after_missed_session,
    progress_after_green_sessions,
)


def decide(s: ExerciseState) -> tuple[RuleOutcome, str]:
    """The first rule with an outcome, and its name; nothing applies → hold."""
    for rule in RULES:
        outcome = rule(s)
        if outcome is not None:
            return outcome, rule.__name__
    return RuleOutcome(Action.HOLD, ()), "maintain"


def check_volume_cap(s: ExerciseState, proposed: Dose) -> Reason | None:
    """Hold a loading exercise's step that would stack weekly-volume growth above the cap.

    Steps are already sized to the cap (``raise_one_variable(max_step_pct=...)``); where even
    one unit is more (1 → 2 times a day), one step from a volume that has not grown in the
    window is still allowed, or it could never happen. The cap stops steps stacking up.
    """
    if not s.exercise.hard:
        return None  # the injury signal is about load; mobility and breathing are not capped
    th = s.th
    window_start = s.today.toordinal() - int(th.volume_growth_window_days.value)
    baseline: Dose | None = None
    for appearance in s.appearances:
        if appearance.session.date.toordinal() < window_start:
            break
        baseline = appearance.result.prescribed
    if baseline is None:
        return None
    base = weekly_volume(baseline)
    if base <= 0 or weekly_volume(s.dose) <= base:
        return None
    growth = (weekly_volume(proposed) / base - 1) * 100
    if growth <= th.volume_growth_cap_pct.value:
        return None
    return reason(
        ReasonCode.VOLUME_CAP,
        "cap_weekly_volume_growth",
        ("volume_growth_cap_pct", "volume_growth_window_days"),
        pct=round((weekly_volume(s.dose) / base - 1) * 100),
        days=int(th.volume_growth_window_days.value),
        limit=int(th.volume_growth_cap_pct.value),
    )


def session_signals(
    history: HistoryView, th: Thresholds, baseline_pain: int, today: date
) -> SessionSignals:
    """What the last training day says, over every session logged that day."""
    day = history.last_day()
    flare = alert = next_day_up = spreading = False
    for session in day:
        pains = [
            p
            for p in (session.pain_before, session.pain_after, session.next_day_pain)
            if p is not None
        ]
        for result in session.exercises:
            if result.pain_during is not None:
                pains.append(result.pain_during)
                flare = flare or result.pain_during > th.pain_acceptable_max.value
            if result.pain_after is not None:
                pains.append(result.pain_after)
            if result.effort is not None and result.effort >= th.effort_too_hard_min.value:
                alert = True
            spreading = spreading or result.symptom_change is SymptomChange.PERIPHERALISING
        alert = alert or (bool(pains) and max(pains) >= th.pain_alert_min.value)
        next_day_up = next_day_up or next_day_pain_up(session, th, baseline_pain)
        spreading = (
            spreading
            or session.symptom_change is SymptomChange.PERIPHERALISING
            or session.new_numbness_or_tingling
        )
    return SessionSignals(
        weekly_pain_rise=_weekly_pain_rise(history, th, today),
        days_since_last=history.days_since_last_completed(today),
        last_missed=history.missed_since_last_completed(),
        flare_in_last=flare,
        next_day_up=next_day_up,
        peripheralising_session=spreading,
        alert_in_last=alert,
    )


def _weekly_pain_rise(
    history: HistoryView, th: Thresholds, today: date
) -> tuple[float, float] | None:
    """Average pre-session pain last week and this week, when it climbed by the threshold."""
    this_week: list[int] = []
    last_week: list[int] = []
    for session in reversed(history.sessions):
        age = (today - session.date).days
        if age >= 14:
            break
        if session.completed and session.pain_before is not None:
            (this_week if age < 7 else last_week).append(session.pain_before)
    if not this_week or not last_week:
        return None
    before = sum(last_week) / len(last_week)
    after = sum(this_week) / len(this_week)
    return (before, after) if after - before >= th.weekly_pain_rise_points.value else None


def symptom_free_streak(s: ExerciseState) -> bool:
    """The green streak had no pain at all: what a nerve tensioner asks of its sliders."""
    needed = int(s.th.green_sessions_to_progress.value)
    recent = s.appearances[:needed]
    return len(recent) == needed and all(
        a.result.pain_during == 0 and not a.result.pain_after for a in recent
    )
