"""The ASGI application: ``app.main:app``."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import resources as api_resources
from app.api import schemas as api_schemas
from app.api.deps import get_tenant
from app.api.openapi_links import add_links
from app.api.routes import audit, catalog, cds_hooks, fhir, health, recommendations, users
from app.catalog.loader import default_catalog, load_catalog
from app.db.session import Database
from app.errors import PROBLEM_MEDIA_TYPE, install_error_handlers, problem_response
from app.interop import cds_hooks as cds_wire
from app.logs import configure_logging, current_request_id
from app.ratelimit import rate_limiter
from app.security_headers import API_HEADERS, DOCS_HEADERS
from app.services.cds_auth import KeySets
from app.services.clients import RecentKeys
from app.settings import Settings, get_settings
from app.telemetry import RequestTelemetry

__all__ = ["app", "create_app"]

DESCRIPTION = """
Explainable exercise progression for back pain: muscle **strain**, **sciatica**, poor
**posture** and **overuse**.

Each decision says, per exercise, whether it was **progressed**, **maintained**,
**regressed** or **substituted**, and why. Every reason cites a named rule and thresholds
with published sources (`GET /v1/ruleset`). Red flags lead to referral, never to exercise. A
pain flare never leads to progression.

## Authenticate

Every `/v1` route needs an API key. The service operator makes one per client app or clinic
with `ladderback clients create "Your app"`; the key is shown once. Send it as
`Authorization: Bearer <key>` (or `X-API-Key: <key>`). In this page, press **Authorize**
and paste it. A client sees only its own users: another client's user id answers 404, like
a missing one.

## A worked example

1. `POST /v1/users` with `{"external_id": "member-1", "profile": {"age": 42, "equipment":
   ["band"]}}` gives the user's `id`.
2. `POST /v1/users/{id}/conditions` with `{"kind": "strain", "onset_date": "2026-10-01",
   "baseline_pain": 5}` opens the episode.
3. `POST /v1/users/{id}/recommendations` gives today's session: every exercise is `new`.
4. After training, `POST /v1/users/{id}/sessions` logs it. Give each exercise's prescribed
   and performed dose, `pain_during`, `effort`, and the `slot` from the recommendation.
   Send an `Idempotency-Key` so a retry cannot log it twice.
5. The next morning, `PATCH /v1/users/{id}/sessions/{session_id}` with `{"next_day_pain":
   2}`.
6. The next `POST /v1/users/{id}/recommendations` answers from that history, for example
   `maintained` with reason `green_streak_too_short`. After a second green session it
   answers `progressed` with `two_green_sessions`.

`POST /v1/recommendations` decides the same way from a self-contained body and stores
nothing.

Errors are RFC 9457 `application/problem+json` and name the offending field; a wrong method
gets 405 with an `Allow` header. Responses with
a person's data carry `Cache-Control: no-store`. Each request has an `X-Request-ID`, which
the audit trail (`GET /v1/audit-events`) records.
"""


class BodyLimit:
    """Check request bodies before any parsing.

    - a body over the limit → 413, whether announced by Content-Length or sent in chunks;
    - a Content-Length that is not a number → 400;
    - a body on a write that is not JSON → 415.

    Write bodies are read here in full (they are small, and capped), then replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and len(length) > 18 and length.isdigit():
            await self._refuse(scope, receive, send, 413)  # more digits than any real body
            return
        if length is not None and not length.isdigit():
            await self._refuse(scope, receive, send, 400, "Content-Length must be a number.")
            return
        if length is not None and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send, 413)
            return
        has_body = (length is not None and length != b"0") or b"transfer-encoding" in headers
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if has_body and media != b"application/json" and not media.endswith(b"+json"):
            await self._refuse(scope, receive, send, 415, "Send the body as application/json.")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client left (or the edge cut it off): no one to answer.
                scope.setdefault("state", {})["client_left"] = True
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, 413)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], then=receive), send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, detail: str = ""
    ) -> None:
        detail = detail or f"The request body is larger than {self.max_bytes} bytes."
        await problem_response(status, detail)(scope, receive, send)


_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
# Paths whose responses carry a person's data: no cache may keep them.
_NO_STORE = ("/v1/users", "/v1/recommendations", "/v1/audit-events", "/cds-services/")


