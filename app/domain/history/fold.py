"""The phase replay, and the summary that carries it past the decision window.

The one thing a decision needs from the whole history, the phase replay, is a left fold over
training days: its running state (``HistorySummary``) stands in exactly for the sessions it
folded. A decision is therefore the same whether the history arrives whole, as the window
plus the summary of what came before, or with that summary folded in several pieces.

Each day's plan is replayed as the decision on that day made it: at most one phase up, none
after a day that broke streaks, and none while the trends (``signals.trend_holds``) held it.
The trends' own state (the first weeks' pain, the last two weeks' digests) is folded too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import NamedTuple

from app.domain.catalog import Catalog, ConditionProtocol, Thresholds
from app.domain.history.window import ordered_sessions
from app.domain.signals import NO_TREND, TrainingDay, training_days
from app.domain.trends import trend_holds, trim_trend
from app.domain.types import Condition, HistorySummary, SessionRecord, Trend

__all__ = [
    "PhaseFold",
    "fold_training_days",
    "phase_for_day",
    "phase_reached",
    "resume_fold",
    "summarise_history",
]


class PhaseFold(NamedTuple):
    """The phase replay's running state after some training days (what a summary keeps)."""

    phase_index: int | None  # the phase the last training day was planned at; None: no day
    completed: int  # completed training days so far
    pain: int | None  # the latest reported pain; None: none yet, read as the baseline
    held: bool  # the last training day holds the phase
    trend: Trend  # what the trend signals read


def resume_fold(protocol: ConditionProtocol, summary: HistorySummary | None) -> PhaseFold:
    """The replay's state a summary carries, in this protocol's terms.

    A phase the protocol does not have (the summary was folded under another protocol)
    starts the phase afresh from the entry criteria; the counts and pain still stand.
    """
    if summary is None:
        return PhaseFold(None, 0, None, False, NO_TREND)
    index = next((i for i, p in enumerate(protocol.phases) if p.id is summary.phase), None)
    return PhaseFold(index, summary.completed_sessions, summary.pain, summary.held, summary.trend)


def phase_reached(protocol: ConditionProtocol, days: int, completed: int, pain: int) -> int:
    """The furthest phase whose entry criteria, and all earlier phases' criteria, hold."""
    reached = 0
    for index, (min_days, min_completed, max_pain) in enumerate(protocol.entry_criteria):
        if days >= min_days and completed >= min_completed and pain <= max_pain:
            reached = index
        else:
            break
    return reached


def phase_for_day(
    protocol: ConditionProtocol,
    condition: Condition,
    th: Thresholds,
    state: PhaseFold,
    day: date,
) -> int:
    """The phase a plan given on ``day`` gets: the furthest reached, at most one above the
    last training day's, and no higher than it after a day that held it or while the trends
    hold it."""
    index, completed, pain, held, trend = state
    return _planned(protocol, condition, th, index, completed, pain, held, lambda: trend, day)


def _planned(
    protocol: ConditionProtocol,
    condition: Condition,
    th: Thresholds,
    index: int | None,
    completed: int,
    pain: int | None,
    held: bool,
    trend: Callable[[], Trend],
    day: date,
) -> int:
    """``phase_for_day`` on the fold's running values; the trend is built only when a rise
    is on offer (most days it is not, and every decision folds its whole window)."""
    if pain is None:
        pain = condition.baseline_pain
    reached = phase_reached(protocol, (day - condition.onset_date).days, completed, pain)
    if index is None or reached <= index:
        return reached  # no rise is on offer, so nothing needs to hold it
    if held or trend_holds(trend(), condition.baseline_pain, th, day):
        return index
    return index + 1


def fold_training_days(
    protocol: ConditionProtocol,
    condition: Condition,
    th: Thresholds,
    days: Sequence[TrainingDay],
    state: PhaseFold,
) -> PhaseFold:
    """Replay ``days`` (oldest first, all after the days ``state`` has folded) one training
    day at a time: each day's plan gets ``phase_for_day``, then the day counts once if any
    of its sessions was completed, its latest reported pain is taken, a day that breaks
    streaks (missed, flared, alert, spreading) holds the phase, and the trends take it in.

    A left fold over whole days, so folding days in pieces gives what folding them at once
    does: that is what lets a summary stand in for the sessions it folded.
    """
    index, completed, pain, held, start = state
    first, early_total, early_count = start.first, start.early_total, start.early_count
    early_days = th.early_weeks_days.value
    digests = list(start.recent)
    early_end = first + timedelta(days=int(early_days)) if first is not None else date.max

    def trend_then() -> Trend:
        # Untrimmed: the signals read only their own windows, from the newest end.
        return Trend(first, early_total, early_count, tuple(digests))

    for day in days:
        index = _planned(
            protocol, condition, th, index, completed, pain, held, trend_then, day.date
        )
        if day.completed:
            completed += 1
            if day.latest_pain is not None:
                pain = day.latest_pain
        held = day.breaks_streaks
        if first is None:
            first = day.date
            early_end = first + timedelta(days=int(early_days))
        if day.pains and day.date < early_end:
            early_total += sum(day.pains)
            early_count += len(day.pains)
        digests.append(day.digest)
    return PhaseFold(index, completed, pain, held, trim_trend(trend_then(), th))


def summarise_history(
    summary: HistorySummary | None,
    sessions: Sequence[SessionRecord],
    condition: Condition,
    catalog: Catalog,
) -> HistorySummary | None:
    """``summary`` with ``sessions`` folded in: the same day-by-day phase replay a decision
    makes (``select_phase``), plus the counts and first date the programme position needs.

    ``sessions`` must all be dated after ``summary.through`` (days are folded whole), in any
    order; ``summary`` comes back unchanged when there are none. Folding in pieces gives
    what folding at once does: ``summarise_history(summarise_history(None, a, ...), b, ...)
    == summarise_history(None, a + b, ...)`` when every date in ``a`` is before every date
    in ``b``. The fold depends on the condition (onset, baseline pain, protocol) and the
    catalog: fold again from the sessions when either changes.
    """
    if not sessions:
        return summary
    ordered = ordered_sessions(sessions)
    if summary is not None and ordered[0].date <= summary.through:
        raise ValueError(
            f"a session dated {ordered[0].date.isoformat()} is already folded into the "
            f"summary through {summary.through.isoformat()}"
        )
    protocol = catalog.protocol_for[condition.kind]
    th = catalog.thresholds
    days = training_days(ordered, th, condition.baseline_pain)
    state = fold_training_days(protocol, condition, th, days, resume_fold(protocol, summary))
    assert state.phase_index is not None  # at least one training day was folded
    return HistorySummary(
        through=ordered[-1].date,
        first_date=ordered[0].date if summary is None else summary.first_date,
        sessions=len(ordered) + (0 if summary is None else summary.sessions),
        completed_sessions=state.completed,
        phase=protocol.phases[state.phase_index].id,
        pain=state.pain,
        held=state.held,
        exercises_done=frozenset(r.exercise_id for s in ordered for r in s.exercises)
        | (frozenset() if summary is None else summary.exercises_done),
        trend=state.trend,
    )
