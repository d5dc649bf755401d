"""Request dependencies as ``Annotated`` aliases; tests override the underlying functions.

``ReadDb`` and ``WriteDb`` are the request's unit of work: one transaction, committed when
the route returns (before the response is sent) and rolled back if it raises. Each first
waits its turn on the event loop (``Database.turn``). On SQLite a write transaction takes
the write lock up front (``BEGIN IMMEDIATE``); a read transaction never waits for a writer
(its audit event, written afterwards, does: see ``record_access``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.db.session import Database, Session
from app.domain.catalog import Catalog
from app.errors import InvalidInput, ServiceUnavailable, TooManyRequests, Unauthorized
from app.ratelimit import RateLimiter
from app.services.audit import Access, record
from app.services.cds_auth import (
    KeySets,
    TokenPolicy,
    claim_token_id,
    find_issuer,
    read_hook_token,
    verify_signature_and_claims,
)
from app.services.clients import RecentKeys, Tenant, authenticate
from app.settings import Settings

__all__ = [
    "AuditDep",
    "AuditTrail",
    "CatalogDep",
    "HookTenantDep",
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


async def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (not a fresh read of the environment)."""
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_now() -> datetime:
    """The service's clock (UTC); the domain never reads a clock itself."""
    return datetime.now(UTC)


async def get_today(now: Annotated[datetime, Depends(get_now)]) -> date:
    """The service's idea of today (UTC)."""
    return now.date()


async def _read_turn(database: Annotated[Database, Depends(get_database)]) -> AsyncIterator[None]:
    """Wait, on the event loop, for this request's turn to use the database."""
    async with database.turn(write=False):
        yield


async def _write_turn(database: Annotated[Database, Depends(get_database)]) -> AsyncIterator[None]:
    """Wait, on the event loop, for this request's turn to write."""
    async with database.turn(write=True):
        yield


def _read_db(
    database: Annotated[Database, Depends(get_database)],
    _: Annotated[None, Depends(_read_turn, scope="function")],
) -> Iterator[Session]:
    with database.transaction(write=False) as session:
        yield session


def _write_db(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
    _: Annotated[None, Depends(_write_turn, scope="function")],
) -> Iterator[Session]:
    with database.transaction(write=True) as session:
        yield session
        # Reached only when the route succeeded: its audit event commits with its data.
        trail: AuditTrail | None = getattr(request.state, "audit_trail", None)
        if trail is not None:
            trail.record_in(session, request)


# auto_error=False: a missing key is our own 401 problem, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="An API key from `ladderback clients create`.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key.")


async def get_tenant(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
    # Declared for the OpenAPI security schemes; the key itself is read by presented_key.
    _bearer_scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _key_scheme: Annotated[str | None, Depends(_api_key)],
    now: Annotated[datetime, Depends(get_now)],
) -> Tenant:
    """The calling client, once its key checks out and its budget for the minute allows.

    A key checked in the last few seconds needs no database read (``RecentKeys``)."""
    try:
        presented = presented_key(request)
    except Unauthorized:
        await _charge_async(request, _failure_budget(request), now)
        raise
    recent: RecentKeys = request.app.state.recent_keys
    tenant = recent.tenant_for(presented, now)
    if tenant is None:
        try:
            tenant = await run_in_threadpool(_authenticate, database, presented)
        except Unauthorized:
            await _charge_async(request, _failure_budget(request), now)
            raise
        if presented:
            recent.remember(presented, tenant, now)
    await _charge_async(request, tenant.client_id, now)
    return tenant


_CONFLICTING = (
    "The request carries more than one credential and they differ (Authorization and "
    "X-API-Key, or one of them sent twice); send one key, once."
)


def presented_key(request: Request) -> str | None:
    """The one API key a request presents, from ``Authorization: Bearer`` or ``X-API-Key``.

    Two that differ, in the two headers or in one header sent twice, are refused rather
    than one of them chosen: a proxy adding its own key, or a client mixing tenants, must
    never be served silently as either. The same key sent both ways is one key."""
    # A header sent empty is still a credential sent: it disagrees with any key.
    keys = {value.strip() for value in request.headers.getlist("x-api-key")}
    for value in request.headers.getlist("authorization"):
        scheme, _, credentials = value.strip().partition(" ")
        bearer = scheme.lower() == "bearer" and credentials.strip()
        # Another scheme (Basic ...) is a credential too, and cannot agree with a key.
        keys.add(credentials.strip() if bearer else value)
    if len(keys) > 1:
        raise Unauthorized(_CONFLICTING)
    return next(iter(keys), None)


def _authenticate(database: Database, presented: str | None) -> Tenant:
    # Its own short read: the route's transaction (a write, perhaps) starts after the caller
    # is known, and stateless routes take no write lock at all.
    with database.transaction(write=False) as session:
        return authenticate(session, presented)


