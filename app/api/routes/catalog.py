"""Read-only catalog routes: exercises, condition protocols and the ruleset."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import CatalogDep
from app.api.responses import problems
from app.api.schemas import (
    ConditionProtocolOut,
    ExerciseOut,
    ExercisePage,
    RedFlagOut,
    RuleOut,
    RulesetOut,
    SignalOut,
    ThresholdOut,
)
from app.domain.catalog import Catalog, Exercise
from app.domain.dosing import estimated_seconds, start_dose_for
from app.domain.reasons import MESSAGES
from app.domain.rulebook import RULEBOOK, rule_entries
from app.domain.signals import SIGNALS
from app.domain.types import Category, ConditionKind, Equipment
from app.errors import NotFound

router = APIRouter(prefix="/v1", tags=["catalog"])


def _exercise_out(exercise: Exercise, catalog: Catalog) -> ExerciseOut:
    # An adult's starting dose, as the engine prescribes it (a stretch repeated to a minute).
    adult = int(catalog.thresholds.older_adult_age.value) - 1
    dose = start_dose_for(exercise, adult, catalog.thresholds)
    seconds = estimated_seconds(
        dose, exercise.dose.tempo_seconds, catalog.thresholds.set_change_seconds.value
    )
    return ExerciseOut.model_validate(
        {**exercise.model_dump(mode="json"), "minutes_estimate": round(seconds / 60, 1)}
    )


@router.get(
    "/exercises",
    operation_id="list_exercises",
    summary="List the exercise catalog",
    description=(
        "Filters combine. `condition` leaves out exercises avoided for that condition; "
        "`equipment` (repeatable) keeps exercises doable with only those items plus "
        "household ones (chair, wall, towel ...); `equipment=mat` alone lists what needs no "
        "special kit."
    ),
    response_model=ExercisePage,
    responses=problems(401, 422, 429, 503),
)
async def list_exercises(
    catalog: CatalogDep,
    condition: ConditionKind | None = None,
    category: Category | None = None,
    ladder: Annotated[str | None, Query(max_length=80)] = None,
    equipment: Annotated[list[Equipment] | None, Query(max_length=len(Equipment))] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> ExercisePage:
    have = None if equipment is None else set(equipment) | catalog.household
    matches = [
        e
        for e in catalog.exercises
        if (condition is None or e.conditions[condition] != "avoid")
        and (category is None or e.category is category)
        and (ladder is None or e.ladder == ladder)
        and (have is None or set(e.equipment) <= have)
    ]
    page = matches[offset : offset + limit]
    return ExercisePage(
        items=[_exercise_out(e, catalog) for e in page],
        total=len(matches),
        limit=limit,
        offset=offset,
    )


@router.get(
    "/exercises/{exercise_id}",
    operation_id="get_exercise",
    description=(
        "One catalog exercise: its ladder and level, dose bounds and progression order, "
        "equipment, ratings per condition, cautions per contraindication, instructions and "
        "cues."
    ),
    summary="One exercise with its dose bounds, cautions and instructions",
    response_model=ExerciseOut,
    responses=problems(401, 404, 422, 429, 503),
)
async def get_exercise(exercise_id: str, catalog: CatalogDep) -> ExerciseOut:
    exercise = catalog.by_id.get(exercise_id)
    if exercise is None:
        raise NotFound(f"No exercise {exercise_id!r}.")
    return _exercise_out(exercise, catalog)


@router.get(
    "/conditions",
    operation_id="list_conditions",
    description=(
        "The four condition protocols as data: what each emphasises, what to avoid, the "
        "phases with their entry criteria and slots, and the education points."
    ),
    summary="The four condition protocols: emphasis, avoid list, phases and slots",
    response_model=list[ConditionProtocolOut],
    responses=problems(401, 429, 503),
)
async def list_conditions(catalog: CatalogDep) -> list[ConditionProtocolOut]:
    return [
        ConditionProtocolOut.model_validate(p.model_dump(mode="json")) for p in catalog.protocols
    ]


@router.get(
    "/ruleset",
    operation_id="get_ruleset",
    description=(
        "The ruleset in force: its version (which every recommendation carries), the rules in "
        "precedence order, every threshold with unit, description and source, the red flags, "
        "and the text of every reason code."
    ),
    summary="The ruleset in force: version, rules in order, thresholds with sources",
    response_model=RulesetOut,
    responses=problems(401, 429, 503),
)
async def get_ruleset(catalog: CatalogDep) -> RulesetOut:
    thresholds = catalog.thresholds.model_dump(mode="json")
    return RulesetOut(
        ruleset_version=catalog.ruleset_version,
        rules_version=catalog.rules_version,
        rules=[rule.__name__ for rule in RULEBOOK],
        rulebook=[
            RuleOut(name=e.name, stage=e.stage.value, statement=e.statement, source=e.source)
            for e in rule_entries()
        ],
        signals=[
            SignalOut(name=s.name, meaning=s.meaning, thresholds=list(s.thresholds))
            for s in SIGNALS
        ],
        thresholds=[ThresholdOut(id=k, **v) for k, v in thresholds.items()],
        red_flags=[RedFlagOut.model_validate(f.model_dump(mode="json")) for f in catalog.red_flags],
        reason_codes={code.value: text for code, text in MESSAGES.items()},
    )
