"""Rulebook invariants over time (clinical-rules §10), checked on engine-driven histories.

Each history is built the way a person builds one: every training day asks the engine for
that day's session and records a stated outcome for it (green, a flare of some kind, a
missed session). Then:

a. nothing progresses until two training days follow the latest flare (a flare: pain
   during above the acceptable band in any exercise, next-morning pain above pain before,
   spreading symptoms or new numbness, or pain at the alert level);
b. logging a day's session two or three times on its date never progresses more than
   logging it once (one date is one training day);
c. pain before the session risen by the clinically important change above the baseline
   holds every progression, and the phase is no higher than on that day;
d. a same-exercise step labelled progressed never lowers total reps or time under tension
   (unless the load rose).

Each carries an explicit ``@example`` that broke the rule before the §10 fixes, so the
property fails deterministically while the defect is there, whatever hypothesis draws.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.domain.engine import next_session
from app.domain.types import (
    AbilityLevel,
    Change,
    Condition,
    ConditionKind,
    ExerciseResult,
    Profile,
    Recommendation,
    RecommendationStatus,
    SessionRecord,
    SymptomChange,
)
from tests.domain.scenario import lowered_work
from tests.domain.test_properties import CATALOG, TODAY, profiles

RULEBOOK = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PHASE_ORDER = {kind: [p.id for p in CATALOG.protocol_for[kind].phases] for kind in ConditionKind}

# How a training day went. "one_hurt": pain 6 during the session's first exercise only
# (usually the warm-up); "all_hurt": pain 6 during every exercise; "next_day": pain the next
# morning above pain before; "alert": pain 7 after the session; "spreading": symptoms spread
# with the first exercise; "numbness": new numbness reported; "after_hurt": pain 6 after the
# session (each exercise only 1); "missed_numbness": logged as not done, but with new
# numbness reported; "missed": not done.
FLARES = (
    "one_hurt",
    "all_hurt",
    "next_day",
    "alert",
    "spreading",
    "numbness",
    "after_hurt",
    "missed_numbness",
)
OUTCOMES = ("green", "green", "green", "green", *FLARES, "missed")


def _record(
    plan: Recommendation,
    day: date,
    outcome: str,
    pain_before: int = 2,
) -> SessionRecord:
    """The session a person logs for ``plan`` on ``day`` when it went as ``outcome`` says."""
    results = []
    for position, decision in enumerate(plan.exercises):
        assert decision.dose is not None
        first = position == 0
        hurt = outcome == "all_hurt" or (outcome == "one_hurt" and first)
        results.append(
            ExerciseResult(
                exercise_id=decision.exercise_id,
                prescribed=decision.dose,
                performed=None if outcome in ("missed", "missed_numbness") else decision.dose,
                completed=outcome not in ("missed", "missed_numbness"),
                pain_during=6 if hurt else 1,
                pain_after=4 if hurt else 1,
                effort=4,
                symptom_change=SymptomChange.PERIPHERALISING
                if outcome == "spreading" and first
                else SymptomChange.STABLE,
                slot=decision.slot,
            )
        )
    return SessionRecord(
        date=day,
        exercises=tuple(results),
        completed=outcome not in ("missed", "missed_numbness"),
        pain_before=pain_before,
        pain_after={"alert": 7, "after_hurt": 6}.get(outcome, pain_before),
        next_day_pain=pain_before + 2 if outcome == "next_day" else pain_before,
        new_numbness_or_tingling=outcome in ("numbness", "missed_numbness"),
    )


def _drive(
    profile: Profile, condition: Condition, days: list[tuple[str, int]]
) -> tuple[list[SessionRecord], list[Recommendation], date]:
    """Train on each day the engine offers a session: ``days`` is (outcome, gap to the next
    day). Returns the history, the plans given, and the day after the last one."""
    history: list[SessionRecord] = []
    plans: list[Recommendation] = []
    day = TODAY - timedelta(days=sum(gap for _, gap in days))
    for outcome, gap in days:
        plan = next_session(profile, condition, tuple(history), CATALOG, day)
        if plan.status is RecommendationStatus.OK:
            plans.append(plan)
            history.append(_record(plan, day, outcome))
        day += timedelta(days=gap)
    return history, plans, day


def _progressed(rec: Recommendation) -> list[str]:
    return [d.exercise_id for d in rec.exercises if d.change is Change.PROGRESSED]


def _condition(kind: ConditionKind, baseline: int = 3) -> Condition:
    return Condition(kind=kind, onset_date=TODAY - timedelta(days=200), baseline_pain=baseline)


days_of = st.lists(st.tuples(st.sampled_from(OUTCOMES), st.integers(1, 3)), min_size=2, max_size=14)


@st.composite
def days_around_a_flare(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Any start, a green run long enough to earn a step, a flare, then at most one more
    training day: the histories in which a stale green streak would show."""
    gap = st.integers(1, 3)
    start = draw(st.lists(st.tuples(st.sampled_from(OUTCOMES), gap), max_size=6))
    greens = draw(st.lists(st.tuples(st.just("green"), gap), min_size=2, max_size=5))
    flare = (draw(st.sampled_from(FLARES)), draw(gap))
    end = draw(st.lists(st.tuples(st.sampled_from(OUTCOMES), gap), max_size=1))
    return [*start, *greens, flare, *end]


