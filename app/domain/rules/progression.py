"""Progression: the per-exercise rules, one small named function each, in precedence order.

Each rule reads an ``ExerciseState`` (the exercise a person is on, its dose and how it went)
and returns a ``RuleOutcome`` or ``None`` to pass to the next. The first outcome wins, so
the order of ``RULES`` is the clinical decision order: stepping back outranks holding, and
holding outranks progressing.
"""

from __future__ import annotations

from collections.abc import Callable

from app.domain.catalog import Thresholds
from app.domain.history import Appearance
from app.domain.reasons import ReasonCode, reason
from app.domain.rules.base import Stage, rule
from app.domain.rules.state import Action, ExerciseState, RuleOutcome, dose_key
from app.domain.signals import (
    ALERT,
    FLARE,
    GREEN,
    NEXT_DAY_UP,
    PAIN_RISEN,
    REPEATED_FLARES,
    SPREADING,
    WEEKLY_RISE,
    exercise_response,
)
from app.domain.types import Category, PainResponse, Reason, SymptomChange

__all__ = [
    "PERSON_WIDE",
    "RULES",
    "decide",
    "green_streak",
    "note_centralisation",
]


@rule(Stage.PROGRESSION, "Hebert 2011; May 2018 (peripheralisation: stop that direction)")
def stop_direction_on_peripheralisation(s: ExerciseState) -> RuleOutcome | None:
    """Symptoms spreading down the leg with this exercise stop it; a session-level report
    (spreading, or new numbness, naming no exercise) stops every movement that loads a
    spinal direction or the nerve."""
    latest = s.latest
    own = latest.result.symptom_change is SymptomChange.PERIPHERALISING
    session = latest.session
    reported = (
        session.symptom_change is SymptomChange.PERIPHERALISING or session.new_numbness_or_tingling
    )
    # A report in a later log (one not completed, or naming no exercise) counts as well.
    session_wide = (reported or s.recent.spread_reported) and (
        s.exercise.spinal_direction != "neutral" or s.exercise.category is Category.NERVE_GLIDE
    )
    if not (own or session_wide):
        return None
    s.th.signal(SPREADING)
    numbness = session.new_numbness_or_tingling or (
        not reported
        and any(x.new_numbness_or_tingling for d in s.recent.last_days for x in d.sessions)
    )
    code = (
        ReasonCode.PERIPHERALISATION if own or not numbness else ReasonCode.NEW_NUMBNESS_OR_TINGLING
    )
    return RuleOutcome(
        Action.STOP_DIRECTION, (reason(code, stop_direction_on_peripheralisation, s.th.cited()),)
    )


@rule(Stage.PROGRESSION, "Convention (clinical rules §1 step 5): a long gap steps back")
def step_back_after_long_gap(s: ExerciseState) -> RuleOutcome | None:
    """After a long break (more than ``long_gap_days``), every exercise steps back one level."""
    gap = s.recent.days_since_last
    if gap is None:
        return None
    limit = s.th.long_gap_days.value
    if gap <= limit:
        return None
    why = reason(
        ReasonCode.LONG_GAP, step_back_after_long_gap, s.th.cited(), days=gap, limit=int(limit)
    )
    return RuleOutcome(Action.STEP_BACK_LEVEL, (why,))


@rule(Stage.PROGRESSION, "Silbernagel 2007 (pain during above 5/10 is too much)")
def regress_on_pain_flare(s: ExerciseState) -> RuleOutcome | None:
    """Pain during the exercise above the acceptable band lowers its dose one step."""
    during = s.latest.result.pain_during
    if during is None:
        return None
    limit = s.th.pain_acceptable_max.value
    if during <= limit:
        return None
    why = reason(
        ReasonCode.PAIN_FLARE, regress_on_pain_flare, s.th.cited(), value=during, limit=int(limit)
    )
    return RuleOutcome(Action.LOWER_DOSE, (why,))


@rule(Stage.PROGRESSION, "Silbernagel 2007 (pain must settle by the next morning)")
def reduce_load_when_next_day_pain_up(s: ExerciseState) -> RuleOutcome | None:
    """The day's next-morning pain above its pre-session level lowers the loading exercises'
    dose."""
    if not s.exercise.hard:
        return None
    day = s.history.day_of(s.latest.session)
    if not day.next_day_up:
        return None
    s.th.signal(NEXT_DAY_UP)
    before = day.pain_before if day.pain_before is not None else s.condition.baseline_pain
    why = reason(
        ReasonCode.NEXT_DAY_PAIN_UP,
        reduce_load_when_next_day_pain_up,
        s.th.cited(),
        after=day.next_day_pain,
        before=before,
    )
    return RuleOutcome(Action.LOWER_DOSE, (why,))


