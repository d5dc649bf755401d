"""Errors and their RFC 9457 ``application/problem+json`` rendering.

Hierarchy::

    AppError                 any error we raise on purpose; carries status, type and title
    ├── InvalidInput         422: a field is well-formed but not acceptable (names the field)
    ├── Unauthorized         401: no API key, or one that is wrong or revoked
    ├── NotFound             404: no such resource (or not this caller's: the same answer)
    ├── Conflict             409: the request clashes with what is stored (names the field)
    ├── PayloadTooLarge      413: the body exceeds the configured limit
    ├── TooManyRequests      429: the client's budget for this minute is spent; has Retry-After
    ├── TooManyInFlight      429: the client already runs its share of a costly operation
    └── ServiceUnavailable   503: the database is busy or unreachable; has Retry-After

FastAPI's own validation errors become 422 problems naming each field; unparsable JSON is a
400; any other exception becomes a bare 500 problem with no internals in it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.logs import current_request_id
from app.security_headers import API_HEADERS
from app.telemetry import route_pattern

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "AppError",
    "Conflict",
    "FieldError",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ServiceUnavailable",
    "TooManyInFlight",
    "TooManyRequests",
    "Unauthorized",
    "field_path",
    "install_error_handlers",
    "problem_document",
    "problem_response",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("ladderback.errors")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    408: "Request timeout",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    414: "URI too long",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    431: "Request header fields too large",
    500: "Internal server error",
    503: "Service unavailable",
}


class AppError(Exception):
    status = 500
    type = "about:blank"
    title = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields, not its constructor's arguments (which differ by kind):
        # errors cross from the FHIR export processes to the worker by pickling.
        return (_rebuilt, (type(self), self.__dict__))


def _rebuilt(kind: type[AppError], fields: dict[str, Any]) -> AppError:
    error = kind.__new__(kind)
    Exception.__init__(error, fields.get("detail", ""))
    error.__dict__.update(fields)
    return error


class FieldError(AppError):
    """A problem with one named field; ``kind`` is its ``errors[].type``."""

    kind = "value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"{field}: {message}",
            errors=[{"field": field, "message": message, "type": self.kind}],
        )


class InvalidInput(FieldError):
    status = 422
    type = "/problems/invalid-input"
    title = "Invalid input"


class Unauthorized(AppError):
    status = 401
    type = "/problems/unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="ladderback"'})


class NotFound(AppError):
    status = 404
    type = "/problems/not-found"
    title = "Not found"


class PreconditionFailed(FieldError):
    """CDS Hooks: the data a decision needs was neither prefetched nor held here."""

    status = 412
    type = "/problems/precondition-failed"
    title = "Precondition failed"
    kind = "missing"


class Conflict(FieldError):
    status = 409
    type = "/problems/conflict"
    title = "Conflict"
    kind = "conflict"


class TooManyRequests(AppError):
    status = 429
    type = "/problems/too-many-requests"
    title = "Too many requests"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"More than {limit} requests this minute; retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


class TooManyInFlight(AppError):
    """A costly operation the client already runs as many of as it may at once, here."""

    status = 429
    type = "/problems/too-many-in-flight"
    title = "Too many requests in flight"

    def __init__(self, operation: str, limit: int, retry_after: int = 1) -> None:
        super().__init__(
            f"This client already has as many {operation} in progress on this instance as "
            f"it may at once ({limit}); retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


class ServiceUnavailable(AppError):
    status = 503
    type = "/problems/service-unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 1, cause: str = "") -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.cause = cause


class PayloadTooLarge(AppError):
    status = 413
    type = "/problems/payload-too-large"
    title = "Payload too large"


# Pydantic names the branch of a union it tried ("none", "function-after[...]"); a caller
# needs the field, not our type's shape.
_UNION_BRANCH = re.compile(r"^(none|constrained-[a-z]+|[a-z-]+\[.*\])$")


def field_path(loc: Sequence[int | str], *, caller_key_last: bool = False) -> str:
    """``("body", "history", 0, "date")`` → ``history[0].date``.

    ``caller_key_last``: the last part is a key the caller sent (an unknown field), kept
    whatever it looks like.
    """
    inner = list(loc[:-1]) if caller_key_last else list(loc)
    parts = [p for p in inner if not (isinstance(p, str) and _UNION_BRANCH.match(p))]
    if caller_key_last and loc:
        parts.append(loc[-1])
    if parts and parts[0] in ("body", "query", "path", "header"):
        where = parts.pop(0)
        if where != "body" and parts:
            return f"{where}.{parts[0]}"
    if not parts:
        return "body"
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part) or '""'  # an empty key still names a place
            out += f".{name}" if out else name
    return out


def problem_document(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    """The RFC 9457 body: the same fields from the app and from the server's edge."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = list(errors)
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: Sequence[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_document(status, detail, type_=type_, title=title, errors=errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if isinstance(exc, ServiceUnavailable) and exc.cause:
        log.warning("service unavailable: %s", exc.cause)
    return problem_response(
        exc.status,
        exc.detail,
        type_=exc.type,
        title=exc.title,
        errors=exc.errors,
        headers=exc.headers,
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return problem_response(
            400, "The request body is not valid JSON.", type_="/problems/malformed-json"
        )
    # "Input should be None" only says the field is optional: drop it beside the real error.
    useful = [e for e in raw if e["type"] != "none_required"] or raw
    errors = [
        {
            "field": field_path(e.get("loc", ()), caller_key_last=e["type"] == "extra_forbidden"),
            "message": str(e.get("msg")),
            "type": e["type"],
        }
        for e in useful
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(422, detail, type_=InvalidInput.type, errors=errors)


def _allowed_methods(request: Request) -> str:
    """Every method the published contract lists for this path (Starlette names only the
    first matching route's)."""
    path = request.url.path
    for template, operations in request.app.openapi().get("paths", {}).items():
        if route_pattern(template).match(path):
            return ", ".join(sorted(m.upper() for m in operations))
    return ""  # not in the contract (the docs pages): Starlette's own header stands


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return problem_response(exc.status_code, detail, headers=headers or None)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Log the class only: messages can carry request data, and request data is health data.
    log.error("unhandled error: %s", type(exc).__name__)
    # Answered outside the request middleware (by the server-error layer): the headers it
    # would have added are added here.
    headers = dict(API_HEADERS)
    headers["Cache-Control"] = "no-store"
    rid = current_request_id.get()
    if rid:
        headers["X-Request-ID"] = rid
    return problem_response(500, "The server could not complete the request.", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
