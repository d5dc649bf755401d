"""Request dependencies as ``Annotated`` aliases; tests override the underlying functions.

``ReadDb`` and ``WriteDb`` are the request's unit of work: one transaction, committed when
the route returns (before the response is sent) and rolled back if it raises. On SQLite a
write transaction takes the write lock up front (``BEGIN IMMEDIATE``); a read never waits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.db.session import Database, Session
from app.domain.catalog import Catalog
from app.errors import InvalidInput, TooManyRequests
from app.ratelimit import RateLimiter
from app.services.audit import Access, record
from app.services.clients import Tenant, authenticate
from app.settings import Settings

__all__ = [
    "AuditDep",
    "AuditTrail",
    "CatalogDep",
    "IdempotencyKey",
    "NowDep",
    "ReadDb",
    "SettingsDep",
    "TenantDep",
    "TodayDep",
    "WriteDb",
    "get_catalog",
    "get_now",
    "get_today",
    "record_access",
    "request_id",
]


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (not a fresh read of the environment)."""
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_now() -> datetime:
    """The service's clock (UTC); the domain never reads a clock itself."""
    return datetime.now(UTC)


def get_today(now: Annotated[datetime, Depends(get_now)]) -> date:
    """The service's idea of today (UTC)."""
    return now.date()


def _read_db(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with database.transaction(write=False) as session:
        yield session


def _write_db(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with database.transaction(write=True) as session:
        yield session


# auto_error=False: a missing key is our own 401 problem, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="An API key from `ladderback clients create`.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key.")


def get_tenant(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
    now: Annotated[datetime, Depends(get_now)],
) -> Tenant:
    """The calling client, once its key checks out and its budget for the minute allows."""
    presented = bearer.credentials if bearer is not None else api_key
    # Its own short read: the route's transaction (a write, perhaps) starts after the caller
    # is known, and stateless routes take no write lock at all.
    with database.transaction(write=False) as session:
        tenant = authenticate(session, presented)
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.wait_for(tenant.client_id, now)
    if wait is not None:
        raise TooManyRequests(limiter.limit, wait)
    return tenant


def request_id(request: Request) -> str:
    """The id ``RequestContext`` gave this request (echoed as ``X-Request-ID``)."""
    rid: str = request.state.request_id
    return rid


@dataclass
class AuditTrail:
    """Whose data the request touches; routes whose user is not in the path name them."""

    user_id: str | None


def record_access(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
    tenant: Annotated[Tenant, Depends(get_tenant)],
    now: Annotated[datetime, Depends(get_now)],
) -> Iterator[AuditTrail]:
    """Append an audit event once the route has succeeded (a refused request read nothing).

    It runs after the route's own transaction has ended, in a short transaction of its own.
    """
    trail = AuditTrail(request.path_params.get("user_id"))
    yield trail
    action = getattr(request.scope.get("route"), "operation_id", None) or request.url.path
    access = Access(tenant.client_id, trail.user_id, action, request_id(request), now)
    with database.transaction() as session:
        record(session, access)


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
TodayDep = Annotated[date, Depends(get_today)]
TenantDep = Annotated[Tenant, Depends(get_tenant)]
ReadDb = Annotated[Session, Depends(_read_db, scope="function")]
WriteDb = Annotated[Session, Depends(_write_db, scope="function")]
AuditDep = Annotated[AuditTrail, Depends(record_access, scope="function")]


def get_idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[!-~]+$",
            description="Any unique string (a UUID, say). A retry with the same key and "
            "body returns the first response; the same key with another body is refused "
            "(422). Keys are kept for a day (`LADDERBACK_IDEMPOTENCY_HOURS`).",
        ),
    ] = None,
) -> str | None:
    if len(request.headers.getlist("idempotency-key")) > 1:
        raise InvalidInput("header.Idempotency-Key", "send it once, with one value")
    return key


IdempotencyKey = Annotated[str | None, Depends(get_idempotency_key)]
