"""Users: a tenant's people and their exercise profiles."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session

from app.api.resources import ProfileOut, UserCreate, UserOut, UserPage, UserPatch
from app.db.models import AppUser
from app.db.repositories import Users
from app.errors import Conflict, NotFound

__all__ = [
    "create_user",
    "delete_user",
    "find_user",
    "get_user",
    "list_users",
    "update_user",
    "user_out",
]


def user_out(user: AppUser) -> UserOut:
    return UserOut(
        id=user.id,
        external_id=user.external_id,
        profile=ProfileOut.model_validate(
            {
                "age": user.age,
                "ability": user.ability,
                "equipment": user.equipment,
                "contraindications": user.contraindications,
                "minutes_available": user.minutes_available,
            }
        ),
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def find_user(
    session: Session, client_id: str, user_id: str, *, for_update: bool = False
) -> AppUser:
    """The tenant's user; ``NotFound`` for a missing user and for another tenant's alike."""
    user = Users(session).get(client_id, user_id, for_update=for_update)
    if user is None:
        raise NotFound(f"No user {user_id!r}.")
    return user


def _taken(external_id: str) -> Conflict:
    return Conflict("external_id", f"{external_id!r} is already one of your users")


def create_user(session: Session, client_id: str, body: UserCreate, now: datetime) -> UserOut:
    users = Users(session)
    profile = body.profile
    user = AppUser(
        id=str(uuid.uuid4()),
        client_id=client_id,
        external_id=body.external_id,
        age=profile.age,
        ability=profile.ability.value,
        # Sorted and de-duplicated, so equal profiles are stored (and decided) alike.
        equipment=sorted({e.value for e in profile.equipment}),
        contraindications=sorted({c.value for c in profile.contraindications}),
        minutes_available=profile.minutes_available,
        created_at=now,
        updated_at=now,
    )
    if users.by_external_id(client_id, body.external_id) is not None or not users.add(user):
        raise _taken(body.external_id)
    return user_out(user)


def list_users(session: Session, client_id: str, limit: int, offset: int) -> UserPage:
    rows, total = Users(session).page(client_id, limit, offset)
    return UserPage(items=[user_out(u) for u in rows], total=total, limit=limit, offset=offset)


def get_user(session: Session, client_id: str, user_id: str) -> UserOut:
    return user_out(find_user(session, client_id, user_id))


def update_user(
    session: Session, client_id: str, user_id: str, patch: UserPatch, now: datetime
) -> UserOut:
    user = find_user(session, client_id, user_id, for_update=True)
    if patch.external_id is not None and patch.external_id != user.external_id:
        user.external_id = patch.external_id
        if not Users(session).flush_unique():
            raise _taken(patch.external_id)
    profile = patch.profile
    if profile is not None:
        if profile.age is not None:
            user.age = profile.age
        if profile.ability is not None:
            user.ability = profile.ability.value
        if profile.equipment is not None:
            user.equipment = sorted({e.value for e in profile.equipment})
        if profile.contraindications is not None:
            user.contraindications = sorted({c.value for c in profile.contraindications})
        if profile.minutes_available is not None:
            user.minutes_available = profile.minutes_available
    user.updated_at = now
    return user_out(user)


def delete_user(session: Session, client_id: str, user_id: str) -> None:
    """Right to erasure: the user, their episodes, sessions, recommendations, summaries and
    any stored idempotent responses about them."""
    Users(session).erase(find_user(session, client_id, user_id, for_update=True))
