"""CDS Hooks 2.0 endpoints for EHRs: discovery, the ``patient-view`` service, feedback.

Discovery is public (it describes the service and holds no data). The service and its
feedback need the EHR's signed JWT (see ``app.services.cds_auth``); the issuer it names
decides which client's patients the call may see.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from app.api.deps import CatalogDep, HookTenantDep, NowDep, SettingsDep, WriteDb, request_id
from app.api.responses import problems
from app.errors import NotFound
from app.interop.cds_hooks import (
    SERVICE_ID,
    CardsResponse,
    Discovery,
    FeedbackReceipt,
    FeedbackRequest,
    HookRequest,
    discovery,
)
from app.services.cds import call_patient_view, record_feedback

router = APIRouter(tags=["cds"])

# Published as the one id there is; any other id is a 404, as for a missing resource.
ServiceId = Annotated[
    str,
    Path(
        max_length=64,
        description=f"The service id from discovery: `{SERVICE_ID}`.",
        json_schema_extra={"enum": [SERVICE_ID]},
    ),
]
_TOKEN_401 = {
    401: "No JWT, or one that fails a check: signature, algorithm, `kid`, issuer, `aud`, "
    "`exp`, `iat`, or a `jti` already used. Every refusal reads the same."
}


def _known(service_id: str) -> None:
    if service_id != SERVICE_ID:
        raise NotFound(f"No CDS service {service_id!r}.")


@router.get(
    "/cds-services",
    operation_id="discover_cds_services",
    response_model=Discovery,
    response_model_exclude_none=True,
    summary="Discover the CDS services",
    description="The CDS Hooks discovery document: one `patient-view` service, with the "
    "FHIR queries the EHR should prefetch.",
    responses=problems(429, 500),
)
def discover() -> Discovery:
    return discovery()


@router.post(
    "/cds-services/{service_id}",
    operation_id="call_cds_service",
    response_model=CardsResponse,
    response_model_exclude_none=True,
    summary="Call the patient-view service",
    description="Cards for the patient whose chart was opened. A patient the calling clinic "
    "registered (`external_id` = `context.patientId`) is answered from stored history, and "
    "the recommendation is stored; anyone else from the prefetched `patient`, `conditions` "
    "and `painScores` (412 when they were not sent). Red flags give one `critical` card "
    "with the referral; a flare or a need for review adds a `warning` card; the session "
    'itself is an `info` card. `{"cards": []}` when there is nothing to say. A retry with '
    "the same `hookInstance` returns the first answer.",
    responses=problems(
        400, 401, 404, 409, 412, 413, 415, 422, 429, 500, 503, descriptions=_TOKEN_401
    ),
)
def call_service(
    service_id: ServiceId,
    body: HookRequest,
    request: Request,
    tenant: HookTenantDep,
    db: WriteDb,
    catalog: CatalogDep,
    now: NowDep,
    settings: SettingsDep,
) -> JSONResponse:
    _known(service_id)
    cards = call_patient_view(
        db, tenant, body, catalog, now, request_id(request), settings.idempotency_hours
    )
    return JSONResponse(cards)


@router.post(
    "/cds-services/{service_id}/feedback",
    operation_id="send_cds_feedback",
    response_model=FeedbackReceipt,
    summary="Report what was done with cards",
    description="Whether each card was `accepted` or `overridden` (with the reason and the "
    "clinician's comment), for the service's audit and review. A report sent again is "
    "stored once.",
    responses=problems(400, 401, 404, 413, 415, 422, 429, 500, 503, descriptions=_TOKEN_401),
)
def feedback(
    service_id: ServiceId,
    body: FeedbackRequest,
    request: Request,
    tenant: HookTenantDep,
    db: WriteDb,
    now: NowDep,
) -> FeedbackReceipt:
    _known(service_id)
    return record_feedback(db, tenant, body, now, request_id(request))
