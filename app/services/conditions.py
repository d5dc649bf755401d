"""Condition episodes: what the person is being treated for, one active episode at a time."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlmodel import Session

from app.api.resources import (
    ConditionCreate,
    ConditionOut,
    ConditionPage,
    ConditionPatch,
)
from app.db.models import ConditionEpisode
from app.db.repositories import ACTIVE, RESOLVED, Conditions
from app.errors import Conflict, InvalidInput, NotFound
from app.services.users import find_user

__all__ = [
    "active_episode",
    "condition_out",
    "create_condition",
    "find_condition",
    "get_condition",
    "list_conditions",
    "update_condition",
]


def condition_out(episode: ConditionEpisode) -> ConditionOut:
    return ConditionOut.model_validate(episode, from_attributes=True)


def _check_dates(onset: date, resolved_on: date | None, today: date) -> None:
    if onset > today:
        raise InvalidInput("onset_date", f"is after today ({today.isoformat()})")
    if resolved_on is not None and resolved_on > today:
        raise InvalidInput("resolved_on", f"is after today ({today.isoformat()})")
    if resolved_on is not None and resolved_on < onset:
        raise InvalidInput("resolved_on", "is before the onset date")


def create_condition(
    session: Session,
    client_id: str,
    user_id: str,
    body: ConditionCreate,
    now: datetime,
) -> ConditionOut:
    user = find_user(session, client_id, user_id, for_update=True)
    _check_dates(body.onset_date, None, now.date())
    conditions = Conditions(session)
    current = conditions.active(user.id)
    if current is not None:
        raise Conflict(
            "kind",
            f"the user already has an active episode ({current.id}); resolve it first",
        )
    episode = ConditionEpisode(
        id=str(uuid.uuid4()),
        user_id=user.id,
        kind=body.kind.value,
        onset_date=body.onset_date,
        baseline_pain=body.baseline_pain,
        red_flags=sorted({f.value for f in body.red_flags}),
        side=body.side.value,
        directional_preference=body.directional_preference.value,
        stenosis_like_symptoms=body.stenosis_like_symptoms,
        status=ACTIVE,
        resolved_on=None,
        created_at=now,
        updated_at=now,
    )
    conditions.add(episode)
    return condition_out(episode)


def list_conditions(
    session: Session, client_id: str, user_id: str, limit: int, offset: int
) -> ConditionPage:
    user = find_user(session, client_id, user_id)
    rows, total = Conditions(session).page(user.id, limit, offset)
    return ConditionPage(
        items=[condition_out(c) for c in rows], total=total, limit=limit, offset=offset
    )


def active_episode(session: Session, user_id: str) -> ConditionEpisode:
    """The user's active episode; ``Conflict`` when there is none to attach work to."""
    episode = Conditions(session).active(user_id)
    if episode is None:
        raise Conflict("condition", "the user has no active condition episode; create one first")
    return episode


def find_condition(session: Session, user_id: str, condition_id: str) -> ConditionEpisode:
    episode = Conditions(session).get(user_id, condition_id)
    if episode is None:
        raise NotFound(f"No condition episode {condition_id!r} for this user.")
    return episode


def get_condition(
    session: Session, client_id: str, user_id: str, condition_id: str
) -> ConditionOut:
    user = find_user(session, client_id, user_id)
    return condition_out(find_condition(session, user.id, condition_id))


def update_condition(
    session: Session,
    client_id: str,
    user_id: str,
    condition_id: str,
    patch: ConditionPatch,
    now: datetime,
) -> ConditionOut:
    """Change an episode: a new red flag, a tested directional preference, resolution.

    The next recommendation reads the episode as it now stands (a new red flag refers).
    """
    user = find_user(session, client_id, user_id, for_update=True)
    episode = find_condition(session, user.id, condition_id)
    fields = patch.model_fields_set
    onset = patch.onset_date if patch.onset_date is not None else episode.onset_date
    status = patch.status.value if patch.status is not None else episode.status
    resolved_on = episode.resolved_on
    if "resolved_on" in fields:
        resolved_on = patch.resolved_on
    if status == RESOLVED and resolved_on is None:
        resolved_on = now.date()
    if status == ACTIVE:
        if "resolved_on" in fields and patch.resolved_on is not None:
            raise InvalidInput("resolved_on", "an active episode has no resolution date")
        resolved_on = None
        other = Conditions(session).active(user.id)
        if other is not None and other.id != episode.id:
            raise Conflict("status", f"the user already has an active episode ({other.id})")
    _check_dates(onset, resolved_on, now.date())

    episode.onset_date = onset
    if patch.baseline_pain is not None:
        episode.baseline_pain = patch.baseline_pain
    if patch.red_flags is not None:
        episode.red_flags = sorted({f.value for f in patch.red_flags})
    if patch.side is not None:
        episode.side = patch.side.value
    if patch.directional_preference is not None:
        episode.directional_preference = patch.directional_preference.value
    if patch.stenosis_like_symptoms is not None:
        episode.stenosis_like_symptoms = patch.stenosis_like_symptoms
    episode.status = status
    episode.resolved_on = resolved_on
    episode.updated_at = now
    return condition_out(episode)
