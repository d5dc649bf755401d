"""``GET /healthz``: the process is up and its catalog is loaded."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import CatalogDep
from app.api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    operation_id="get_health",
    summary="Liveness",
    description="The process answers and its catalog is loaded. Needs no key.",
    response_model=Health,
)
async def get_health(catalog: CatalogDep) -> Health:
    return Health(
        status="ok", ruleset_version=catalog.ruleset_version, exercises=len(catalog.exercises)
    )
