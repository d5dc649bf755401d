"""The audit trail: who read or changed which user's data, when, in which request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.api.resources import AuditEventOut, AuditPage
from app.db.models import AuditEvent
from app.db.repositories import AuditEvents

__all__ = ["Access", "list_events", "record"]


@dataclass(frozen=True, slots=True)
class Access:
    client_id: str
    user_id: str | None
    action: str
    request_id: str
    at: datetime


def record(session: Session, access: Access) -> None:
    AuditEvents(session).add(
        AuditEvent(
            client_id=access.client_id,
            user_id=access.user_id,
            action=access.action,
            request_id=access.request_id,
            at=access.at,
        )
    )


def list_events(
    session: Session, client_id: str, limit: int, offset: int, user_id: str | None
) -> AuditPage:
    rows, total = AuditEvents(session).page(client_id, limit, offset, user_id)
    return AuditPage(
        items=[AuditEventOut.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
