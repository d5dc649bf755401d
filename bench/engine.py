"""Time one engine decision on a realistic 20-session history; prints median and p99 (µs).

The history is built by the engine itself (each session is the one it prescribed, logged
green with a next-day pain report), so the decision being timed does real work: phase
staging, green gates, progression steps, the volume cap and time fitting.

Usage: python bench/engine.py [--decisions N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.catalog.loader import default_catalog
from app.domain.engine import next_session
from app.domain.types import (
    AbilityLevel,
    Condition,
    ConditionKind,
    DirectionalPreference,
    Equipment,
    ExerciseResult,
    Profile,
    SessionRecord,
    Side,
)

TODAY = date(2026, 11, 24)


def build_history(
    profile: Profile, condition: Condition, sessions: int
) -> tuple[SessionRecord, ...]:
    catalog = default_catalog()
    history: list[SessionRecord] = []
    day = TODAY - timedelta(days=2 * sessions)
    while len(history) < sessions:
        plan = next_session(profile, condition, tuple(history), catalog, day)
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
            history.append(
                SessionRecord(date=day, exercises=results, pain_before=2, next_day_pain=2)
            )
        day += timedelta(days=2)
    return tuple(history)


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

    for _ in range(500):  # warm caches and the interpreter's specialisation
        next_session(profile, condition, history, catalog, TODAY)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(args.decisions):
        start = clock()
        next_session(profile, condition, history, catalog, TODAY)
        samples.append((clock() - start) / 1000)
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(
        f"history: {len(history)} sessions, "
        f"{sum(len(s.exercises) for s in history)} exercise results"
    )
    phase = result.programme.phase.value if result.programme else "-"
    print(f"decision: {result.status.value}, phase {phase}, {len(result.exercises)} exercises")
    print(f"summary: {result.summary}")
    print(f"decisions timed: {len(samples)}")
    print(f"median: {statistics.median(samples):.1f} µs")
    print(f"p99:    {p99:.1f} µs")
    print("goal:   median <= 50 µs")


if __name__ == "__main__":
    main()
