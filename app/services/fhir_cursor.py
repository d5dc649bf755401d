"""The cursor of a FHIR export page: where among the user's sessions the page starts.

A keyset over the sessions' order (date, created, id), newest first, not an offset: a
session logged between two pages never shifts or repeats the rows of the next one. Opaque
to clients: URL-safe base64 of that key, given out in a page's ``next`` link.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, date, datetime

from app.db.repositories import SessionKey
from app.errors import InvalidInput

__all__ = ["CURSOR_PARAMETER", "cursor_at", "read_cursor", "write_cursor"]

CURSOR_PARAMETER = "cursor"
_BAD_CURSOR = "is not a well-formed page cursor; follow the Bundle's `next` link"


def write_cursor(key: SessionKey) -> str:
    text = f"{key.date.isoformat()}|{key.created_at.isoformat()}|{key.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_at(day: date, created_at: datetime, session_id: str) -> str:
    """The cursor of a page starting after the session with this key."""
    return write_cursor(SessionKey(day, created_at, session_id))


def read_cursor(cursor: str) -> SessionKey:
    """The key a cursor carries; ``InvalidInput`` naming the parameter for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        day, created, session_id = (
            base64.urlsafe_b64decode(padded.encode("ascii")).decode().split("|")
        )
        moment = datetime.fromisoformat(created)
        # A moment must exist in UTC, as stored (year 1 at +23:59 does not): else a 500.
        utc = moment.astimezone(UTC) if moment.tzinfo is not None else None
        key = SessionKey(date.fromisoformat(day), moment, session_id)
        well_formed = utc is not None and str(uuid.UUID(session_id)) == session_id
    except (ValueError, UnicodeError, binascii.Error, OverflowError):
        well_formed = False
    if not well_formed:
        raise InvalidInput(f"query.{CURSOR_PARAMETER}", _BAD_CURSOR)
    return key
