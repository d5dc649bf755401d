"""Every query the service makes, grouped by what it reads or writes.

Repositories take the request's ``Session`` and never commit (see ``app.db.session``). Every
lookup a tenant can trigger is scoped by the tenant: a user is found by (client, id), and
everything else by the user found that way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import Session, SQLModel, col, select

from app.db.codec import (
    exercise_result_from_json,
    summary_from_json,
    summary_json,
)
from app.db.models import (
    ApiClient,
    AppUser,
    AuditEvent,
    CdsCard,
    CdsFeedback,
    ConditionEpisode,
    ExerciseSession,
    HistorySummaryRow,
    IdempotencyRecord,
    RecommendationRecord,
)
from app.domain.types import (
    AbilityLevel,
    Condition,
    ConditionKind,
    Contraindication,
    DirectionalPreference,
    Equipment,
    HistorySummary,
    Profile,
    RedFlag,
    SessionRecord,
    Side,
    SymptomChange,
)

__all__ = [
    "ACTIVE",
    "RESOLVED",
    "AuditEvents",
    "Clients",
    "Conditions",
    "HistorySummaries",
    "IdempotencyKeys",
    "Recommendations",
    "SessionKey",
    "Sessions",
    "StoredResponse",
    "Users",
    "condition_of",
    "profile_of",
    "session_record_of",
]

ACTIVE = "active"
RESOLVED = "resolved"
Row = TypeVar("Row", bound=SQLModel)


def _page(session: Session, query: Any, limit: int, offset: int) -> tuple[list[Any], int]:
    total = session.exec(select(sa.func.count()).select_from(query.subquery())).one()
    return list(session.exec(query.limit(limit).offset(offset)).all()), int(total)


# ---------------------------------------------------------------------------------------------
# Rows to domain values


def profile_of(user: AppUser) -> Profile:
    return Profile(
        age=user.age,
        ability=AbilityLevel(user.ability),
        equipment=frozenset(Equipment(e) for e in user.equipment),
        contraindications=frozenset(Contraindication(c) for c in user.contraindications),
        minutes_available=user.minutes_available,
    )


def condition_of(episode: ConditionEpisode) -> Condition:
    return Condition(
        kind=ConditionKind(episode.kind),
        onset_date=episode.onset_date,
        baseline_pain=episode.baseline_pain,
        red_flags=frozenset(RedFlag(f) for f in episode.red_flags),
        side=Side(episode.side),
        directional_preference=DirectionalPreference(episode.directional_preference),
        stenosis_like_symptoms=episode.stenosis_like_symptoms,
    )


def session_record_of(row: ExerciseSession) -> SessionRecord:
    return SessionRecord(
        date=row.date,
        exercises=tuple(exercise_result_from_json(r) for r in row.exercises),
        completed=row.completed,
        pain_before=row.pain_before,
        pain_after=row.pain_after,
        next_day_pain=row.next_day_pain,
        symptom_change=SymptomChange(row.symptom_change),
        new_numbness_or_tingling=row.new_numbness_or_tingling,
    )


# ---------------------------------------------------------------------------------------------
# Tenants


class Clients:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, client: ApiClient) -> ApiClient:
        self.session.add(client)
        self.session.flush()
        return client

    def by_key_id(self, key_id: str) -> ApiClient | None:
        return self.session.exec(select(ApiClient).where(ApiClient.key_id == key_id)).first()

    def get(self, client_id: str) -> ApiClient | None:
        return self.session.get(ApiClient, client_id)

    def all(self) -> list[ApiClient]:
        return list(self.session.exec(select(ApiClient).order_by(col(ApiClient.created_at))))


# ---------------------------------------------------------------------------------------------
# Users


class Users:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, client_id: str, user_id: str, *, for_update: bool = False) -> AppUser | None:
        """The tenant's user, or None: another tenant's user is as absent as a missing one.

        ``for_update`` locks the row until the transaction ends, so writes about one user
        are serialised (PostgreSQL; SQLite's write transactions are serial already).
        """
        query = select(AppUser).where(AppUser.id == user_id, AppUser.client_id == client_id)
        if for_update:
            query = query.with_for_update()
        return self.session.exec(query).first()

    def by_external_id(self, client_id: str, external_id: str) -> AppUser | None:
        query = select(AppUser).where(
            AppUser.client_id == client_id, AppUser.external_id == external_id
        )
        return self.session.exec(query).first()

    def add(self, user: AppUser) -> bool:
        """Insert; False when the tenant already has this ``external_id`` (even concurrently)."""
        try:
            with self.session.begin_nested():
                self.session.add(user)
        except IntegrityError:
            return False
        return True

    def flush_unique(self) -> bool:
        """Flush pending changes; False when they break the (client, external_id) rule."""
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            return False
        return True

    def page(self, client_id: str, limit: int, offset: int) -> tuple[list[AppUser], int]:
        query = (
            select(AppUser)
            .where(AppUser.client_id == client_id)
            .order_by(col(AppUser.created_at), col(AppUser.id))
        )
        return _page(self.session, query, limit, offset)

    def erase(self, user: AppUser) -> None:
        """Delete the user and everything about them. Explicit, child tables first, so it
        does not depend on the database enforcing ON DELETE CASCADE."""
        uid = user.id
        conditions = select(ConditionEpisode.id).where(ConditionEpisode.user_id == uid)
        cards = select(CdsCard.id).where(CdsCard.user_id == uid)
        for statement in (
            sa.delete(CdsFeedback).where(col(CdsFeedback.card_id).in_(cards)),
            sa.delete(CdsCard).where(col(CdsCard.user_id) == uid),
            sa.delete(IdempotencyRecord).where(col(IdempotencyRecord.user_id) == uid),
            sa.delete(ExerciseSession).where(col(ExerciseSession.user_id) == uid),
            sa.delete(RecommendationRecord).where(col(RecommendationRecord.user_id) == uid),
            sa.delete(HistorySummaryRow).where(col(HistorySummaryRow.condition_id).in_(conditions)),
            sa.delete(ConditionEpisode).where(col(ConditionEpisode.user_id) == uid),
            sa.delete(AppUser).where(col(AppUser.id) == uid),
        ):
            self.session.execute(statement)
        self.session.expunge(user)


# ---------------------------------------------------------------------------------------------
# Condition episodes


class Conditions:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, episode: ConditionEpisode) -> None:
        self.session.add(episode)

    def get(self, user_id: str, condition_id: str) -> ConditionEpisode | None:
        query = select(ConditionEpisode).where(
            ConditionEpisode.id == condition_id, ConditionEpisode.user_id == user_id
        )
        return self.session.exec(query).first()

    def active(self, user_id: str) -> ConditionEpisode | None:
        query = (
            select(ConditionEpisode)
            .where(ConditionEpisode.user_id == user_id, ConditionEpisode.status == ACTIVE)
            .order_by(col(ConditionEpisode.created_at).desc())
        )
        return self.session.exec(query).first()

    def page(self, user_id: str, limit: int, offset: int) -> tuple[list[ConditionEpisode], int]:
        query = (
            select(ConditionEpisode)
            .where(ConditionEpisode.user_id == user_id)
            .order_by(col(ConditionEpisode.created_at).desc(), col(ConditionEpisode.id))
        )
        return _page(self.session, query, limit, offset)

    def all_of(self, user_id: str) -> list[ConditionEpisode]:
        """Every episode of the user, newest first (the order of ``page``)."""
        query = (
            select(ConditionEpisode)
            .where(ConditionEpisode.user_id == user_id)
            .order_by(col(ConditionEpisode.created_at).desc(), col(ConditionEpisode.id))
        )
        return list(self.session.exec(query))


# ---------------------------------------------------------------------------------------------
# Sessions


@dataclass(frozen=True, slots=True)
class SessionKey:
    """Where a session sorts among a user's sessions, newest first: (date, created, id)."""

    date: date
    created_at: datetime
    id: str


class Sessions:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: ExerciseSession) -> None:
        self.session.add(row)

    def get(self, user_id: str, session_id: str) -> ExerciseSession | None:
        query = select(ExerciseSession).where(
            ExerciseSession.id == session_id, ExerciseSession.user_id == user_id
        )
        return self.session.exec(query).first()

    def page(
        self, user_id: str, limit: int, offset: int, condition_id: str | None = None
    ) -> tuple[list[ExerciseSession], int]:
        query = select(ExerciseSession).where(ExerciseSession.user_id == user_id)
        if condition_id is not None:
            query = query.where(ExerciseSession.condition_id == condition_id)
        query = query.order_by(
            col(ExerciseSession.date).desc(),
            col(ExerciseSession.created_at).desc(),
            col(ExerciseSession.id).desc(),
        )
        return _page(self.session, query, limit, offset)

    def count_on(self, condition_id: str, day: date) -> int:
        query = select(sa.func.count()).where(
            ExerciseSession.condition_id == condition_id, ExerciseSession.date == day
        )
        return int(self.session.exec(query).one())

    def newest_dates(self, condition_id: str, since: date, until: date, limit: int) -> list[date]:
        """Dates of the newest ``limit`` sessions in [since, until], newest first."""
        query = (
            select(col(ExerciseSession.date))
            .where(
                ExerciseSession.condition_id == condition_id,
                col(ExerciseSession.date) >= since,
                col(ExerciseSession.date) <= until,
            )
            .order_by(col(ExerciseSession.date).desc())
            .limit(limit)
        )
        return list(self.session.exec(query).all())

    def between(
        self, condition_id: str, after: date | None, before: date, *, chunk: int = 500
    ) -> Iterator[SessionRecord]:
        """Sessions dated after ``after`` (all when None) and before ``before``, oldest first,
        streamed in chunks so folding a long history never holds it all in memory."""
        query = select(ExerciseSession).where(
            ExerciseSession.condition_id == condition_id, col(ExerciseSession.date) < before
        )
        if after is not None:
            query = query.where(col(ExerciseSession.date) > after)
        query = query.order_by(col(ExerciseSession.date), col(ExerciseSession.id))
        for row in self.session.exec(query.execution_options(yield_per=chunk)):
            yield session_record_of(row)

    def window(self, condition_id: str, start: date, until: date) -> list[SessionRecord]:
        query = (
            select(ExerciseSession)
            .where(
                ExerciseSession.condition_id == condition_id,
                col(ExerciseSession.date) >= start,
                col(ExerciseSession.date) <= until,
            )
            .order_by(col(ExerciseSession.date), col(ExerciseSession.id))
        )
        return [session_record_of(row) for row in self.session.exec(query)]

    def newest(
        self, user_id: str, limit: int, after: SessionKey | None = None
    ) -> list[ExerciseSession]:
        """The user's ``limit`` newest sessions across episodes, in the order of ``page``;
        with ``after``, those that come after that key in that order (a keyset: sessions
        logged meanwhile never shift the rows that follow it)."""
        query = select(ExerciseSession).where(ExerciseSession.user_id == user_id)
        if after is not None:
            key = sa.tuple_(
                col(ExerciseSession.date), col(ExerciseSession.created_at), col(ExerciseSession.id)
            )
            # The date bound alone is redundant, but it is what lets the (user, date) index
            # start the scan at the cursor rather than at the user's newest session.
            query = query.where(
                col(ExerciseSession.date) <= after.date,
                key < (after.date, after.created_at, after.id),
            )
        query = query.order_by(
            col(ExerciseSession.date).desc(),
            col(ExerciseSession.created_at).desc(),
            col(ExerciseSession.id).desc(),
        ).limit(limit)
        return list(self.session.exec(query))


