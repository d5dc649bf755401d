"""Table models: storage only. API schemas and domain types are mapped in the repositories.

Every row a tenant can reach hangs off ``app_user.client_id``; children cascade from the
user, so erasing a user erases everything about them in one statement.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

__all__ = [
    "ApiClient",
    "AppUser",
    "AuditEvent",
    "CdsCard",
    "CdsFeedback",
    "CdsIssuer",
    "CdsTokenUse",
    "ConditionEpisode",
    "ExerciseSession",
    "HistorySummaryRow",
    "IdempotencyRecord",
    "RecommendationRecord",
    "UTCDateTime",
]

# Named constraints, so migrations can alter them on SQLite (batch mode) and PostgreSQL alike.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite would hand back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id() -> Any:
    return Field(primary_key=True, max_length=36)


def _user_fk() -> Any:
    return Field(
        sa_column_args=[sa.ForeignKey("app_user.id", ondelete="CASCADE")],
        max_length=36,
        index=True,
    )


def _stamp() -> Any:
    return Field(sa_type=UTCDateTime)


class ApiClient(SQLModel, table=True):
    """A tenant: one calling app or clinic, with one API key (only its hash is kept)."""

    __tablename__ = "api_client"

    id: str = _id()
    name: str = Field(max_length=100)
    key_id: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    created_at: datetime = _stamp()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AppUser(SQLModel, table=True):
    """A person, as one tenant knows them, with their exercise profile."""

    __tablename__ = "app_user"
    __table_args__ = (sa.UniqueConstraint("client_id", "external_id"),)

    id: str = _id()
    client_id: str = Field(
        sa_column_args=[sa.ForeignKey("api_client.id", ondelete="CASCADE")], max_length=36
    )
    external_id: str = Field(max_length=255)
    age: int
    ability: str = Field(max_length=20)
    equipment: list[str] = Field(sa_type=sa.JSON)
    contraindications: list[str] = Field(sa_type=sa.JSON)
    minutes_available: int
    created_at: datetime = _stamp()
    updated_at: datetime = _stamp()


class ConditionEpisode(SQLModel, table=True):
    """One episode of a back condition; a user has at most one active episode."""

    __tablename__ = "condition_episode"

    id: str = _id()
    user_id: str = _user_fk()
    kind: str = Field(max_length=20)
    onset_date: date
    baseline_pain: int
    red_flags: list[str] = Field(sa_type=sa.JSON)
    side: str = Field(max_length=10)
    directional_preference: str = Field(max_length=20)
    stenosis_like_symptoms: bool
    status: str = Field(max_length=10)
    resolved_on: date | None = None
    created_at: datetime = _stamp()
    updated_at: datetime = _stamp()


class ExerciseSession(SQLModel, table=True):
    """A performed (or missed) session, with each exercise prescribed against performed."""

    __tablename__ = "exercise_session"
    # The decision window is read by (episode, date) and listings by (user, date): index
    # range scans, never a full read of the history.
    __table_args__ = (
        sa.Index("ix_exercise_session_condition_date", "condition_id", "date"),
        sa.Index("ix_exercise_session_user_date", "user_id", "date"),
    )

    id: str = _id()
    user_id: str = Field(
        sa_column_args=[sa.ForeignKey("app_user.id", ondelete="CASCADE")], max_length=36
    )
    condition_id: str = Field(
        sa_column_args=[sa.ForeignKey("condition_episode.id", ondelete="CASCADE")],
        max_length=36,
    )
    recommendation_id: str | None = Field(
        default=None,
        sa_column_args=[sa.ForeignKey("recommendation.id", ondelete="SET NULL")],
        max_length=36,
    )
    date: date
    completed: bool
    exercises: list[dict[str, Any]] = Field(sa_type=sa.JSON)
    pain_before: int | None = None
    pain_after: int | None = None
    next_day_pain: int | None = None
    symptom_change: str = Field(max_length=20)
    new_numbness_or_tingling: bool
    created_at: datetime = _stamp()
    updated_at: datetime = _stamp()


class RecommendationRecord(SQLModel, table=True):
    """A recommendation as issued: its exact inputs, the ruleset version and the answer."""

    __tablename__ = "recommendation"
    __table_args__ = (sa.Index("ix_recommendation_user_created", "user_id", "created_at"),)

    id: str = _id()
    user_id: str = Field(
        sa_column_args=[sa.ForeignKey("app_user.id", ondelete="CASCADE")], max_length=36
    )
    condition_id: str = Field(
        sa_column_args=[sa.ForeignKey("condition_episode.id", ondelete="CASCADE")],
        max_length=36,
        index=True,
    )
    today: date
    ruleset_version: str = Field(max_length=64)
    status: str = Field(max_length=10)
    inputs: dict[str, Any] = Field(sa_type=sa.JSON)
    output: dict[str, Any] = Field(sa_type=sa.JSON)
    created_at: datetime = _stamp()


class HistorySummaryRow(SQLModel, table=True):
    """An episode's sessions before the decision window, folded (see ``HistorySummary``).

    ``basis`` fingerprints what the fold depends on (ruleset, condition kind, onset and
    baseline pain); a different basis, or a session written on or before ``through``,
    makes the row stale and it is rebuilt.
    """

    __tablename__ = "history_summary"

    condition_id: str = Field(
        sa_column_args=[sa.ForeignKey("condition_episode.id", ondelete="CASCADE")],
        primary_key=True,
        max_length=36,
    )
    basis: str = Field(max_length=64)
    through: date
    first_date: date
    sessions: int
    completed_sessions: int
    phase: str | None = Field(default=None, max_length=20)
    pain: int | None = None
    held: bool
    exercises_done: list[str] = Field(sa_type=sa.JSON)
    # The trend signals' state (first weeks' pain, the last two weeks' digests).
    trend: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a request sent with an ``Idempotency-Key``.

    The unique constraint on (client, key) is what makes concurrent retries safe: the
    second insert waits for the first transaction and then finds its row.
    """

    __tablename__ = "idempotency_key"
    __table_args__ = (sa.UniqueConstraint("client_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(
        sa_column_args=[sa.ForeignKey("api_client.id", ondelete="CASCADE")], max_length=36
    )
    key: str = Field(max_length=255)
    # Responses carry health data: they go when the user is erased.
    user_id: str | None = Field(
        default=None,
        sa_column_args=[sa.ForeignKey("app_user.id", ondelete="CASCADE")],
        max_length=36,
        index=True,
    )
    fingerprint: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    headers: dict[str, str] | None = Field(default=None, sa_type=sa.JSON)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class AuditEvent(SQLModel, table=True):
    """One access to a user's data: who (client), whose (user), what, when, which request.

    Append-only: nothing updates or deletes these rows but the client's own removal. They
    hold no health data, and they outlive a user's erasure (the erasure is itself recorded).
    """

    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_event_client_at", "client_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(
        sa_column_args=[sa.ForeignKey("api_client.id", ondelete="CASCADE")], max_length=36
    )
    user_id: str | None = Field(default=None, max_length=36)
    action: str = Field(max_length=64)
    request_id: str = Field(max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)


class CdsIssuer(SQLModel, table=True):
    """An EHR allowed to call the CDS Hooks service: its JWT issuer, its public keys (a JWK
    Set, inline or at a URL), and the client (tenant) its calls act for."""

    __tablename__ = "cds_issuer"

    id: str = _id()
    client_id: str = Field(
        sa_column_args=[sa.ForeignKey("api_client.id", ondelete="CASCADE")],
        max_length=36,
        index=True,
    )
    issuer: str = Field(max_length=255, unique=True)
    jwks_url: str | None = Field(default=None, max_length=2000)
    jwks: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    created_at: datetime = _stamp()


class CdsTokenUse(SQLModel, table=True):
    """A CDS Hooks token's ``jti``, kept until the token expires so it cannot be replayed.

    The primary key is what refuses a replay, also between instances and concurrent calls.
    """

    __tablename__ = "cds_token_use"

    issuer: str = Field(primary_key=True, max_length=255)
    jti: str = Field(primary_key=True, max_length=255)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class CdsCard(SQLModel, table=True):
    """A card the CDS Hooks service returned, so that feedback can be tied to it.

    Holds no health data itself; it names the user and recommendation it was made from.
    """

    __tablename__ = "cds_card"
    # A hook instance is looked up per call, to refuse its reuse.
    __table_args__ = (sa.Index("ix_cds_card_client_hook", "client_id", "hook_instance"),)

    id: str = _id()  # the card's uuid, as sent
    client_id: str = Field(
        sa_column_args=[sa.ForeignKey("api_client.id", ondelete="CASCADE")], max_length=36
    )
    service_id: str = Field(max_length=64)
    hook_instance: str = Field(max_length=64)
    user_id: str | None = Field(
        default=None,
        sa_column_args=[sa.ForeignKey("app_user.id", ondelete="CASCADE")],
        max_length=36,
        index=True,
    )
    recommendation_id: str | None = Field(
        default=None,
        sa_column_args=[sa.ForeignKey("recommendation.id", ondelete="CASCADE")],
        max_length=36,
    )
    indicator: str = Field(max_length=10)
    suggestion_ids: list[str] = Field(sa_type=sa.JSON)
    issued_at: datetime = _stamp()


class CdsFeedback(SQLModel, table=True):
    """What the clinician did with a card: accepted (which suggestions) or overridden (why).

    The same report may arrive more than once; the unique constraint keeps one copy.
    """

    __tablename__ = "cds_feedback"
    __table_args__ = (sa.UniqueConstraint("card_id", "outcome", "outcome_at"),)

    id: int | None = Field(default=None, primary_key=True)
    card_id: str = Field(
        sa_column_args=[sa.ForeignKey("cds_card.id", ondelete="CASCADE")], max_length=36
    )
    outcome: str = Field(max_length=12)
    accepted_suggestions: list[str] = Field(sa_type=sa.JSON)
    override_reason: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    # Free text from the clinician: may hold health data, so it goes with the card.
    user_comment: str | None = Field(default=None, max_length=2000)
    outcome_at: datetime = _stamp()
    received_at: datetime = _stamp()