# a. ------------------------------------------------------------------------------------------


@RULEBOOK
@given(profiles, st.sampled_from(ConditionKind), days_around_a_flare())
@example(  # a warm-up raised, flaring, stepped back and green once (failed before §10)
    Profile(age=40, ability=AbilityLevel.BEGINNER),
    ConditionKind.STRAIN,
    [("green", 2), ("green", 2), ("one_hurt", 2), ("green", 2)],
)
@example(  # pain 6 after the session, each exercise 1 (counted as green before the review)
    Profile(age=40, ability=AbilityLevel.INTERMEDIATE),
    ConditionKind.STRAIN,
    [("green", 2), ("green", 2), ("after_hurt", 2)],
)
@example(  # numbness in a session logged as not done (hidden before the review)
    Profile(age=40, ability=AbilityLevel.INTERMEDIATE),
    ConditionKind.SCIATICA,
    [("green", 2), ("green", 2), ("green", 2), ("missed_numbness", 1), ("green", 2)],
)
def test_nothing_progresses_until_two_training_days_follow_the_latest_flare(profile, kind, days):
    condition = _condition(kind)
    history, _, today = _drive(profile, condition, days)
    # A session logged as not done still reports what it reports.
    flare_days = [s.date for s in history if _flared(s)]
    if not flare_days:
        return
    latest = max(flare_days)
    after = {s.date for s in history if s.completed and s.date > latest}
    rec = next_session(profile, condition, tuple(history), CATALOG, today)
    if len(after) < 2:
        assert not _progressed(rec), (latest, sorted(after), _progressed(rec))


def _flared(session: SessionRecord) -> bool:
    th = CATALOG.thresholds
    pains = [p for p in (session.pain_before, session.pain_after, session.next_day_pain) if p]
    pains += [p for r in session.exercises for p in (r.pain_during, r.pain_after) if p]
    return (
        (session.next_day_pain or 0) > (session.pain_before or 0)
        or (session.pain_after or 0) > th.pain_acceptable_max.value
        or session.symptom_change is SymptomChange.PERIPHERALISING
        or session.new_numbness_or_tingling
        or bool(pains and max(pains) >= th.pain_alert_min.value)
        or any(
            (r.pain_during or 0) > th.pain_acceptable_max.value
            or r.symptom_change is SymptomChange.PERIPHERALISING
            for r in session.exercises
        )
    )


# b. ------------------------------------------------------------------------------------------


@RULEBOOK
@given(profiles, st.sampled_from(ConditionKind), days_of, st.integers(2, 3), st.integers(0, 13))
@example(  # one green session logged twice (failed before §10)
    Profile(age=36, ability=AbilityLevel.INTERMEDIATE), ConditionKind.POSTURE, [("green", 2)], 2, 0
)
def test_logging_a_session_again_on_its_date_never_progresses_more(
    profile, kind, days, times, pick
):
    condition = _condition(kind)
    history, _, today = _drive(profile, condition, days)
    if not history:
        return
    index = pick % len(history)
    repeated = [*history[: index + 1], *[history[index]] * (times - 1), *history[index + 1 :]]
    once = next_session(profile, condition, tuple(history), CATALOG, today)
    again = next_session(profile, condition, tuple(repeated), CATALOG, today)
    assert set(_progressed(again)) <= set(_progressed(once)), (
        history[index].date,
        _progressed(once),
        _progressed(again),
    )