class RequestContext:
    """Give each request an id (the caller's ``X-Request-ID`` if it is a plain token, else a
    new one), echo it on the response, mark responses with user data ``no-store``, give
    every answer the security headers, and keep the docs pages to this origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")
        rid = given.decode() if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        # Behind a path prefix (``root_path``) the routes are the same: match without it.
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        no_store = path.startswith(_NO_STORE)
        docs = path in ("/docs", "/redoc", "/docs/oauth2-redirect")

        async def send_with_context(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                if no_store:
                    headers["Cache-Control"] = "no-store"
                for name, value in DOCS_HEADERS if docs else API_HEADERS:
                    headers[name] = value
            await send(message)

        # Every log line of this request names it, the server's report of a crash included
        # (logged after this returns, in the same task: so no reset when the app raises).
        token = current_request_id.set(rid)
        await self.app(scope, receive, send_with_context)
        current_request_id.reset(token)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive callable that hands out ``messages`` first, then defers to ``then``."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # An invalid catalog stops start-up here, with a message naming file and field.
        app.state.catalog = (
            load_catalog(settings.catalog_dir) if settings.catalog_dir else default_catalog()
        )
        yield
        app.state.rate_limiter.close()
        # Started by the first FHIR export, if any (app.api.routes.fhir).
        export_processes = getattr(app.state, "fhir_export_processes", None)
        if export_processes is not None:
            export_processes.close()
        database.dispose()

    # Swagger UI and ReDoc from the package, not a CDN: clinic networks often block CDNs.
    app = FastAPIOffline(
        title="ladderback",
        version="0.1.0",
        summary="Back-pain exercise progression rules API",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    # The schema is migrated before the app starts (`ladderback db upgrade`, which the serve
    # command runs), not here: several workers starting at once would race to migrate.
    database = Database(
        settings.database_url, lock_timeout_seconds=settings.db_lock_timeout_seconds
    )
    app.state.database = database
    app.state.settings = settings
    app.state.rate_limiter = rate_limiter(settings.rate_limit_per_minute, settings.redis_url)
    app.state.recent_keys = RecentKeys(settings.key_cache_seconds)
    app.state.cds_key_sets = KeySets(
        settings.cds_jwks_cache_seconds, settings.cds_jwks_refetch_seconds
    )
    install_error_handlers(app)
    authenticated = [Depends(get_tenant)]
    routers = [r.router for r in (recommendations, catalog, users, fhir, audit, cds_hooks, health)]
    for router in routers:
        # The stateless routes check the key here; the others per route (CDS uses JWTs).
        keyed = router in (recommendations.router, catalog.router)
        app.include_router(router, dependencies=authenticated if keyed else None)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # Outside the body check, so its refusals are counted and logged too.
    templates = [getattr(route, "path", "") for router in routers for route in router.routes]
    app.add_middleware(RequestTelemetry, templates=templates)
    app.add_middleware(RequestContext)  # outermost: refusals get an id and no-store too
    _finish_openapi(app)
    return app


def _published_examples() -> dict[str, list[Any]]:
    """Each contract model's examples as written, nulls included."""
    found: dict[str, list[Any]] = {}
    for module in (api_schemas, api_resources, cds_wire):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel):
                extra = value.model_config.get("json_schema_extra")
                examples = extra.get("examples") if isinstance(extra, dict) else None
                if isinstance(examples, list):
                    found[value.__name__] = copy.deepcopy(examples)
    return found


def _finish_openapi(app: FastAPI) -> None:
    """Three corrections to the generated document:

    - error responses are problem+json only (declaring their model also lists plain JSON);
    - examples keep their nulls (FastAPI drops them, leaving required fields out);
    - the links between operations that clients and stateful fuzzers follow.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[0] in "45" and PROBLEM_MEDIA_TYPE in content:
                            content.pop("application/json", None)
            schemas = document.get("components", {}).get("schemas", {})
            for name, examples in _published_examples().items():
                if name in schemas and "examples" in schemas[name]:
                    schemas[name]["examples"] = examples
            add_links(document)
            fhir.add_bundle_example(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