@rule(Stage.PROGRESSION, "OktaHealth alert convention (effort >= 9); ACSM 2009")
def regress_when_too_hard(s: ExerciseState) -> RuleOutcome | None:
    """Effort at the too-hard level, or a dose that could not be completed, lowers the dose."""
    result = s.latest.result
    if result.effort is not None:
        limit = s.th.effort_too_hard_min.value
        if result.effort >= limit:
            detail = (
                f"Effort was {result.effort}/10 (alert level {int(limit)}): the dose steps down."
            )
            why = reason(ReasonCode.TOO_HARD, regress_when_too_hard, s.th.cited(), detail=detail)
            return RuleOutcome(Action.LOWER_DOSE, (why,))
    if result.performed is not None and not result.performed.covers(result.prescribed):
        detail = "The prescribed dose was not reached last time: the dose steps down."
        why = reason(ReasonCode.TOO_HARD, regress_when_too_hard, s.th.cited(), detail=detail)
        return RuleOutcome(Action.LOWER_DOSE, (why,))
    return None


@rule(Stage.PROGRESSION, "Silbernagel 2007; clinical rules §1 step 2 (yellow signals)")
def hold_after_session_flare(s: ExerciseState) -> RuleOutcome | None:
    """A flare or spreading symptoms anywhere on the last training day holds every other
    exercise."""
    if not s.recent.flared:
        return None
    s.th.signal(FLARE, SPREADING)
    why = reason(ReasonCode.SESSION_FLARE_HOLD, hold_after_session_flare, s.th.cited())
    return RuleOutcome(Action.HOLD, (why,))


@rule(Stage.PROGRESSION, "Commercial alert conventions (OktaHealth pain >= 7, effort >= 9)")
def hold_at_alert_level(s: ExerciseState) -> RuleOutcome | None:
    """Pain or effort at the alert level anywhere on the last training day holds every dose."""
    if not s.recent.alert:
        return None
    s.th.signal(ALERT)
    return RuleOutcome(
        Action.HOLD, (reason(ReasonCode.ALERT_HOLD, hold_at_alert_level, s.th.cited()),)
    )


@rule(Stage.PROGRESSION, "MedBridge Pathways escalation tiers (convention); clinical rules §10")
def hold_when_flares_repeat(s: ExerciseState) -> RuleOutcome | None:
    """Repeated flares within the window hold every dose until a clinician has reviewed."""
    count = s.recent.flare_days
    if count < s.th.repeated_flares_count.value:
        return None
    s.th.signal(REPEATED_FLARES)
    why = reason(
        ReasonCode.REPEATED_FLARES,
        hold_when_flares_repeat,
        s.th.cited(),
        count=count,
        days=int(s.th.repeated_flares_window_days.value),
    )
    return RuleOutcome(Action.HOLD, (why,))


@rule(Stage.PROGRESSION, "Ostelo 2008; Farrar 2001 (2 points or 30 %); clinical rules §10")
def hold_when_pain_risen_over_baseline(s: ExerciseState) -> RuleOutcome | None:
    """Pain risen by the clinically important change above the baseline or the programme's
    first weeks holds every dose, even when each session looked green."""
    rise = s.recent.pain_rise
    if rise is None:
        return None
    s.th.signal(PAIN_RISEN)
    why = reason(
        ReasonCode.PAIN_ABOVE_BASELINE,
        hold_when_pain_risen_over_baseline,
        s.th.cited(),
        recent=rise.recent,
        reference=rise.reference,
        against=rise.against,
        measure=rise.measure,
    )
    return RuleOutcome(Action.HOLD, (why,))


@rule(Stage.PROGRESSION, "Silbernagel 2007 (pain must not climb from week to week)")
def hold_when_pain_climbs_week_on_week(s: ExerciseState) -> RuleOutcome | None:
    """Average pain before sessions climbing from last week to this one holds every dose."""
    rise = s.recent.weekly_pain_rise
    if rise is None:
        return None
    s.th.signal(WEEKLY_RISE)
    why = reason(
        ReasonCode.WEEKLY_PAIN_RISING,
        hold_when_pain_climbs_week_on_week,
        s.th.cited(),
        before=round(rise[0], 1),
        after=round(rise[1], 1),
    )
    return RuleOutcome(Action.HOLD, (why,))


@rule(Stage.PROGRESSION, "wger #2464 (no catch-up for skipped sessions); clinical rules §1")
def hold_after_missed_session(s: ExerciseState) -> RuleOutcome | None:
    """A missed session, or this exercise skipped last time, never leads to progression."""
    latest = s.latest
    if s.recent.last_missed or not latest.session.completed or latest.result.performed is None:
        why = reason(ReasonCode.MISSED_SESSION, hold_after_missed_session, s.th.cited())
        return RuleOutcome(Action.HOLD, (why,))
    return None


