"""Time one engine decision on a realistic 20-session history; prints median and p99 (µs).

The history is built by the engine itself (each session is the one it prescribed, logged
green with a next-day pain report), so the decision being timed does real work: phase
staging, green gates, progression steps, the volume cap and time fitting.

The sweep over history length times two ways of supplying the history: all of it in one
call, and the way the service does it, the decision window plus the stored summary of the
sessions before it (``summarise_history``, folded once, outside the timing). The second
should stay flat however long the history is.

A stateless request also pays to convert its history from the API's models to the domain's
(``to_history``); that is timed too, on the same 20 sessions.

Usage: python bench/engine.py [--decisions N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.api.schemas import SessionIn
from app.catalog.loader import default_catalog
from app.domain.engine import next_session
from app.domain.history import split_history, summarise_history
from app.domain.types import (
    AbilityLevel,
    Condition,
    ConditionKind,
    DirectionalPreference,
    Equipment,
    ExerciseResult,
    HistorySummary,
    Profile,
    SessionRecord,
    Side,
)
from app.services.recommendations import to_history

TODAY = date(2026, 11, 24)


def build_history(
    profile: Profile, condition: Condition, sessions: int
) -> tuple[SessionRecord, ...]:
    """``sessions`` green sessions, every other day, each the one the engine prescribed.

    Built as the service decides: each plan reads the window, with everything older folded
    into the summary once, so long histories build in linear time.
    """
    catalog = default_catalog()
    history: list[SessionRecord] = []
    summary: HistorySummary | None = None
    window: tuple[SessionRecord, ...] = ()
    day = TODAY - timedelta(days=2 * sessions)
    while len(history) < sessions:
        older, window = split_history(window, day, catalog)
        summary = summarise_history(summary, older, condition, catalog)
        plan = next_session(profile, condition, window, catalog, day, summary=summary)
        results = tuple(
            ExerciseResult(
                exercise_id=d.exercise_id,
                prescribed=d.dose,
                performed=d.dose,
                pain_during=1,
                pain_after=1,
                effort=5,
                slot=d.slot,
            )
            for d in plan.exercises
            if d.dose is not None
        )
        if results:
            session = SessionRecord(date=day, exercises=results, pain_before=2, next_day_pain=2)
            history.append(session)
            window = (*window, session)
        day += timedelta(days=2)
    return tuple(history)


def _time(profile, condition, history, decisions: int, summary=None) -> list[float]:
    catalog = default_catalog()
    return _time_call(
        lambda: next_session(profile, condition, history, catalog, TODAY, summary), decisions
    )


def _time_call(call: Callable[[], object], runs: int) -> list[float]:
    """Sorted µs per call, after warming caches and the interpreter's specialisation."""
    for _ in range(min(500, runs)):
        call()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        start = clock()
        call()
        samples.append((clock() - start) / 1000)
    samples.sort()
    return samples


def _p99(samples: list[float]) -> float:
    return samples[max(0, int(len(samples) * 0.99) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    args = parser.parse_args()

    catalog = default_catalog()
    profile = Profile(
        age=45,
        ability=AbilityLevel.INTERMEDIATE,
        equipment=frozenset({Equipment.BAND}),
        minutes_available=40,
    )
    condition = Condition(
        kind=ConditionKind.SCIATICA,
        onset_date=TODAY - timedelta(days=90),
        baseline_pain=6,
        side=Side.LEFT,
        directional_preference=DirectionalPreference.EXTENSION,
    )
    history = build_history(profile, condition, 20)
    result = next_session(profile, condition, history, catalog, TODAY)
    samples = _time(profile, condition, history, args.decisions)
    median = statistics.median(samples)
    decided = len(result.exercises) + len(result.removed)
    phase = result.programme.phase.value if result.programme else "-"

    print(
        f"history: {len(history)} sessions, "
        f"{sum(len(s.exercises) for s in history)} exercise results"
    )
    print(f"decision: {result.status.value}, phase {phase}, {len(result.exercises)} exercises")
    print(f"summary: {result.summary}")
    print(f"decisions timed: {len(samples)}")
    print(f"median: {median:.1f} µs per recommendation (a whole session)")
    print(f"p99:    {_p99(samples):.1f} µs per recommendation")
    print(f"per exercise decided: {median / max(decided, 1):.1f} µs ({decided} exercises)")
    print("goal:   median <= 50 µs per recommendation")
    # The same history as a stateless request carries it: validated API models.
    sessions = [SessionIn.model_validate(asdict(session)) for session in history]
    conversion = _time_call(lambda: to_history(sessions, TODAY, catalog, len(sessions)), 2000)
    print(
        f"request conversion (to_history, {len(sessions)} sessions): "
        f"median {statistics.median(conversion):.1f} µs"
    )
    print()
    print("history length sweep (same person, median µs per recommendation):")
    print("  sessions   whole history in one call      window + stored summary")
    base = None
    for sessions in (0, 5, 20, 80, 200, 1000):
        sweep = build_history(profile, condition, sessions) if sessions != 20 else history
        older, window = split_history(sweep, TODAY, catalog)
        summary = summarise_history(None, older, condition, catalog)
        # The same recommendation either way; only the cost of reading the history differs.
        assert next_session(profile, condition, window, catalog, TODAY, summary) == next_session(
            profile, condition, sweep, catalog, TODAY
        )
        runs = max(1000, args.decisions // 10)
        whole = statistics.median(_time(profile, condition, sweep, runs))
        windowed = statistics.median(_time(profile, condition, window, runs, summary))
        base = base or windowed
        print(
            f"  {sessions:8d}   {whole:7.1f} µs ({whole / base:5.2f}x)"
            f"          {windowed:7.1f} µs ({windowed / base:.2f}x, {len(window)} in the window)"
        )


if __name__ == "__main__":
    main()
