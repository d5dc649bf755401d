"""Readiness: may a load balancer send this instance traffic?

Only when its database answers and holds the schema this release was written for. A
database behind (not yet migrated) or ahead (a newer release migrated it) gets no traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db.schema import head_revisions
from app.db.session import Database
from app.errors import ServiceUnavailable

__all__ = ["Readiness", "check_readiness"]


@dataclass(frozen=True, slots=True)
class Readiness:
    database: str
    schema_revision: str


def check_readiness(database: Database) -> Readiness:
    """This instance's readiness; ``ServiceUnavailable`` (503) saying why when not ready."""
    expected = head_revisions()
    if not expected:
        raise ServiceUnavailable(
            "The migration scripts are missing: the release is incomplete.",
            cause="no migration scripts",
        )
    current = database.schema_revisions()
    if current != expected:
        found = ", ".join(sorted(current)) or "not migrated"
        raise ServiceUnavailable(
            f"The database schema is at {found}; this release needs "
            f"{', '.join(sorted(expected))}. Run `ladderback db upgrade`.",
            retry_after=5,
            cause="schema not at head",
        )
    return Readiness(database=database.dialect, schema_revision=", ".join(sorted(current)))
