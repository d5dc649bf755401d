"""The CDS Hooks service: answer ``patient-view`` with cards, and keep the feedback on them.

A patient the calling clinic registered (``external_id`` = the EHR's patient id) is
answered from stored history, as ``POST /v1/users/{id}/recommendations`` would be, and the
recommendation is stored: a card shown to a clinician is a recommendation issued. Anyone
else is answered from the prefetched record alone: their card ids are kept (for feedback),
and the answer itself only as long as a retry is honoured. A retried call (same
``hookInstance``, same body) gets the first answer again; another call reusing it gets 409.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session

from app.api.schemas import RecommendationOut
from app.db.cds_repositories import CdsCards, CdsFeedbackLog
from app.db.models import CdsCard, CdsFeedback
from app.db.repositories import Conditions, Users
from app.domain.catalog import Catalog
from app.domain.engine import next_session
from app.errors import Conflict, InvalidInput, PreconditionFailed
from app.interop.cds_hooks import (
    SERVICE_ID,
    Card,
    CardsResponse,
    FeedbackReceipt,
    FeedbackRequest,
    HookRequest,
    PrefetchMissing,
    cards_for,
    read_prefetch,
)
from app.services.audit import Access, record
from app.services.clients import Tenant
from app.services.idempotency import IdempotencyKeyReused, Outcome, fingerprint, once, replay_of
from app.services.stored_recommendations import recommend_for_user
from app.telemetry import count_recommendation

__all__ = ["call_patient_view", "hook_instance_key", "record_feedback"]

# Card ids are UUIDv5 names under this namespace: the same call always names its cards alike.
_CARDS = uuid.UUID("0f6c1d8e-4b7a-5d2e-9c3f-8a1b2c3d4e5f")


def _decide(
    session: Session,
    tenant: Tenant,
    call: HookRequest,
    catalog: Catalog,
    now: datetime,
) -> tuple[list[Card], str | None, str | None]:
    """The cards, and the user and stored recommendation they came from (if any)."""

    def card_uuid(kind: str) -> str:
        return str(uuid.uuid5(_CARDS, f"{tenant.client_id}:{call.hookInstance}:{kind}"))

    user = Users(session).by_external_id(tenant.client_id, call.context.patientId)
    if user is not None:
        if Conditions(session).active(user.id) is None:
            return [], user.id, None  # registered, but no back condition being treated
        stored = recommend_for_user(session, tenant.client_id, user.id, catalog, now, source="cds")
        return cards_for(stored.recommendation, card_uuid), user.id, stored.id
    try:
        patient = read_prefetch(call.prefetch, now.date(), call.context.patientId)
    except PrefetchMissing as missing:
        raise PreconditionFailed(
            "prefetch",
            f"the patient is not registered with this client and {', '.join(missing.keys)} "
            "was not prefetched",
        ) from None
    if patient is None:
        return [], None, None
    decision = next_session(patient.profile, patient.condition, (), catalog, now.date())
    count_recommendation(decision, "cds")
    recommendation = RecommendationOut.model_validate(decision)
    cards = cards_for(
        recommendation, card_uuid, assumptions=patient.assumptions, red_flags_screened=False
    )
    return cards, None, None


def _hook_instance_used() -> Conflict:
    return Conflict("hookInstance", "was used for another call; each call needs its own")


def call_patient_view(
    session: Session,
    tenant: Tenant,
    call: HookRequest,
    catalog: Catalog,
    now: datetime,
    request_id: str,
    keep_hours: int,
) -> dict[str, Any]:
    """The cards for one ``patient-view`` call, as JSON without nulls."""

    def act() -> Outcome:
        repository = CdsCards(session)
        if repository.ids_for(tenant.client_id, call.hookInstance):
            # Answered before, and no longer remembered as a retry (or not the same call).
            raise _hook_instance_used()
        cards, user_id, recommendation_id = _decide(session, tenant, call, catalog, now)
        for card in cards:
            repository.add(
                CdsCard(
                    id=card.uuid,
                    client_id=tenant.client_id,
                    service_id=SERVICE_ID,
                    hook_instance=call.hookInstance,
                    user_id=user_id,
                    recommendation_id=recommendation_id,
                    indicator=card.indicator,
                    suggestion_ids=[],
                    issued_at=now,
                )
            )
        record(session, Access(tenant.client_id, user_id, "cds.patient-view", request_id, now))
        body = CardsResponse(cards=cards).model_dump(mode="json", exclude_none=True)
        return Outcome(200, body, user_id=user_id)

    # The access token, if the EHR sent one, is neither part of "the same call" nor kept.
    given = call.model_dump(mode="json", exclude={"fhirAuthorization"}, exclude_none=True)
    request_fingerprint = fingerprint("cds.patient-view", SERVICE_ID, given)
    # A call answered before the two interfaces' keys were parted was kept under
    # "cds-hooks:<hookInstance>" (for a day): its retry still replays it. A REST key of that
    # form holds another request's fingerprint, so it is never replayed here.
    earlier = replay_of(
        session,
        client_id=tenant.client_id,
        key=f"cds-hooks:{call.hookInstance}",
        request_fingerprint=request_fingerprint,
        now=now,
    )
    if earlier is not None:
        replayed: dict[str, Any] = earlier.body
        return replayed
    try:
        outcome = once(
            session,
            client_id=tenant.client_id,
            key=hook_instance_key(call.hookInstance),
            request_fingerprint=request_fingerprint,
            now=now,
            keep_hours=keep_hours,
            act=act,
        )
    except IdempotencyKeyReused:
        raise _hook_instance_used() from None
    body: dict[str, Any] = outcome.body
    return body


def hook_instance_key(hook_instance: str) -> str:
    """The idempotency key a CDS call is stored under. It holds a space, which no REST
    ``Idempotency-Key`` may (the header admits only ``[!-~]``), so an app's key can never
    claim, or replay, an EHR's call, whatever it is."""
    return f"cds-hooks {hook_instance}"


