"""Domain values to and from the JSON kept in the database.

The shapes are those of the public request body (``DoseIn``, ``ExerciseResultIn``,
``SessionIn``, ``ProfileIn``, ``ConditionIn``), so a stored recommendation's inputs read
like the stateless request that would reproduce it. Decoding builds the frozen domain
values directly: it runs for every session of every decision window, and the data was
validated on the way in.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from app.domain.types import (
    NO_TREND,
    AbilityLevel,
    Condition,
    ConditionKind,
    Contraindication,
    DayDigest,
    DirectionalPreference,
    Dose,
    Equipment,
    ExerciseResult,
    HistorySummary,
    Phase,
    Profile,
    RedFlag,
    SessionRecord,
    Side,
    SymptomChange,
    Trend,
)

__all__ = [
    "condition_from_json",
    "condition_json",
    "dose_from_json",
    "dose_json",
    "exercise_result_from_json",
    "exercise_result_json",
    "profile_from_json",
    "profile_json",
    "session_from_json",
    "session_json",
    "summary_from_json",
    "summary_json",
]

Json = dict[str, Any]


def dose_json(dose: Dose) -> Json:
    return {
        "sets": dose.sets,
        "reps": dose.reps,
        "hold_seconds": dose.hold_seconds,
        "duration_seconds": dose.duration_seconds,
        "load_kg": dose.load_kg,
        "per_side": dose.per_side,
        "rest_seconds": dose.rest_seconds,
        "per_week": dose.per_week,
        "per_day": dose.per_day,
    }


def dose_from_json(data: Json) -> Dose:
    load = data.get("load_kg")
    return Dose(
        sets=data["sets"],
        reps=data.get("reps"),
        hold_seconds=data.get("hold_seconds"),
        duration_seconds=data.get("duration_seconds"),
        load_kg=None if load is None else float(load),
        per_side=data.get("per_side", False),
        rest_seconds=data.get("rest_seconds", 0),
        per_week=data.get("per_week", 3),
        per_day=data.get("per_day", 1),
    )


def exercise_result_json(result: ExerciseResult) -> Json:
    return {
        "exercise_id": result.exercise_id,
        "prescribed": dose_json(result.prescribed),
        "performed": None if result.performed is None else dose_json(result.performed),
        "completed": result.completed,
        "pain_during": result.pain_during,
        "pain_after": result.pain_after,
        "effort": result.effort,
        "symptom_change": result.symptom_change.value,
        "slot": result.slot,
    }


def exercise_result_from_json(data: Json) -> ExerciseResult:
    performed = data.get("performed")
    return ExerciseResult(
        exercise_id=data["exercise_id"],
        prescribed=dose_from_json(data["prescribed"]),
        performed=None if performed is None else dose_from_json(performed),
        completed=data.get("completed", True),
        pain_during=data.get("pain_during"),
        pain_after=data.get("pain_after"),
        effort=data.get("effort"),
        symptom_change=SymptomChange(data.get("symptom_change", "stable")),
        slot=data.get("slot"),
    )


def session_json(session: SessionRecord) -> Json:
    return {
        "date": session.date.isoformat(),
        "completed": session.completed,
        "exercises": [exercise_result_json(r) for r in session.exercises],
        "pain_before": session.pain_before,
        "pain_after": session.pain_after,
        "next_day_pain": session.next_day_pain,
        "symptom_change": session.symptom_change.value,
        "new_numbness_or_tingling": session.new_numbness_or_tingling,
    }


def session_from_json(data: Json) -> SessionRecord:
    return SessionRecord(
        date=date.fromisoformat(data["date"]),
        exercises=tuple(exercise_result_from_json(r) for r in data["exercises"]),
        completed=data["completed"],
        pain_before=data.get("pain_before"),
        pain_after=data.get("pain_after"),
        next_day_pain=data.get("next_day_pain"),
        symptom_change=SymptomChange(data.get("symptom_change", "stable")),
        new_numbness_or_tingling=data.get("new_numbness_or_tingling", False),
    )


def profile_json(profile: Profile) -> Json:
    return {
        "age": profile.age,
        "ability": profile.ability.value,
        # Sorted: the same profile always serialises the same way.
        "equipment": sorted(e.value for e in profile.equipment),
        "contraindications": sorted(c.value for c in profile.contraindications),
        "minutes_available": profile.minutes_available,
    }


def profile_from_json(data: Json) -> Profile:
    return Profile(
        age=data["age"],
        ability=AbilityLevel(data["ability"]),
        equipment=frozenset(Equipment(e) for e in data["equipment"]),
        contraindications=frozenset(Contraindication(c) for c in data["contraindications"]),
        minutes_available=data["minutes_available"],
    )


def condition_json(condition: Condition) -> Json:
    return {
        "kind": condition.kind.value,
        "onset_date": condition.onset_date.isoformat(),
        "baseline_pain": condition.baseline_pain,
        "red_flags": sorted(f.value for f in condition.red_flags),
        "side": condition.side.value,
        "directional_preference": condition.directional_preference.value,
        "stenosis_like_symptoms": condition.stenosis_like_symptoms,
    }


def condition_from_json(data: Json) -> Condition:
    return Condition(
        kind=ConditionKind(data["kind"]),
        onset_date=date.fromisoformat(data["onset_date"]),
        baseline_pain=data["baseline_pain"],
        red_flags=frozenset(RedFlag(f) for f in data["red_flags"]),
        side=Side(data["side"]),
        directional_preference=DirectionalPreference(data["directional_preference"]),
        stenosis_like_symptoms=data["stenosis_like_symptoms"],
    )


def summary_json(summary: HistorySummary) -> Json:
    return {
        "through": summary.through.isoformat(),
        "first_date": summary.first_date.isoformat(),
        "sessions": summary.sessions,
        "completed_sessions": summary.completed_sessions,
        "phase": None if summary.phase is None else summary.phase.value,
        "pain": summary.pain,
        "held": summary.held,
        "exercises_done": sorted(summary.exercises_done),
        "trend": trend_json(summary.trend),
    }


def trend_json(trend: Trend) -> Json:
    return {
        "first": None if trend.first is None else trend.first.isoformat(),
        "early_total": trend.early_total,
        "early_count": trend.early_count,
        "recent": [
            [d.date.isoformat(), list(d.pains), d.pain_before, d.flared] for d in trend.recent
        ],
    }


def trend_from_json(data: Json | None) -> Trend:
    if not data:
        return NO_TREND
    return Trend(
        first=None if data["first"] is None else date.fromisoformat(data["first"]),
        early_total=data["early_total"],
        early_count=data["early_count"],
        recent=tuple(
            DayDigest(date.fromisoformat(day), tuple(pains), before, flared)
            for day, pains, before, flared in data["recent"]
        ),
    )


def summary_from_json(data: Json) -> HistorySummary:
    return HistorySummary(
        through=date.fromisoformat(data["through"]),
        first_date=date.fromisoformat(data["first_date"]),
        sessions=data["sessions"],
        completed_sessions=data["completed_sessions"],
        phase=None if data["phase"] is None else Phase(data["phase"]),
        pain=data["pain"],
        held=data["held"],
        exercises_done=frozenset(data.get("exercises_done", ())),
        trend=trend_from_json(data.get("trend")),
    )
