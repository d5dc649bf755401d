"""FHIR export: gather one page of a user's stored record and map it to a FHIR R4 Bundle.

Everything is read in one read transaction (in an export process, see
``app.services.fhir_pages``), so a page is a consistent snapshot: the user, their
condition episodes, one page of their sessions (newest first), the latest recommendation
of the newest episode that has one, and the exercises of the older recommendations the
page's sessions cite. The mapping itself is ``app.interop.fhir``.

Pages follow each other by a keyset cursor (``app.services.fhir_cursor``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from app.db.repositories import Conditions, Recommendations, SessionKey, Sessions
from app.interop.fhir import CitedExercise, CitedRecommendation, user_bundle
from app.services.conditions import condition_out
from app.services.fhir_cursor import read_cursor, write_cursor
from app.services.sessions import session_out
from app.services.stored_recommendations import stored_out
from app.services.users import find_user, user_out

__all__ = ["ExportPage", "export_user"]


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One page of the export, as JSON-ready FHIR, and the cursor of the next page."""

    bundle: dict[str, Any]
    next_cursor: str | None


def _cited(row: tuple[str, str, datetime, Any]) -> CitedRecommendation:
    recommendation_id, condition_id, created_at, exercises = row
    return CitedRecommendation(
        id=recommendation_id,
        condition_id=condition_id,
        created_at=created_at,
        exercises=tuple(
            CitedExercise(
                exercise_id=e["exercise_id"],
                name=e["name"],
                change=e["change"],
                first_reason=e["reasons"][0]["message"] if e["reasons"] else None,
                dose=e["dose"],
                cautions=tuple(e["cautions"]),
            )
            for e in exercises or []
        ),
    )


def export_user(
    session: Session,
    client_id: str,
    user_id: str,
    now: datetime,
    page_size: int,
    *,
    cursor: str | None = None,
    page_url: Callable[[str | None], str] = lambda _: "",
) -> ExportPage:
    """A page of the tenant's user as a FHIR Bundle: ``page_size`` sessions after
    ``cursor`` (the newest when None); ``NotFound`` for a missing user and for another
    tenant's alike. ``page_url(cursor)`` is the URL of a page (this one: None), for
    ``Bundle.link``."""
    after = None if cursor is None else read_cursor(cursor)
    user = find_user(session, client_id, user_id)
    episodes = [condition_out(e) for e in Conditions(session).all_of(user.id)]
    rows = Sessions(session).newest(user.id, page_size + 1, after)
    more = len(rows) > page_size
    logged = [session_out(s) for s in rows[:page_size]]
    recommendations = Recommendations(session)
    newest = recommendations.latest_of_newest_episode(user.id)
    latest = None if newest is None else stored_out(newest)
    cited_ids = {s.recommendation_id for s in logged if s.recommendation_id is not None}
    if latest is not None:
        cited_ids.discard(latest.id)
    cited = [_cited(r) for r in recommendations.exercises_of(user.id, sorted(cited_ids))]
    next_cursor = None
    links = [("self", page_url(cursor))]
    if more:
        last = rows[page_size - 1]
        next_cursor = write_cursor(SessionKey(last.date, last.created_at, last.id))
        links.append(("next", page_url(next_cursor)))
    bundle = user_bundle(
        user=user_out(user),
        client_id=client_id,
        episodes=episodes,
        sessions=logged,
        latest=latest,
        cited=cited,
        now=now,
        first_page=after is None,
        links=links,
    )
    return ExportPage(bundle, next_cursor)