def green_streak(
    s: ExerciseState, needed: int, th: Thresholds
) -> tuple[list[Appearance], str | None]:
    """The exercise's green training days at its current dose, newest first, up to
    ``needed``; and, when the newest one is not green, why (a ``PainResponse`` value, or
    "unreported", "effort_unreported", "effort_high").

    A streak is consecutive training days: a day without the exercise is skipped when it was
    calm and complete, and ends the streak when anything was missed, flared, at alert pain
    or spreading. Several logs on one date are one day, green only if all were.
    """
    key = dose_key(s.dose)
    headroom = th.effort_headroom_max.value
    apps = s.appearances
    counted: list[Appearance] = []
    i = 0
    for day in reversed(s.history.days):
        on_day: list[Appearance] = []
        while i < len(apps) and apps[i].session.date >= day.date:
            if apps[i].session.date == day.date:
                on_day.append(apps[i])
            i += 1
        if not on_day:
            if day.breaks_streaks:
                break
            continue
        if day.missed:
            return counted, None  # a missed log that day ends the streak whatever else went well
        for appearance in on_day:
            result = appearance.result
            if dose_key(result.prescribed) != key or not appearance.performed_as_prescribed:
                return counted, None
            response = exercise_response(result, day, th)
            if response is not PainResponse.GREEN:
                return counted, "unreported" if response is None else response.value
            if result.effort is None:
                return counted, "effort_unreported"
            if result.effort > headroom:
                return counted, "effort_high"
        counted.append(on_day[0])
        if len(counted) >= needed:
            break
    return counted, None


@rule(Stage.PROGRESSION, "NSCA 2-for-2; ACSM 2009 (headroom); clinical rules §3 and §10")
def progress_after_green_sessions(s: ExerciseState) -> RuleOutcome | None:
    """Two consecutive green training days at this dose, complete and with effort headroom:
    one step up. Only days at the current dose count, so a step needs fresh evidence and
    skipped sessions are never made up for."""
    th = s.th
    needed = int(th.green_sessions_to_progress.value)
    headroom = th.effort_headroom_max.value
    th.signal(GREEN)
    counted, broken = green_streak(s, needed, th.plain)
    if not counted and broken is not None:
        values: dict[str, object]
        if broken == "effort_unreported":
            code, values = ReasonCode.EFFORT_NOT_REPORTED, {"limit": int(headroom)}
        elif broken == "effort_high":
            effort = s.appearances[0].result.effort
            code, values = ReasonCode.NO_EFFORT_HEADROOM, {"value": effort, "limit": int(headroom)}
        else:
            shown = (
                "not fully reported (during the exercise and the next morning)"
                if broken == "unreported"
                else f"above the safe band of {int(th.pain_safe_max.value)}/10"
                if broken == PainResponse.ACCEPTABLE.value
                else broken
            )
            code, values = ReasonCode.NOT_GREEN, {"response": shown}
        return RuleOutcome(
            Action.HOLD, (reason(code, progress_after_green_sessions, th.cited(), **values),)
        )
    if len(counted) < needed:
        why = reason(
            ReasonCode.GREEN_STREAK_TOO_SHORT,
            progress_after_green_sessions,
            th.cited(),
            count=len(counted),
            needed=needed,
        )
        return RuleOutcome(Action.HOLD, (why,))
    why = reason(
        ReasonCode.TWO_GREEN_SESSIONS,
        progress_after_green_sessions,
        th.cited(),
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
    hold_when_flares_repeat,
    hold_after_session_flare,
    hold_at_alert_level,
    hold_when_pain_climbs_week_on_week,
    hold_when_pain_risen_over_baseline,
    hold_after_missed_session,
    progress_after_green_sessions,
)


@rule(Stage.PROGRESSION, "Hebert 2011; May 2018 (centralisation is a good sign)")
def note_centralisation(s: ExerciseState) -> Reason | None:
    """Leg symptoms retreating towards the spine with this exercise are noted; the rules
    above still decide the step."""
    if s.latest.result.symptom_change is not SymptomChange.CENTRALISING:
        return None
    return reason(ReasonCode.CENTRALISING, note_centralisation)


# Rules that read only the person's recent signals, never the exercise: their outcome is the
# same for every exercise of a decision, so each runs once per decision (``decide``'s
# ``once``), not once per exercise.
PERSON_WIDE = frozenset(
    {
        step_back_after_long_gap,
        hold_when_flares_repeat,
        hold_after_session_flare,
        hold_at_alert_level,
        hold_when_pain_climbs_week_on_week,
        hold_when_pain_risen_over_baseline,
    }
)


def decide(
    s: ExerciseState, once: dict[Callable[[ExerciseState], RuleOutcome | None], RuleOutcome | None]
) -> tuple[RuleOutcome, str]:
    """The first rule with an outcome, and its name (the last rule always decides).

    ``once`` keeps the person-wide rules' outcomes for the rest of the decision."""
    forget = s.th.names.clear  # a new rule starts citing (``Reads.fresh``, without the call)
    for progression_rule in RULES:
        if progression_rule in PERSON_WIDE:
            if progression_rule in once:
                outcome = once[progression_rule]
            else:
                forget()
                outcome = once[progression_rule] = progression_rule(s)
        else:
            forget()
            outcome = progression_rule(s)
        if outcome is not None:
            return outcome, progression_rule.__name__
    raise AssertionError("progress_after_green_sessions decides when no other rule does")
