"""The decision window and the summary of everything before it.

- a decision is the same from the whole history, from the window plus the summary of the
  older sessions, and from a summary folded in several day-aligned pieces;
- folding in pieces is folding at once;
- the window's start needs only the newest ``history_window_sessions + 1`` dates;
- the window never holds more than its sessions or its days.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.engine import next_session
from app.domain.history import (
    HistoryView,
    ordered_sessions,
    split_history,
    summarise_history,
    window_start,
)
from app.domain.reasons import ReasonCode
from app.domain.rules.programme import select_phase
from app.domain.types import (
    AbilityLevel,
    Condition,
    ConditionKind,
    Dose,
    ExerciseResult,
    HistorySummary,
    Phase,
    Profile,
    RecommendationStatus,
    RedFlag,
    SessionRecord,
    SymptomChange,
)
from tests.domain.test_properties import (
    CATALOG,
    OUTCOMES,
    SETTINGS,
    TODAY,
    _green_history,
    conditions,
    maybe_pain,
    no_flags,
    profiles,
    results,
)

TH = CATALOG.thresholds
WINDOW_DAYS = int(TH.history_window_days.value)
WINDOW_SESSIONS = int(TH.history_window_sessions.value)
FIRST_DAY = TODAY - timedelta(days=WINDOW_DAYS - 1)
PER_DAY_MAX = 12  # the service's limit on sessions logged for one date

# ---------------------------------------------------------------------------------------------
# Generators: long histories, cheaply. A handful of drawn sessions is dealt out over many
# dates (some well before the window, some dates crowded), so one example can hold more
# sessions than the window's cap without drawing every session from scratch.


@st.composite
def session_templates(draw: st.DrawFn) -> SessionRecord:
    return SessionRecord(
        date=TODAY,  # dealt out to real dates below
        exercises=tuple(draw(st.lists(results(), max_size=4))),
        completed=draw(st.booleans()),
        pain_before=draw(maybe_pain),
        pain_after=draw(maybe_pain),
        next_day_pain=draw(maybe_pain),
        symptom_change=draw(st.sampled_from(SymptomChange)),
        new_numbness_or_tingling=draw(st.integers(0, 9)) == 0,
    )


@st.composite
def long_histories(draw: st.DrawFn, per_day_max: int = PER_DAY_MAX) -> tuple[SessionRecord, ...]:
    kinds = draw(st.lists(session_templates(), min_size=1, max_size=6))
    shape = draw(st.sampled_from(("recent", "long", "crowded")))
    if shape == "recent":  # inside the window: nothing to summarise
        days = draw(st.lists(st.integers(0, WINDOW_DAYS - 1), max_size=20, unique=True))
    elif shape == "long":  # months of one or two sessions a day
        days = draw(st.lists(st.integers(0, 200), min_size=10, max_size=70, unique=True))
    else:  # busy days: more sessions than the window's cap
        reach = draw(st.sampled_from((WINDOW_DAYS - 1, 90)))
        days = draw(st.lists(st.integers(0, reach), min_size=10, max_size=40, unique=True))
    history: list[SessionRecord] = []
    for offset in days:
        count = draw(st.integers(1, per_day_max if shape == "crowded" else 2))
        for _ in range(count):
            kind = draw(st.sampled_from(kinds))
            history.append(replace(kind, date=TODAY - timedelta(days=offset)))
    return tuple(history)


@st.composite
def engine_histories(
    draw: st.DrawFn,
) -> tuple[Profile, Condition, tuple[SessionRecord, ...]]:
    """Sessions the engine itself prescribed over months, most green, some flared, spread,
    hit an alert or were missed: stand-ins, phase falls and green streaks all happen."""
    profile = draw(profiles)
    kind = draw(st.sampled_from(ConditionKind))
    days = draw(
        st.lists(
            st.tuples(st.sampled_from(OUTCOMES), st.integers(1, 4), st.booleans()),
            min_size=30,
            max_size=70,
        )
    )
    # Start far enough back that the history always reaches past the window.
    span = max(sum(gap for _, gap, _ in days) + 1, WINDOW_DAYS + 20)
    condition = _condition(kind, span + 10)
    history: list[SessionRecord] = []
    day = TODAY - timedelta(days=span)
    for outcome, gap, twice in days:
        plan = next_session(profile, condition, tuple(history), CATALOG, day)
        done = tuple(
            ExerciseResult(
                exercise_id=d.exercise_id,
                prescribed=d.dose,
                performed=d.dose,
                pain_during=7 if outcome == "pain_during" and i == 0 else 1,
                pain_after=8 if outcome == "alert" else 1,
                effort=4,
                symptom_change=SymptomChange.PERIPHERALISING
                if outcome == "spreading" and i == 0
                else SymptomChange.STABLE,
                slot=d.slot,
            )
            for i, d in enumerate(plan.exercises)
            if d.dose is not None
        )
        if twice:
            history.append(SessionRecord(date=day, exercises=done, pain_before=2, next_day_pain=2))
        history.append(
            SessionRecord(
                date=day,
                exercises=done,
                completed=outcome != "missed",
                pain_before=2,
                next_day_pain=5 if outcome == "next_day" else 2,
            )
        )
        day += timedelta(days=gap)
    return profile, condition, tuple(history)


def _condition(kind: ConditionKind, onset_days_ago: int, baseline_pain: int = 4) -> Condition:
    return Condition(
        kind=kind, onset_date=TODAY - timedelta(days=onset_days_ago), baseline_pain=baseline_pain
    )


def _day_pieces(older: tuple[SessionRecord, ...], cuts: list[int]) -> list[list[SessionRecord]]:
    """``older`` cut into pieces at day boundaries (``cuts`` pick among its distinct dates)."""
    dates = sorted({s.date for s in older})
    bounds = sorted({dates[c % len(dates)] for c in cuts}) if dates else []
    pieces: list[list[SessionRecord]] = [[] for _ in range(len(bounds) + 1)]
    for session in older:
        pieces[sum(1 for b in bounds if session.date >= b)].append(session)
    return [p for p in pieces if p]


def _fold(pieces: list[list[SessionRecord]], condition: Condition) -> HistorySummary | None:
    summary = None
    for piece in pieces:
        summary = summarise_history(summary, piece, condition, CATALOG)
    return summary


# ---------------------------------------------------------------------------------------------
# The same decision, whichever way the history is supplied


def _every_way_agrees(
    profile: Profile, condition: Condition, history: tuple[SessionRecord, ...], cuts: list[int]
) -> None:
    whole = next_session(profile, condition, history, CATALOG, TODAY)
    older, window = split_history(history, TODAY, CATALOG)
    summary = summarise_history(None, older, condition, CATALOG)
    assert next_session(profile, condition, window, CATALOG, TODAY, summary=summary) == whole
    pieces = _day_pieces(older, cuts)
    in_pieces = _fold(pieces, condition)
    assert in_pieces == summary
    assert next_session(profile, condition, window, CATALOG, TODAY, summary=in_pieces) == whole
    # More than the window supplied: the engine folds what falls before the window itself.
    if len(pieces) > 1:
        early = _fold(pieces[:1], condition)
        rest = tuple(s for piece in pieces[1:] for s in piece) + window
        assert next_session(profile, condition, rest, CATALOG, TODAY, summary=early) == whole


# A failing long history prints a huge example; let it print rather than fail on the warning.
LONG_REPR = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@LONG_REPR
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profiles,
    conditions(st.frozensets(st.sampled_from(RedFlag), max_size=1)),
    long_histories(),
    st.lists(st.integers(0, 100), min_size=1, max_size=3),
)
def test_the_window_and_its_summary_decide_exactly_as_the_whole_history(
    profile, condition, history, cuts
):
    _every_way_agrees(profile, condition, history, cuts)


@LONG_REPR
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine_histories(), st.lists(st.integers(0, 100), min_size=1, max_size=3))
def test_engine_built_histories_decide_the_same_from_the_window_and_summary(built, cuts):
    profile, condition, history = built
    assert split_history(history, TODAY, CATALOG)[0], "the history reaches past the window"
    _every_way_agrees(profile, condition, history, cuts)


@pytest.mark.parametrize("kind", list(ConditionKind))
def test_seventy_green_days_decide_the_same_from_the_window_and_summary(kind):
    """A long, regular, green programme: more sessions than the window holds."""
    profile = Profile(age=40, ability=AbilityLevel.INTERMEDIATE)
    condition = _condition(kind, 100)
    history = _green_history(profile, condition, WINDOW_SESSIONS + 10, 1, None)
    older, window = split_history(history, TODAY, CATALOG)
    assert older
    assert len(window) <= WINDOW_SESSIONS
    _every_way_agrees(profile, condition, history, [3, 17, 40])


@LONG_REPR
@SETTINGS
@given(no_flags, long_histories())
def test_the_phase_replay_and_the_counts_carry_over_the_summary(condition, history):
    protocol = CATALOG.protocol_for[condition.kind]
    older, window = split_history(history, TODAY, CATALOG)
    summary = summarise_history(None, older, condition, CATALOG)
    whole = HistoryView(
        history, CATALOG, baseline=condition.baseline_pain
    )  # no window: the full replay, as it always was
    windowed = HistoryView(window, CATALOG, summary, baseline=condition.baseline_pain)
    assert select_phase(protocol, condition, windowed, TODAY) == select_phase(
        protocol, condition, whole, TODAY
    )
    assert windowed.completed_sessions == whole.completed_sessions
    assert windowed.first_date == whole.first_date


# ---------------------------------------------------------------------------------------------
# The summary


@LONG_REPR
@SETTINGS
@given(no_flags, long_histories(), st.integers(0, 100))
def test_folding_in_pieces_is_folding_at_once(condition, history, cut):
    ordered = ordered_sessions(history)
    dates = sorted({s.date for s in ordered})
    if not dates:
        assert summarise_history(None, ordered, condition, CATALOG) is None
        return
    boundary = dates[cut % len(dates)]
    first = [s for s in ordered if s.date < boundary]
    second = [s for s in ordered if s.date >= boundary]
    at_once = summarise_history(None, ordered, condition, CATALOG)
    in_two = summarise_history(
        summarise_history(None, first, condition, CATALOG), second, condition, CATALOG
    )
    assert in_two == at_once
    assert at_once is not None
    assert at_once.sessions == len(history)
    assert at_once.completed_sessions == len({s.date for s in history if s.completed})
    assert (at_once.first_date, at_once.through) == (dates[0], dates[-1])
    assert summarise_history(at_once, (), condition, CATALOG) is at_once


def test_sessions_already_folded_are_refused():
    profile = Profile(age=40)
    condition = Condition(
        kind=ConditionKind.STRAIN, onset_date=TODAY - timedelta(days=90), baseline_pain=4
    )
    folded = SessionRecord(date=TODAY - timedelta(days=50))
    summary = summarise_history(None, [folded], condition, CATALOG)
    assert summary is not None
    again = SessionRecord(date=summary.through, completed=False)
    with pytest.raises(ValueError, match="already folded"):
        summarise_history(summary, [again], condition, CATALOG)
    with pytest.raises(ValueError, match="already folded"):
        next_session(profile, condition, (again,), CATALOG, TODAY, summary=summary)


def test_a_summary_phase_the_protocol_lacks_starts_the_phase_afresh():
    """Posture has no calm phase: a summary that says calm replays as if no phase was set."""
    profile = Profile(age=40)
    condition = Condition(
        kind=ConditionKind.POSTURE, onset_date=TODAY - timedelta(days=90), baseline_pain=3
    )
    assert Phase.CALM not in [p.id for p in CATALOG.protocol_for[ConditionKind.POSTURE].phases]
    base = HistorySummary(
        through=TODAY - timedelta(days=60),
        first_date=TODAY - timedelta(days=80),
        sessions=10,
        completed_sessions=10,
        phase=Phase.CALM,
        pain=2,
        held=False,
    )
    window = _green_history(profile, condition, 3, 2, None)
    lacking = next_session(profile, condition, window, CATALOG, TODAY, summary=base)
    fresh = next_session(
        profile, condition, window, CATALOG, TODAY, summary=replace(base, phase=None)
    )
    assert lacking == fresh


def test_the_trace_says_how_much_history_was_read():
    profile = Profile(age=40, ability=AbilityLevel.INTERMEDIATE)
    condition = Condition(
        kind=ConditionKind.STRAIN, onset_date=TODAY - timedelta(days=200), baseline_pain=4
    )
    history = _green_history(profile, condition, 40, 2, None)
    older, window = split_history(history, TODAY, CATALOG)
    rec = next_session(profile, condition, history, CATALOG, TODAY)
    step = next(t for t in rec.trace if t.rule == "read_history_window")
    assert (step.subject, step.outcome) == ("history", "window")
    assert step.detail == (
        f"{len(window)} sessions from {window[0].date.isoformat()}; "
        f"{len(older)} earlier sessions summarised"
    )
    assert rec.programme is not None
    assert rec.programme.completed_sessions == len(history)
    assert rec.programme.week == (TODAY - history[0].date).days // 7 + 1


def test_a_long_gap_still_steps_back_when_the_window_holds_only_missed_sessions():
    """Nothing completed for seven weeks, missed sessions logged inside the window: every
    exercise still steps back, counted from the last session before the window."""
    profile = Profile(age=40, ability=AbilityLevel.INTERMEDIATE)
    condition = Condition(
        kind=ConditionKind.STRAIN, onset_date=TODAY - timedelta(days=120), baseline_pain=4
    )
    trained = _green_history(profile, condition, 6, 2, None)
    shift = timedelta(days=50 - (TODAY - trained[-1].date).days)
    trained = tuple(replace(s, date=s.date - shift) for s in trained)  # last one 50 days ago
    missed = tuple(
        replace(trained[-1], date=TODAY - timedelta(days=d), completed=False) for d in (30, 10)
    )
    history = trained + missed
    assert split_history(history, TODAY, CATALOG) == (trained, missed)
    rec = next_session(profile, condition, history, CATALOG, TODAY)
    assert rec.status is RecommendationStatus.OK
    gaps = [r for d in rec.exercises for r in d.reasons if r.code == ReasonCode.LONG_GAP]
    assert gaps
    assert all(r.message.startswith("50 days since the last session") for r in gaps)


def test_unchanged_pain_still_asks_for_review_when_the_window_holds_no_session():
    """Pain no better after the review period: the latest pain the summary carries still
    counts when nothing was logged in the window."""
    profile = Profile(age=40)
    condition = _condition(ConditionKind.STRAIN, 120, baseline_pain=6)
    history = tuple(
        SessionRecord(date=TODAY - timedelta(days=d), pain_before=6, next_day_pain=6)
        for d in range(90, 60, -3)
    )
    assert split_history(history, TODAY, CATALOG)[1] == ()
    rec = next_session(profile, condition, history, CATALOG, TODAY)
    codes = [r.code for r in rec.clinician_review.reasons]
    assert ReasonCode.NO_MEANINGFUL_CHANGE in codes


# ---------------------------------------------------------------------------------------------
# The window


def _newest_first(history: tuple[SessionRecord, ...]) -> list[date]:
    return sorted((s.date for s in history), reverse=True)


@LONG_REPR
@SETTINGS
@given(long_histories())
def test_the_window_start_needs_only_the_newest_dates_within_the_day_window(history):
    everything = _newest_first(history)
    few = [d for d in everything if FIRST_DAY <= d <= TODAY][: WINDOW_SESSIONS + 1]
    start = window_start(few, TODAY, TH)
    assert start == window_start(everything, TODAY, TH)
    older, window = split_history(history, TODAY, CATALOG)
    assert all(s.date < start for s in older)
    assert all(s.date >= start for s in window)


@LONG_REPR
@SETTINGS
@given(long_histories())
def test_the_window_holds_at_most_its_sessions_and_its_days(history):
    older, window = split_history(history, TODAY, CATALOG)
    assert len(window) <= WINDOW_SESSIONS
    assert all(FIRST_DAY <= s.date <= TODAY for s in window)
    assert older + window == tuple(ordered_sessions(history))
    assert not older or not window or older[-1].date < window[0].date  # whole days
    # As large as it may be: the next older day would break one of the limits.
    if older and older[-1].date >= FIRST_DAY:
        on_day = sum(1 for s in older if s.date == older[-1].date)
        assert len(window) + on_day > WINDOW_SESSIONS
    # Never empty while there are sessions in the day window.
    assert window or not any(s.date >= FIRST_DAY for s in history)


def _days_ago(*offsets: int) -> list[date]:
    return [TODAY - timedelta(days=d) for d in offsets]


@pytest.mark.parametrize(
    ("dates", "start"),
    [
        ([], FIRST_DAY),
        (_days_ago(0, 3, 41, 42, 100), FIRST_DAY),  # the day bound; older dates are left out
        (_days_ago(*([1] * 30), *([5] * 30), 6), TODAY - timedelta(days=5)),  # exactly the cap
        (_days_ago(*([1] * 30), *([5] * 31)), TODAY - timedelta(days=4)),  # day 5 overflows
        (_days_ago(*([2] * 61), 3), TODAY - timedelta(days=2)),  # one day over the cap alone
        ([TODAY + timedelta(days=1), *_days_ago(*([0] * 60), 1)], TODAY),  # future skipped
    ],
)
def test_window_start_examples(dates, start):
    assert window_start(dates, TODAY, TH) == start


def test_window_start_refuses_dates_out_of_order():
    with pytest.raises(ValueError, match="newest first"):
        window_start(_days_ago(5, 3), TODAY, TH)


def _glute_session(days_ago: int, exercise_id: str, pain_during: int) -> SessionRecord:
    dose = Dose(sets=1, reps=8, per_week=3, rest_seconds=45)
    result = ExerciseResult(
        exercise_id=exercise_id,
        prescribed=dose,
        performed=dose,
        pain_during=pain_during,
        pain_after=min(pain_during, 5),
        effort=4,
        slot="glute-bridge",
    )
    return SessionRecord(
        date=TODAY - timedelta(days=days_ago),
        exercises=(result,),
        pain_before=2,
        pain_after=2,
        next_day_pain=2,
    )


@pytest.mark.parametrize(
    ("before_window", "stand_in_days", "expected"),
    [
        ("bridge-hold", (3,), ("sit-to-stand", "maintained")),
        ("bridge-hold", (5, 3), ("bridge-hold", "substituted")),
        ("sit-to-stand", (3,), ("bridge-hold", "substituted")),
    ],
    ids=["home-flared-not-yet-earned", "home-flared-earned-a-step", "home-never-done"],
)
def test_a_stand_in_returns_home_only_once_earned_when_the_home_flared_before_the_window(
    before_window: str, stand_in_days: tuple[int, ...], expected: tuple[str, str]
) -> None:
    """The window no longer shows how the home exercise went (it flared 60 days ago), so
    the stand-in holds the slot until it has earned a step, as after a flare. When the
    home exercise was never done, there is nothing hidden: it returns at once."""
    profile = Profile(age=40, ability=AbilityLevel.BEGINNER)
    condition = Condition(
        kind=ConditionKind.STRAIN, onset_date=TODAY - timedelta(days=90), baseline_pain=5
    )
    history = (
        _glute_session(60, before_window, pain_during=7),
        *(_glute_session(d, "sit-to-stand", pain_during=0) for d in stand_in_days),
    )
    rec = next_session(profile, condition, history, CATALOG, TODAY)
    slot = next(d for d in rec.exercises if d.slot == "glute-bridge")
    assert (slot.exercise_id, slot.change.value) == expected