# ---------------------------------------------------------------------------------------------
# Recommendations


class Recommendations:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: RecommendationRecord) -> None:
        self.session.add(record)

    def get(self, user_id: str, recommendation_id: str) -> RecommendationRecord | None:
        query = select(RecommendationRecord).where(
            RecommendationRecord.id == recommendation_id,
            RecommendationRecord.user_id == user_id,
        )
        return self.session.exec(query).first()

    def page(self, user_id: str, limit: int, offset: int) -> tuple[list[RecommendationRecord], int]:
        query = (
            select(RecommendationRecord)
            .where(RecommendationRecord.user_id == user_id)
            .order_by(col(RecommendationRecord.created_at).desc(), col(RecommendationRecord.id))
        )
        return _page(self.session, query, limit, offset)

    def latest_of_newest_episode(self, user_id: str) -> RecommendationRecord | None:
        """The newest recommendation of the newest episode that has any (episodes and
        recommendations each in the order of their listings)."""
        query = (
            select(RecommendationRecord)
            .join(ConditionEpisode, col(ConditionEpisode.id) == RecommendationRecord.condition_id)
            .where(RecommendationRecord.user_id == user_id)
            .order_by(
                col(ConditionEpisode.created_at).desc(),
                col(ConditionEpisode.id),
                col(RecommendationRecord.created_at).desc(),
                col(RecommendationRecord.id),
            )
            # Its answer, not its inputs (ten times the size, and never read from here).
            .options(defer(RecommendationRecord.inputs))  # type: ignore[arg-type]
            .limit(1)
        )
        return self.session.exec(query).first()

    def exercises_of(self, user_id: str, ids: list[str]) -> list[tuple[str, str, datetime, Any]]:
        """(id, condition id, created at, prescribed exercises) of the user's recommendations
        among ``ids``, newest first. The database picks the exercises out of the stored
        answer, so neither the inputs nor the trace are read, sent or decoded."""
        if not ids:
            return []
        exercises = col(RecommendationRecord.output)["exercises"]
        query = (
            select(
                col(RecommendationRecord.id),
                col(RecommendationRecord.condition_id),
                col(RecommendationRecord.created_at),
                exercises,
            )
            .where(
                RecommendationRecord.user_id == user_id,
                col(RecommendationRecord.id).in_(ids),
            )
            .order_by(col(RecommendationRecord.created_at).desc(), col(RecommendationRecord.id))
        )
        return [tuple(row) for row in self.session.exec(query)]


