"""Operations: liveness, readiness and metrics. None needs a key, and none holds user data.

``/readyz`` checks the database on every call; keep probe intervals in seconds, not
milliseconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from app.api.deps import CatalogDep, get_database
from app.api.responses import problems
from app.api.schemas import Health, Readiness
from app.db.session import Database
from app.services.readiness import check_readiness
from app.telemetry import METRICS_MEDIA_TYPE, metrics_text

router = APIRouter(tags=["operations"])
_METRICS_EXAMPLE = (
    "# HELP ladderback_recommendations_total Recommendations decided, by source (stateless, "
    "stored, cds) and status.\n# TYPE ladderback_recommendations_total counter\n"
    'ladderback_recommendations_total{source="stateless",status="ok"} 42.0\n'
)


@router.get(
    "/healthz",
    operation_id="get_health",
    summary="Liveness",
    description="The process answers and its catalog is loaded. Needs no key; touches no "
    "database, so a database outage does not get live instances restarted.",
    response_model=Health,
)
async def get_health(catalog: CatalogDep) -> Health:
    return Health(
        status="ok", ruleset_version=catalog.ruleset_version, exercises=len(catalog.exercises)
    )


@router.get(
    "/readyz",
    operation_id="get_readiness",
    summary="Readiness",
    description="Ready for traffic: the database answers and its schema is the one this "
    "release needs (migrations at head). Otherwise 503, saying which. Needs no key.",
    response_model=Readiness,
    responses=problems(
        503,
        descriptions={
            503: "Not ready: the database is unreachable, or its schema is not this "
            "release's (not migrated, or migrated by another release)."
        },
    ),
)
async def get_readiness(database: Annotated[Database, Depends(get_database)]) -> Readiness:
    found = await run_in_threadpool(check_readiness, database)
    return Readiness.model_validate(
        {"status": "ready", "database": found.database, "schema_revision": found.schema_revision}
    )


@router.get(
    "/metrics",
    operation_id="get_metrics",
    summary="Prometheus metrics",
    description="Request counts and latency by route template and status, recommendations "
    "by status and change type, database errors; every worker's counts summed. Needs no "
    "key and holds no user data, but expose it to your monitoring network only.",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/plain": {
                    "schema": {"type": "string", "examples": [_METRICS_EXAMPLE]},
                }
            }
        }
    },
)
async def get_metrics() -> Response:
    return Response(await run_in_threadpool(metrics_text), media_type=METRICS_MEDIA_TYPE)
