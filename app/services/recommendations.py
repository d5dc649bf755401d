"""Stateless recommendations: map the request to domain inputs, check what the schema cannot
(dates against today, exercise ids against the catalog, the configured history cap), decide."""

from __future__ import annotations

from datetime import date

from app.api.schemas import (
    ConditionIn,
    DoseIn,
    ExerciseResultIn,
    ProfileIn,
    RecommendationRequest,
    SessionIn,
)
from app.domain.catalog import Catalog
from app.domain.engine import next_session
from app.domain.types import (
    Condition,
    Dose,
    ExerciseResult,
    Profile,
    Recommendation,
    SessionRecord,
)
from app.errors import InvalidInput

__all__ = ["recommend", "to_condition", "to_exercise_result", "to_history", "to_profile"]


def to_dose(dose: DoseIn) -> Dose:
    return Dose(
        sets=dose.sets,
        reps=dose.reps,
        hold_seconds=dose.hold_seconds,
        duration_seconds=dose.duration_seconds,
        load_kg=dose.load_kg,
        per_side=dose.per_side,
        rest_seconds=dose.rest_seconds,
        per_week=dose.per_week,
        per_day=dose.per_day,
    )


def to_profile(profile: ProfileIn) -> Profile:
    return Profile(
        age=profile.age,
        ability=profile.ability,
        equipment=frozenset(profile.equipment),
        contraindications=frozenset(profile.contraindications),
        minutes_available=profile.minutes_available,
    )


def to_condition(condition: ConditionIn, today: date) -> Condition:
    if condition.onset_date > today:
        raise InvalidInput("condition.onset_date", f"is after today ({today.isoformat()})")
    return Condition(
        kind=condition.kind,
        onset_date=condition.onset_date,
        baseline_pain=condition.baseline_pain,
        red_flags=frozenset(condition.red_flags),
        side=condition.side,
        directional_preference=condition.directional_preference,
        stenosis_like_symptoms=condition.stenosis_like_symptoms,
    )


def to_exercise_result(result: ExerciseResultIn, where: str, catalog: Catalog) -> ExerciseResult:
    if result.exercise_id not in catalog.by_id:
        raise InvalidInput(f"{where}.exercise_id", f"unknown exercise {result.exercise_id!r}")
    return ExerciseResult(
        exercise_id=result.exercise_id,
        prescribed=to_dose(result.prescribed),
        performed=None if result.performed is None else to_dose(result.performed),
        completed=result.completed,
        pain_during=result.pain_during,
        pain_after=result.pain_after,
        effort=result.effort,
        symptom_change=result.symptom_change,
        slot=result.slot,
    )


def to_history(
    sessions: list[SessionIn], today: date, catalog: Catalog, max_sessions: int
) -> tuple[SessionRecord, ...]:
    if len(sessions) > max_sessions:
        raise InvalidInput("history", f"has {len(sessions)} sessions; at most {max_sessions}")
    out: list[SessionRecord] = []
    for i, session in enumerate(sessions):
        if session.date > today:
            raise InvalidInput(f"history[{i}].date", f"is after today ({today.isoformat()})")
        out.append(
            SessionRecord(
                date=session.date,
                exercises=tuple(
                    to_exercise_result(r, f"history[{i}].exercises[{j}]", catalog)
                    for j, r in enumerate(session.exercises)
                ),
                completed=session.completed,
                pain_before=session.pain_before,
                pain_after=session.pain_after,
                next_day_pain=session.next_day_pain,
                symptom_change=session.symptom_change,
                new_numbness_or_tingling=session.new_numbness_or_tingling,
            )
        )
    return tuple(out)


def recommend(
    request: RecommendationRequest, catalog: Catalog, clock_today: date, max_sessions: int
) -> Recommendation:
    """Decide the next session from a self-contained request; nothing is stored."""
    today = request.today or clock_today
    return next_session(
        to_profile(request.profile),
        to_condition(request.condition, today),
        to_history(request.history, today, catalog, max_sessions),
        catalog,
        today,
    )
