"""``GET /v1/users/{user_id}/fhir``: a user's stored record as a FHIR R4 Bundle.

Served as ``application/fhir+json`` text built by ``fhir.resources`` (not a FastAPI
``response_model``, which would publish an opaque object and emit nulls). Its OpenAPI entry
describes the Bundle's outline and shows an example built by the mapping itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from app.api.deps import NowDep, ReadDb, TenantDep, record_access
from app.api.resources import ConditionOut, SessionOut, StoredRecommendationOut, UserOut
from app.api.responses import READ_PROBLEMS, problems
from app.api.routes.users import UserId
from app.interop.narrative import FHIR_JSON

__all__ = ["add_bundle_example", "router"]

# Exporting a user's record reads their data: each success leaves an audit event.
router = APIRouter(
    prefix="/v1", tags=["fhir"], dependencies=[Depends(record_access, scope="function")]
)

SessionCount = Annotated[
    int,
    Query(
        ge=1,
        le=500,
        description="How many of the user's newest sessions (across episodes) to include, "
        "each as a Procedure with its pain Observations.",
    ),
]


def _first_example(model: type[BaseModel]) -> Any:
    """The first example the contract publishes for ``model``."""
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if not isinstance(examples, list) or not examples:
        raise TypeError(f"{model.__name__} publishes no example")
    return examples[0]


def _bundle_example() -> Any:
    """The contract's own example user, episode, recommendation and session, exported."""
    from app.interop.fhir import user_bundle  # see export_user_fhir

    bundle = user_bundle(
        user=UserOut.model_validate(_first_example(UserOut)),
        client_id="9b3e7c1a-52d4-4f8e-a6b0-3c9d2e7f1a45",
        episodes=[ConditionOut.model_validate(_first_example(ConditionOut))],
        sessions=[SessionOut.model_validate(_first_example(SessionOut))],
        latest=StoredRecommendationOut.model_validate(_first_example(StoredRecommendationOut)),
        cited=[],
        now=datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
    )
    return bundle.model_dump(mode="json")


# The outline a client can rely on; each resource is FHIR R4 (validate it with a FHIR tool).
_BUNDLE_SCHEMA: dict[str, Any] = {
    "title": "FhirBundle",
    "type": "object",
    "description": "A FHIR R4 Bundle of type collection: Patient, Conditions, CarePlan, "
    "ServiceRequests, Procedures and Observations, in that order.",
    "required": ["resourceType", "id", "type", "timestamp", "entry"],
    "properties": {
        "resourceType": {"type": "string", "const": "Bundle"},
        "id": {"type": "string"},
        "type": {"type": "string", "const": "collection"},
        "timestamp": {"type": "string", "format": "date-time"},
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["fullUrl", "resource"],
                "properties": {
                    "fullUrl": {"type": "string", "pattern": "^urn:uuid:[0-9a-f-]{36}$"},
                    "resource": {
                        "type": "object",
                        "required": ["resourceType", "id"],
                        "properties": {
                            "resourceType": {"type": "string"},
                            "id": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}


def add_bundle_example(document: dict[str, Any]) -> None:
    """Show an exported bundle in the OpenAPI document (built when the document is)."""
    operation = document["paths"]["/v1/users/{user_id}/fhir"]["get"]
    schema = operation["responses"]["200"]["content"][FHIR_JSON]["schema"]
    schema["examples"] = [_bundle_example()]


@router.get(
    "/users/{user_id}/fhir",
    operation_id="export_user_fhir",
    summary="Export a user's record as a FHIR R4 Bundle",
    description=(
        "A FHIR R4 `Bundle` of type `collection`, as `application/fhir+json`, for a clinic's "
        "EHR. It holds a pseudonymous `Patient` (id: the user's id; one identifier, system "
        "`urn:uuid:<your client id>` and value your `external_id`; nothing else about the "
        "person), a `Condition` per episode (SNOMED CT and ladderback's own kind code), a "
        "`CarePlan` for the latest recommendation with a `ServiceRequest` per prescribed "
        "exercise (dose in `patientInstruction`), a `Procedure` per session (newest first, "
        "`sessions` of them) with pain `Observation`s (LOINC 72514-3), and the "
        "`ServiceRequest`s of older recommendations those sessions followed. Every reference "
        "is a `urn:uuid:` `fullUrl` in the bundle. Ids are stable: the same stored data "
        "gives the same bundle but for `timestamp`. A recommendation to refer gives a "
        "`CarePlan` with no activities. Another client's user answers 404, as a missing one."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The user's record as a FHIR R4 collection Bundle.",
            "content": {FHIR_JSON: {"schema": _BUNDLE_SCHEMA}},
        },
        **problems(*READ_PROBLEMS),
    },
)
def export_user_fhir(
    user_id: UserId, tenant: TenantDep, db: ReadDb, now: NowDep, sessions: SessionCount = 100
) -> Response:
    # Loaded on first use: the FHIR models take about 0.2 s to import, a seventh of a
    # worker's start, and only exports need them.
    from app.services.fhir_export import export_user

    bundle = export_user(db, tenant.client_id, user_id, now, sessions)
    return Response(bundle.model_dump_json(), media_type=FHIR_JSON)