def _failure_budget(request: Request) -> str:
    """Failed authentication spends a budget of its own, per address: no unthrottled
    guessing of keys or tokens. The address is the connection's, or the one a listed proxy
    saw (``ladderback serve``); an IPv6 client is counted by its /64, which one host may
    hold whole."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"unauthenticated:{host}"
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        host = str(mapped) if mapped else str(ipaddress.ip_network(f"{address}/64", strict=False))
    return f"unauthenticated:{host}"


@contextmanager
def _failures_budgeted(request: Request, now: datetime) -> Iterator[None]:
    try:
        yield
    except Unauthorized:
        _charge(request, _failure_budget(request), now)
        raise


def _charge(request: Request, budget: str, now: datetime) -> None:
    """Count a request against ``budget``; 429 once it is spent. A shared limiter asks
    Redis, so from the event loop this runs in a thread (``_charge_async``)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.wait_for(budget, now)
    if wait is not None:
        raise TooManyRequests(limiter.limit, wait)


async def _charge_async(request: Request, budget: str, now: datetime) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    if limiter.remote:
        await run_in_threadpool(_charge, request, budget, now)
    else:
        _charge(request, budget, now)


# Documents the scheme in the OpenAPI; the token itself is checked by verify_hook_token.
_hook_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="CdsHooksJWT",
    bearerFormat="JWT",
    description="A JWT the EHR signs for each call (CDS Hooks 2.0): ES384 or RS384, with "
    "`kid`; `iss` registered with `ladderback cds-issuers add`; `aud` the URL called; "
    "`exp`, `iat` and a `jti` never used before.",
)


def get_hook_tenant(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
    settings: Annotated[Settings, Depends(get_app_settings)],
    now: Annotated[datetime, Depends(get_now)],
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_hook_bearer)],
) -> Tenant:
    """The client a CDS Hooks call acts for, once the EHR's token checks out.

    Three steps, so that no lock is held while an issuer's key set is fetched: find the
    issuer (a short read), check signature and claims (no transaction), then record the
    ``jti`` (a short write of its own, kept whatever the call then does).
    """
    if settings.public_url is None:
        # The audience must not come from the Host header, which the caller chooses.
        raise ServiceUnavailable(
            "CDS Hooks needs the service's public URL: set LADDERBACK_PUBLIC_URL.",
            cause="public_url unset",
        )
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    called = settings.public_url + path
    # Feedback may name the service it reports on, or the feedback endpoint itself.
    audiences = [called] + (
        [called.removesuffix("/feedback")] if path.endswith("/feedback") else []
    )
    key_sets: KeySets = request.app.state.cds_key_sets
    policy = TokenPolicy(settings.cds_token_max_seconds, settings.cds_clock_skew_seconds)
    with _failures_budgeted(request, now):
        authorizations = set(request.headers.getlist("authorization"))
        if len(authorizations) > 1 or request.headers.getlist("x-api-key"):
            # A CDS call presents the EHR's token alone, once.
            raise Unauthorized(_CONFLICTING)
        token = read_hook_token(next(iter(authorizations), None))
        with database.transaction(write=False) as session:
            issuer = find_issuer(session, token)
        use = verify_signature_and_claims(token, issuer, audiences, now, policy, key_sets)
        with database.transaction(write=True) as session:
            claim_token_id(session, use, now)
    _charge(request, issuer.tenant.client_id, now)
    return issuer.tenant


def request_id(request: Request) -> str:
    """The id ``RequestContext`` gave this request (echoed as ``X-Request-ID``)."""
    rid: str = request.state.request_id
    return rid


@dataclass
class AuditTrail:
    """The audit event a request owes: whose data it touches (routes whose user is not in
    the path name them), by which client, when; written once the route has succeeded."""

    client_id: str
    user_id: str | None
    at: datetime
    recorded: bool = False

    def record_in(self, session: Session, request: Request) -> None:
        route = request.scope.get("route")
        action = getattr(route, "operation_id", None) or request.url.path
        record(session, Access(self.client_id, self.user_id, action, request_id(request), self.at))
        self.recorded = True


def record_access(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
    tenant: Annotated[Tenant, Depends(get_tenant)],
    now: Annotated[datetime, Depends(get_now)],
) -> Iterator[AuditTrail]:
    """Append an audit event once the route has succeeded (a refused request read nothing).

    A write route's event commits in the route's own transaction (``WriteDb``), so data and
    event stand or fall together. A read's event needs a short write of its own, after the
    read: on SQLite that takes the write lock briefly.
    """
    trail = AuditTrail(tenant.client_id, request.path_params.get("user_id"), now)
    request.state.audit_trail = trail
    yield trail
    if not trail.recorded:
        with database.transaction() as session:
            trail.record_in(session, request)


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
TodayDep = Annotated[date, Depends(get_today)]
TenantDep = Annotated[Tenant, Depends(get_tenant)]
HookTenantDep = Annotated[Tenant, Depends(get_hook_tenant)]
ReadDb = Annotated[Session, Depends(_read_db, scope="function")]
WriteDb = Annotated[Session, Depends(_write_db, scope="function")]
AuditDep = Annotated[AuditTrail, Depends(record_access, scope="function")]


# Printable ASCII without spaces: a CDS call's stored key has a space, so the two
# interfaces' keys never meet (``app.services.cds.hook_instance_key``).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]+$"


async def get_idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=IDEMPOTENCY_KEY_PATTERN,
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
