"""Logged sessions: what was prescribed, what was done, and how it felt.

A session belongs to the user's active condition episode. Writing a session dated on or
before the last day folded into the episode's history summary makes that summary stale;
it is dropped here and rebuilt by the next recommendation.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session

from app.api.resources import SessionCreate, SessionOut, SessionPage, SessionPatch
from app.db.codec import exercise_result_json
from app.db.models import ExerciseSession
from app.db.repositories import HistorySummaries, Recommendations, Sessions, session_record_of
from app.domain.catalog import Catalog
from app.errors import Conflict, InvalidInput, NotFound
from app.services.conditions import active_episode
from app.services.recommendations import to_exercise_result
from app.services.users import find_user

__all__ = ["get_session", "list_sessions", "log_session", "session_out", "update_session"]


def session_out(row: ExerciseSession) -> SessionOut:
    return SessionOut.model_validate(row, from_attributes=True)


def log_session(
    session: Session,
    client_id: str,
    user_id: str,
    body: SessionCreate,
    catalog: Catalog,
    now: datetime,
    max_per_day: int,
) -> SessionOut:
    user = find_user(session, client_id, user_id, for_update=True)
    episode = active_episode(session, user.id)
    today = now.date()
    if body.date > today:
        raise InvalidInput("date", f"is after today ({today.isoformat()})")
    if body.date < episode.onset_date:
        raise InvalidInput(
            "date", f"is before the onset of the active episode ({episode.onset_date})"
        )
    if body.recommendation_id is not None:
        followed = Recommendations(session).get(user.id, body.recommendation_id)
        if followed is None or followed.condition_id != episode.id:
            raise InvalidInput(
                "recommendation_id", "is not one of this user's recommendations for this episode"
            )
    sessions = Sessions(session)
    if sessions.count_on(episode.id, body.date) >= max_per_day:
        raise Conflict("date", f"already has {max_per_day} sessions, the most for one date")
    results = [
        exercise_result_json(to_exercise_result(r, f"exercises[{i}]", catalog))
        for i, r in enumerate(body.exercises)
    ]
    row = ExerciseSession(
        id=str(uuid.uuid4()),
        user_id=user.id,
        condition_id=episode.id,
        recommendation_id=body.recommendation_id,
        date=body.date,
        completed=body.completed,
        exercises=results,
        pain_before=body.pain_before,
        pain_after=body.pain_after,
        next_day_pain=body.next_day_pain,
        symptom_change=body.symptom_change.value,
        new_numbness_or_tingling=body.new_numbness_or_tingling,
        created_at=now,
        updated_at=now,
    )
    sessions.add(row)
    HistorySummaries(session).drop_if_covers(episode.id, body.date)
    return session_out(row)


def list_sessions(
    session: Session,
    client_id: str,
    user_id: str,
    limit: int,
    offset: int,
    condition_id: str | None,
) -> SessionPage:
    user = find_user(session, client_id, user_id)
    rows, total = Sessions(session).page(user.id, limit, offset, condition_id)
    return SessionPage(
        items=[session_out(r) for r in rows], total=total, limit=limit, offset=offset
    )


def _find(session: Session, user_id: str, session_id: str) -> ExerciseSession:
    row = Sessions(session).get(user_id, session_id)
    if row is None:
        raise NotFound(f"No session {session_id!r} for this user.")
    return row


def get_session(session: Session, client_id: str, user_id: str, session_id: str) -> SessionOut:
    user = find_user(session, client_id, user_id)
    return session_out(_find(session, user.id, session_id))


def update_session(
    session: Session,
    client_id: str,
    user_id: str,
    session_id: str,
    patch: SessionPatch,
    now: datetime,
) -> SessionOut:
    """Add what is reported later: next-morning pain (the 24-hour signal) above all."""
    user = find_user(session, client_id, user_id, for_update=True)
    row = _find(session, user.id, session_id)
    before = session_record_of(row)
    fields = patch.model_fields_set
    if "next_day_pain" in fields:
        row.next_day_pain = patch.next_day_pain
    if "pain_after" in fields:
        row.pain_after = patch.pain_after
    if patch.symptom_change is not None:
        row.symptom_change = patch.symptom_change.value
    if patch.new_numbness_or_tingling is not None:
        row.new_numbness_or_tingling = patch.new_numbness_or_tingling
    if session_record_of(row) != before:
        row.updated_at = now
        # The summary may have folded this session as it was: fold again next time.
        HistorySummaries(session).drop_if_covers(row.condition_id, row.date)
    return session_out(row)
