"""Repositories for the CDS Hooks tables: trusted EHR issuers, used token ids, issued cards
and the feedback on them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from app.db.models import ApiClient, CdsCard, CdsFeedback, CdsIssuer, CdsTokenUse

__all__ = ["CdsCards", "CdsFeedbackLog", "CdsIssuers", "CdsTokenUses"]


def _insert(
    session: Session, table: type[CdsTokenUse] | type[CdsFeedback]
) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT DO NOTHING, in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class CdsIssuers:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, issuer: CdsIssuer) -> None:
        self.session.add(issuer)

    def by_issuer(self, issuer: str) -> tuple[CdsIssuer, ApiClient] | None:
        """The issuer and the client it acts for, if both exist (revocation is checked by
        the caller)."""
        query = (
            select(CdsIssuer, ApiClient)
            .join(ApiClient, col(ApiClient.id) == col(CdsIssuer.client_id))
            .where(CdsIssuer.issuer == issuer)
        )
        row = self.session.exec(query).first()
        return None if row is None else (row[0], row[1])

    def all(self) -> list[CdsIssuer]:
        query = select(CdsIssuer).order_by(col(CdsIssuer.created_at), col(CdsIssuer.id))
        return list(self.session.exec(query).all())

    def remove(self, issuer: str) -> bool:
        result = self.session.execute(sa.delete(CdsIssuer).where(col(CdsIssuer.issuer) == issuer))
        return bool(getattr(result, "rowcount", 0))


class CdsTokenUses:
    def __init__(self, session: Session) -> None:
        self.session = session

    def first_use(self, issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """Record a token id; False when it was seen before (a replay).

        The primary key decides, so two concurrent uses of one token cannot both pass.
        Expired ids are dropped on the way: a token past its expiry is refused anyway.
        """
        self.session.execute(sa.delete(CdsTokenUse).where(col(CdsTokenUse.expires_at) < now))
        statement = (
            _insert(self.session, CdsTokenUse)
            .values(issuer=issuer, jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["issuer", "jti"])
            .returning(col(CdsTokenUse.jti))
        )
        return self.session.execute(statement).first() is not None


class CdsCards:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, card: CdsCard) -> None:
        # The recommendation a card names may be pending in this session: it goes first
        # (there is no ORM relationship to order the inserts).
        self.session.flush()
        self.session.add(card)

    def get(self, client_id: str, card_id: str) -> CdsCard | None:
        """The tenant's card; another tenant's is as absent as an unknown one."""
        query = select(CdsCard).where(CdsCard.id == card_id, CdsCard.client_id == client_id)
        return self.session.exec(query).first()

    def ids_for(self, client_id: str, hook_instance: str) -> list[str]:
        query = select(col(CdsCard.id)).where(
            CdsCard.client_id == client_id, CdsCard.hook_instance == hook_instance
        )
        return list(self.session.exec(query).all())


class CdsFeedbackLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, feedback: CdsFeedback) -> bool:
        """Store a report; False when this exact report (card, outcome, time) is stored."""
        values = feedback.model_dump(exclude={"id"})
        statement = (
            _insert(self.session, CdsFeedback)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["card_id", "outcome", "outcome_at"])
            .returning(col(CdsFeedback.id))
        )
        return self.session.execute(statement).first() is not None