# c. ------------------------------------------------------------------------------------------


def clinically_important_rise(baseline: int) -> float:  # noqa: ARG001
    """The rise one day's report must show to matter: the full 2 points (Ostelo 2008;
    meaningful_change_points). A week's mean may rise by 30 % instead, but one reading so
    small is within a single report's error."""
    return CATALOG.thresholds.meaningful_change_points.value


@RULEBOOK
@given(
    profiles,
    st.sampled_from(ConditionKind),
    st.integers(1, 5),
    st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2)), min_size=2, max_size=12),
    st.integers(0, 2),
)
@example(  # three green days at baseline 3, then pain before 5 (failed before §10)
    Profile(age=36, ability=AbilityLevel.INTERMEDIATE),
    ConditionKind.POSTURE,
    3,
    [(2, 0), (2, 0), (2, 0), (2, 0)],
    1,
)
def test_pain_risen_above_the_baseline_holds_progression_and_phase(
    profile, kind, baseline, days, extra
):
    """``days``: (gap to the next day, points below the baseline before the session), the
    last one the day pain before has risen, by the clinically important change plus
    ``extra`` (at most 7)."""
    condition = _condition(kind, baseline)
    history: list[SessionRecord] = []
    day = TODAY - timedelta(days=sum(gap for gap, _ in days))
    for gap, below in days[:-1]:
        plan = next_session(profile, condition, tuple(history), CATALOG, day)
        if plan.status is RecommendationStatus.OK:
            before = max(0, baseline - below)
            history.append(_record(plan, day, "green", pain_before=before))
        day += timedelta(days=gap)
    plan = next_session(profile, condition, tuple(history), CATALOG, day)
    if plan.status is not RecommendationStatus.OK:
        return
    risen = min(math.ceil(baseline + clinically_important_rise(baseline)) + extra, 7)
    last = _record(plan, day, "green", pain_before=risen)
    today = day + timedelta(days=days[-1][0])
    rec = next_session(profile, condition, (*history, last), CATALOG, today)
    assert not _progressed(rec), (risen, baseline, _progressed(rec))
    # Holding the phase: no higher than the phase of the day the pain had risen on. (Not
    # "no higher than without that day": without it, the day before is the last one, and
    # a trend measured over other days can hold that history lower.)
    if rec.programme is not None and plan.programme is not None:
        order = PHASE_ORDER[kind]
        assert order.index(rec.programme.phase) <= order.index(plan.programme.phase), (
            rec.programme.phase,
            plan.programme.phase,
        )


# d. ------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profiles,
    st.sampled_from(ConditionKind),
    st.lists(st.integers(1, 3), min_size=4, max_size=20),
)
@example(Profile(age=36), ConditionKind.POSTURE, [2] * 12)  # chin tuck 1x12x5 -> 2x8x3
def test_a_progressed_step_never_lowers_the_work(profile, kind, gaps):
    condition = _condition(kind)
    _, plans, _ = _drive(profile, condition, [("green", gap) for gap in gaps])
    for plan in plans:
        for decision in plan.exercises:
            if (
                decision.change is Change.PROGRESSED
                and decision.exercise_id == decision.previous_exercise_id
            ):
                lowered = lowered_work(decision)
                assert lowered is None, f"{plan.today}: {lowered}"


def test_the_progression_property_sees_a_sets_step():
    """Control: green posture days do reach a step that adds a set (else d is vacuous)."""
    profile = Profile(age=36)
    _, plans, _ = _drive(profile, _condition(ConditionKind.POSTURE), [("green", 2)] * 16)
    sets_steps = [
        d
        for plan in plans
        for d in plan.exercises
        if d.change is Change.PROGRESSED
        and d.previous_dose is not None
        and d.dose is not None
        and d.dose.sets > d.previous_dose.sets
    ]
    assert sets_steps
