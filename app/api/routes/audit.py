"""``GET /v1/audit-events``: the caller's own audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ReadDb, TenantDep
from app.api.resources import AuditPage
from app.api.responses import LIST_PROBLEMS, problems
from app.api.schemas import UUID_PATTERN
from app.services.audit import list_events

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get(
    "/audit-events",
    operation_id="list_audit_events",
    summary="Each access to your users' data, newest first",
    description="One event per successful request that read or changed a user's data: the "
    "user, the operation, the time and the request id (`X-Request-ID`). Append-only; kept "
    "after a user's erasure, which is itself an event. Reading this list is not audited.",
    response_model=AuditPage,
    responses=problems(*LIST_PROBLEMS),
)
def list_audit_events(
    tenant: TenantDep,
    db: ReadDb,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    user_id: Annotated[
        str | None, Query(pattern=UUID_PATTERN, description="Only this user's events.")
    ] = None,
) -> AuditPage:
    return list_events(db, tenant.client_id, limit, offset, user_id)
