"""The URLs of FHIR export pages, for their ``Bundle.link``."""

from __future__ import annotations

from urllib.parse import urlencode

from app.services.fhir_cursor import CURSOR_PARAMETER

__all__ = ["page_url"]


def page_url(path: str, query: tuple[tuple[str, str], ...], cursor: str | None) -> str:
    """The URL of the page at ``cursor`` (None: the first), relative to the host: the same
    path and query parameters, but for the cursor."""
    kept = [(k, v) for k, v in query if k != CURSOR_PARAMETER]
    if cursor is not None:
        kept.append((CURSOR_PARAMETER, cursor))
    return f"{path}?{urlencode(kept)}" if kept else path
