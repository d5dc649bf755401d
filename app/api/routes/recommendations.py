"""``POST /v1/recommendations``: the stateless decision."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import CatalogDep, SettingsDep, TodayDep
from app.api.responses import problems
from app.api.schemas import RecommendationOut, RecommendationRequest
from app.api.validated_body import ValidatedBodyRoute
from app.services.recommendations import recommend

# Its bodies are the largest the API takes: parse and validate them in one pass.
router = APIRouter(prefix="/v1", tags=["recommendations"], route_class=ValidatedBodyRoute)


@router.post(
    "/recommendations",
    operation_id="create_stateless_recommendation",
    summary="Decide the next session from a self-contained request",
    description=(
        "Profile, condition and history all travel in the body; nothing is stored. "
        "Red flags give `status: refer` and no exercises. Each exercise carries its dose, "
        "its `change` against the last session and the reasons, each citing a named rule "
        "and the thresholds it used. The same body and `today` give the same answer for "
        "the same `ruleset_version`."
    ),
    response_model=RecommendationOut,
    responses=problems(400, 401, 413, 415, 422, 429, 500, 503),
)
async def create_stateless_recommendation(
    body: RecommendationRequest, catalog: CatalogDep, today: TodayDep, settings: SettingsDep
) -> RecommendationOut:
    decision = recommend(body, catalog, today, settings.max_history_sessions)
    return RecommendationOut.model_validate(decision)