def record_feedback(
    session: Session,
    tenant: Tenant,
    body: FeedbackRequest,
    now: datetime,
    request_id: str,
) -> FeedbackReceipt:
    """Store what the clinician did with each card. A card must be one this service gave
    this client; accepted suggestions must be the card's own."""
    cards = CdsCards(session)
    log = CdsFeedbackLog(session)
    stored = 0
    users: set[str | None] = set()
    for i, item in enumerate(body.feedback):
        card = cards.get(tenant.client_id, item.card)
        if card is None:
            raise InvalidInput(f"feedback[{i}].card", "is not a card this service issued to you")
        accepted = [s.id for s in item.acceptedSuggestions or ()]
        unknown = sorted(set(accepted) - set(card.suggestion_ids))
        if unknown:
            raise InvalidInput(
                f"feedback[{i}].acceptedSuggestions", f"not suggestions of this card: {unknown}"
            )
        if item.outcome == "overridden" and accepted:
            raise InvalidInput(
                f"feedback[{i}].acceptedSuggestions", "an overridden card accepts no suggestion"
            )
        reason = item.overrideReason
        coding = None
        if reason is not None and reason.reason is not None:
            coding = reason.reason.model_dump(mode="json", exclude_none=True)
        stored += log.add(
            CdsFeedback(
                card_id=card.id,
                outcome=item.outcome,
                accepted_suggestions=accepted,
                override_reason=coding,
                user_comment=None if reason is None else reason.userComment,
                outcome_at=item.outcomeTimestamp,
                received_at=now,
            )
        )
        users.add(card.user_id)
    for user_id in sorted(users, key=lambda u: u or ""):
        record(session, Access(tenant.client_id, user_id, "cds.feedback", request_id, now))
    return FeedbackReceipt(received=len(body.feedback), stored=stored)