# ---------------------------------------------------------------------------------------------
# History summaries


class HistorySummaries:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, condition_id: str, basis: str) -> HistorySummary | None:
        """The stored summary, if it was built on this basis."""
        row = self.session.get(HistorySummaryRow, condition_id)
        if row is None or row.basis != basis:
            return None
        return summary_from_json(
            {
                "through": row.through.isoformat(),
                "first_date": row.first_date.isoformat(),
                "sessions": row.sessions,
                "completed_sessions": row.completed_sessions,
                "phase": row.phase,
                "pain": row.pain,
                "held": row.held,
                "exercises_done": row.exercises_done,
                "trend": row.trend,
            }
        )

    def save(self, condition_id: str, basis: str, summary: HistorySummary) -> None:
        data = summary_json(summary)
        row = self.session.get(HistorySummaryRow, condition_id)
        if row is None:
            row = HistorySummaryRow(
                condition_id=condition_id,
                basis=basis,
                through=summary.through,
                first_date=summary.first_date,
                sessions=summary.sessions,
                completed_sessions=summary.completed_sessions,
                phase=data["phase"],
                pain=summary.pain,
                held=summary.held,
                exercises_done=data["exercises_done"],
                trend=data["trend"],
            )
            self.session.add(row)
            return
        row.basis = basis
        row.through = summary.through
        row.first_date = summary.first_date
        row.sessions = summary.sessions
        row.completed_sessions = summary.completed_sessions
        row.phase = data["phase"]
        row.pain = summary.pain
        row.held = summary.held
        row.exercises_done = data["exercises_done"]
        row.trend = data["trend"]

    def drop_if_covers(self, condition_id: str, day: date) -> None:
        """Forget the summary when a session on or before its last folded day changed."""
        self.session.execute(
            sa.delete(HistorySummaryRow).where(
                col(HistorySummaryRow.condition_id) == condition_id,
                col(HistorySummaryRow.through) >= day,
            )
        )


