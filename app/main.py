"""The ASGI application: ``app.main:app``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import get_tenant
from app.api.routes import catalog, health, recommendations, users
from app.catalog.loader import default_catalog, load_catalog
from app.db.session import Database
from app.errors import PROBLEM_MEDIA_TYPE, install_error_handlers, problem_response
from app.settings import Settings, get_settings

__all__ = ["app", "create_app"]

DESCRIPTION = """
Explainable exercise progression for back pain: muscle **strain**, **sciatica**, poor
**posture** and **overuse**.

Send a profile, a condition and the session history; get the next session. Every exercise
says whether it was **progressed**, **maintained**, **regressed** or **substituted**, and why,
citing a named rule and thresholds with published sources (`GET /v1/ruleset`). Red flags
lead to referral, never to exercise; a pain flare never leads to progression.

Every `/v1` route needs an API key (`Authorization: Bearer <key>` or `X-API-Key`). Each
key belongs to one client (tenant); a client sees only its own users, and another client's
user id answers 404, like a missing one.

Errors are RFC 9457 `application/problem+json` and name the offending field.
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
                await self.app(scope, _replay([message]), send)
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
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s %(message)s")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # An invalid catalog stops start-up here, with a message naming file and field.
        app.state.catalog = (
            load_catalog(settings.catalog_dir) if settings.catalog_dir else default_catalog()
        )
        yield
        database.dispose()

    app = FastAPI(
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
    install_error_handlers(app)
    authenticated = [Depends(get_tenant)]
    app.include_router(recommendations.router, dependencies=authenticated)
    app.include_router(catalog.router, dependencies=authenticated)
    app.include_router(users.router)
    app.include_router(health.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    _document_problems_only(app)
    return app


def _document_problems_only(app: FastAPI) -> None:
    """Error responses are problem+json only; declaring their model also lists plain JSON."""
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
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
