"""FHIR export: gather one user's stored record and map it to a FHIR R4 Bundle.

Everything is read in the request's one read transaction, so the bundle is a consistent
snapshot: the user, all their condition episodes, their newest sessions, the latest
recommendation of the newest episode that has one, and the older recommendations those
sessions cite. The mapping itself is ``app.interop.fhir``.
"""

from __future__ import annotations

from datetime import datetime

from fhir.resources.R4B.bundle import Bundle
from sqlmodel import Session

from app.db.repositories import Conditions, Recommendations, Sessions
from app.interop.fhir import user_bundle
from app.services.conditions import condition_out
from app.services.sessions import session_out
from app.services.stored_recommendations import stored_out
from app.services.users import find_user, user_out

__all__ = ["export_user"]


def export_user(
    session: Session, client_id: str, user_id: str, now: datetime, session_limit: int
) -> Bundle:
    """The tenant's user as a FHIR Bundle with their ``session_limit`` newest sessions;
    ``NotFound`` for a missing user and for another tenant's alike."""
    user = find_user(session, client_id, user_id)
    episodes = [condition_out(e) for e in Conditions(session).all_of(user.id)]
    logged = [session_out(s) for s in Sessions(session).newest(user.id, session_limit)]
    recommendations = Recommendations(session)
    newest = recommendations.latest_of_newest_episode(user.id)
    latest = None if newest is None else stored_out(newest)
    cited_ids = {s.recommendation_id for s in logged if s.recommendation_id is not None}
    if latest is not None:
        cited_ids.discard(latest.id)
    cited = [stored_out(r) for r in recommendations.many(user.id, sorted(cited_ids))]
    return user_bundle(
        user=user_out(user),
        client_id=client_id,
        episodes=episodes,
        sessions=logged,
        latest=latest,
        cited=cited,
        now=now,
    )