# ---------------------------------------------------------------------------------------------
# Idempotency keys


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status_code: int
    body: Any
    headers: dict[str, str]


class IdempotencyKeys:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(
        self, client_id: str, key: str, fingerprint: str, now: datetime, expires_at: datetime
    ) -> StoredResponse | None:
        """Claim ``key`` for this request, or return the response stored under it.

        The insert relies on the unique (client, key) constraint, not on a prior read: a
        concurrent request with the same key blocks on it until the first transaction ends,
        then finds that transaction's row.
        """
        self.session.execute(
            sa.delete(IdempotencyRecord).where(
                col(IdempotencyRecord.client_id) == client_id,
                col(IdempotencyRecord.key) == key,
                col(IdempotencyRecord.expires_at) <= now,
            )
        )
        dialect = self.session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
            IdempotencyRecord
        )
        statement = insert.values(
            client_id=client_id,
            key=key,
            fingerprint=fingerprint,
            status_code=0,
            expires_at=expires_at,
        ).on_conflict_do_nothing(index_elements=["client_id", "key"])
        # RETURNING says whether this request inserted the row (rowcount is not reliable
        # across drivers for INSERT ... ON CONFLICT DO NOTHING).
        claimed = self.session.execute(statement.returning(col(IdempotencyRecord.id))).first()
        if claimed is not None:
            return None
        row = self.session.exec(
            select(IdempotencyRecord).where(
                IdempotencyRecord.client_id == client_id, IdempotencyRecord.key == key
            )
        ).one()
        return StoredResponse(row.fingerprint, row.status_code, row.response, row.headers or {})

    def stored(self, client_id: str, key: str, now: datetime) -> StoredResponse | None:
        """The completed, unexpired response kept under ``key``, without claiming it."""
        row = self.session.exec(
            select(IdempotencyRecord).where(
                IdempotencyRecord.client_id == client_id,
                IdempotencyRecord.key == key,
                col(IdempotencyRecord.expires_at) > now,
                col(IdempotencyRecord.status_code) != 0,
            )
        ).first()
        if row is None:
            return None
        return StoredResponse(row.fingerprint, row.status_code, row.response, row.headers or {})

    def complete(
        self,
        client_id: str,
        key: str,
        *,
        user_id: str | None,
        status_code: int,
        body: Any,
        headers: dict[str, str],
    ) -> None:
        self.session.execute(
            sa.update(IdempotencyRecord)
            .where(col(IdempotencyRecord.client_id) == client_id, col(IdempotencyRecord.key) == key)
            .values(user_id=user_id, status_code=status_code, response=body, headers=headers)
        )

    def purge_expired(self, now: datetime, limit: int = 100) -> None:
        """Delete up to ``limit`` expired keys (any tenant's): bounded work per request."""
        # SKIP LOCKED (PostgreSQL): two requests never queue on the same expired rows.
        ids = (
            select(IdempotencyRecord.id)
            .where(col(IdempotencyRecord.expires_at) <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        self.session.execute(sa.delete(IdempotencyRecord).where(col(IdempotencyRecord.id).in_(ids)))


# ---------------------------------------------------------------------------------------------
# Audit events


class AuditEvents:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, event: AuditEvent) -> None:
        self.session.add(event)

    def page(
        self, client_id: str, limit: int, offset: int, user_id: str | None = None
    ) -> tuple[list[AuditEvent], int]:
        query = select(AuditEvent).where(AuditEvent.client_id == client_id)
        if user_id is not None:
            query = query.where(AuditEvent.user_id == user_id)
        query = query.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        return _page(self.session, query, limit, offset)
