"""``Idempotency-Key``: a retried write returns the first response instead of acting twice.

The key is claimed inside the request's own transaction, by an insert that a unique
(client, key) constraint guards. Two concurrent requests with one key therefore cannot both
act: the second waits for the first transaction, then replays its stored response. Reusing
a key for a different request (another body, route or user) is refused with 422. Keys
expire after ``idempotency_hours``; an expired key is free again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.db.repositories import IdempotencyKeys
from app.errors import AppError

__all__ = ["IdempotencyKeyReused", "Outcome", "fingerprint", "once", "replay_of"]


class IdempotencyKeyReused(AppError):
    status = 422
    type = "/problems/idempotency-key-reused"
    title = "Idempotency key reused"

    def __init__(self) -> None:
        message = "was already used for a different request; use a new key for a new request"
        super().__init__(
            f"Idempotency-Key {message}.",
            errors=[{"field": "header.Idempotency-Key", "message": message, "type": "reused"}],
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """A write's response, as it is stored for replay."""

    status_code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    user_id: str | None = None  # whose data the body holds: erased with them
    replayed: bool = False


def fingerprint(operation: str, target: str, body: Any) -> str:
    """What makes two requests "the same": the route, its target and the parsed body."""
    canonical = json.dumps([operation, target, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def once(
    session: Session,
    *,
    client_id: str,
    key: str | None,
    request_fingerprint: str,
    now: datetime,
    keep_hours: int,
    act: Callable[[], Outcome],
) -> Outcome:
    """Run ``act`` once per key: the first time for real, afterwards as a replay."""
    if key is None:
        return act()
    keys = IdempotencyKeys(session)
    # Housekeeping on the way: stored responses hold health data, kept no longer than promised.
    keys.purge_expired(now)
    stored = keys.claim(client_id, key, request_fingerprint, now, now + timedelta(hours=keep_hours))
    if stored is not None:
        if stored.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused()
        return Outcome(stored.status_code, stored.body, stored.headers, replayed=True)
    outcome = act()
    keys.complete(
        client_id,
        key,
        user_id=outcome.user_id,
        status_code=outcome.status_code,
        body=outcome.body,
        headers=outcome.headers,
    )
    return outcome


def replay_of(
    session: Session, *, client_id: str, key: str, request_fingerprint: str, now: datetime
) -> Outcome | None:
    """The stored response of this very request under ``key``, if there is one; nothing is
    claimed, and a response to another request under that key is never returned."""
    stored = IdempotencyKeys(session).stored(client_id, key, now)
    if stored is None or stored.fingerprint != request_fingerprint:
        return None
    return Outcome(stored.status_code, stored.body, stored.headers, replayed=True)
