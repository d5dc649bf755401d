"""Stateless recommendations: map the request to domain inputs, check what the schema cannot
(dates against today, exercise ids against the catalog, the configured history cap), decide."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import fields
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
from app.telemetry import count_recommendation

__all__ = ["recommend", "to_condition", "to_exercise_result", "to_history", "to_profile"]


# A dose's values in ``Dose`` field order, read in one C call: ``Dose(*_dose_key(d))``.
_DoseKey = tuple[int, int | None, int | None, int | None, float | None, bool, int, int, int]
_dose_key: Callable[[DoseIn], _DoseKey] = operator.attrgetter(*(f.name for f in fields(Dose)))


class _Doses(dict[_DoseKey, Dose]):
    """The doses one request has converted so far, by value.

    A history repeats a few doses many times (each prescription is logged as prescribed and
    as performed, session after session), and a ``Dose`` costs far more to build than to
    look up. Doses are immutable, so sharing one between results changes nothing. Keys from
    validated request models are exact: ``load_kg`` is always a float, the rest ints and
    bools, so equal keys are identical doses.
    """

    def __missing__(self, key: _DoseKey) -> Dose:
        dose = self[key] = Dose(*key)
        return dose


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
        raise _unknown_exercise(where, result.exercise_id)
    return _exercise_results([result], _Doses())[0]


def _unknown_exercise(where: str, exercise_id: str) -> InvalidInput:
    return InvalidInput(f"{where}.exercise_id", f"unknown exercise {exercise_id!r}")


def _exercise_results(results: list[ExerciseResultIn], doses: _Doses) -> tuple[ExerciseResult, ...]:
    # One comprehension per session and positional fields (``ExerciseResult`` order): a
    # request carries hundreds of results, so the per-result cost is most of the conversion.
    return tuple(
        [
            ExerciseResult(
                r.exercise_id,
                doses[_dose_key(r.prescribed)],
                None if r.performed is None else doses[_dose_key(r.performed)],
                r.completed,
                r.pain_during,
                r.pain_after,
                r.effort,
                r.symptom_change,
                r.slot,
            )
            for r in results
        ]
    )


def to_history(
    sessions: list[SessionIn], today: date, catalog: Catalog, max_sessions: int
) -> tuple[SessionRecord, ...]:
    if len(sessions) > max_sessions:
        raise InvalidInput("history", f"has {len(sessions)} sessions; at most {max_sessions}")
    known = catalog.by_id
    doses = _Doses()
    out: list[SessionRecord] = []
    for i, session in enumerate(sessions):
        if session.date > today:
            raise InvalidInput(f"history[{i}].date", f"is after today ({today.isoformat()})")
        for j, result in enumerate(session.exercises):
            if result.exercise_id not in known:
                raise _unknown_exercise(f"history[{i}].exercises[{j}]", result.exercise_id)
        out.append(
            SessionRecord(  # positional, in field order, like the results
                session.date,
                _exercise_results(session.exercises, doses),
                session.completed,
                session.pain_before,
                session.pain_after,
                session.next_day_pain,
                session.symptom_change,
                session.new_numbness_or_tingling,
            )
        )
    return tuple(out)


def recommend(
    request: RecommendationRequest, catalog: Catalog, clock_today: date, max_sessions: int
) -> Recommendation:
    """Decide the next session from a self-contained request; nothing is stored."""
    today = request.today or clock_today
    decision = next_session(
        to_profile(request.profile),
        to_condition(request.condition, today),
        to_history(request.history, today, catalog, max_sessions),
        catalog,
        today,
    )
    count_recommendation(decision, "stateless")
    return decision
