"""Error responses declared on routes, so the OpenAPI document lists each problem+json."""

from __future__ import annotations

from typing import Any

from app.api.schemas import Problem
from app.errors import PROBLEM_MEDIA_TYPE

__all__ = ["problems"]

_DESCRIPTIONS = {
    400: "Malformed request (for example a body that is not JSON).",
    404: "No such resource.",
    413: "Request body larger than the configured limit.",
    415: "The body must be application/json.",
    422: "A field is missing, of the wrong type or out of range; `errors` names each field.",
    500: "Unexpected server error; no internals are disclosed.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for these statuses, all RFC 9457 problem+json."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
