"""Error responses declared on routes, so the OpenAPI document lists each problem+json."""

from __future__ import annotations

from typing import Any

from app.api.schemas import Problem
from app.errors import PROBLEM_MEDIA_TYPE

__all__ = [
    "CREATE_USER_PROBLEMS",
    "LIST_PROBLEMS",
    "READ_PROBLEMS",
    "WRITE_PROBLEMS",
    "created",
    "problems",
]

_DESCRIPTIONS = {
    400: "Malformed request (for example a body that is not JSON).",
    401: "No API key, or a key that is wrong or revoked.",
    404: "No such resource, or not one of the caller's (the same answer).",
    409: "The request conflicts with what is stored; `errors` names the field.",
    412: "The patient is not registered here and the prefetch a decision needs is missing.",
    413: "Request body larger than the configured limit.",
    415: "The body must be application/json.",
    422: "A field is missing, of the wrong type or out of range; `errors` names each field.",
    429: "The client's request budget for this minute is spent; retry after `Retry-After`.",
    500: "Unexpected server error; no internals are disclosed.",
    503: "The database is busy or unreachable (retry after `Retry-After` seconds), or a "
    "setting the route needs is missing.",
}


def problems(
    *statuses: int, descriptions: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for these statuses, all RFC 9457 problem+json;
    ``descriptions`` replaces the standard wording where a route means something else."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": (descriptions or {}).get(status, _DESCRIPTIONS[status]),
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {
                    "description": "How to authenticate: `Bearer`.",
                    "schema": {"type": "string"},
                }
            }
        if status in (429, 503):
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"},
                }
            }
        out[status] = entry
    return out


def created(what: str, *, idempotent: bool = False) -> dict[int | str, dict[str, Any]]:
    """The 201 entry of a route that makes a resource, with its response headers."""
    headers: dict[str, Any] = {
        "Location": {"description": f"The new {what}'s URL.", "schema": {"type": "string"}}
    }
    if idempotent:
        headers["Idempotent-Replayed"] = {
            "description": "`true` when this is the stored first response to a retried "
            "`Idempotency-Key`; absent otherwise.",
            "schema": {"type": "string", "enum": ["true"]},
        }
    return {201: {"description": f"The {what}, created.", "headers": headers}}


# What every stored-resource route may answer with.
READ_PROBLEMS = (401, 404, 422, 429, 500, 503)
LIST_PROBLEMS = (401, 422, 429, 500, 503)
WRITE_PROBLEMS = (400, 401, 404, 409, 413, 415, 422, 429, 500, 503)
CREATE_USER_PROBLEMS = (400, 401, 409, 413, 415, 422, 429, 500, 503)
