"""``GET /v1/users/{user_id}/fhir``: a user's stored record as FHIR R4 Bundles, a page each.

Served as ``application/fhir+json`` text checked by ``fhir.resources`` (not a FastAPI
``response_model``, which would publish an opaque object and emit nulls), built in one of
the worker's export processes (``app.services.fhir_pages``) while the route awaits it, and
at most one page at a time per client and worker (``app.api.in_flight``). Its OpenAPI entry
describes the Bundle's outline and shows an example built by the mapping itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from app.api.deps import NowDep, SettingsDep, TenantDep, record_access
from app.api.in_flight import fhir_export_slot
from app.api.resources import ConditionOut, SessionOut, StoredRecommendationOut, UserOut
from app.api.responses import READ_PROBLEMS, problems
from app.api.routes.users import UserId
from app.interop.narrative import FHIR_JSON
from app.services.fhir_cursor import cursor_at
from app.services.fhir_pages import ExportProcesses, PageRequest

__all__ = ["add_bundle_example", "router"]

# Exporting a user's record reads their data: each success leaves an audit event.
router = APIRouter(
    prefix="/v1", tags=["fhir"], dependencies=[Depends(record_access, scope="function")]
)

# Sessions per page. A session brings about ten resources (its Procedure, its pain
# Observations and the ServiceRequests of the recommendation it followed), each checked by
# its FHIR model, so a page of 20 is about 200 resources: some 50 ms of CPU and 0.2 MB.
# (Pages of 50 took 80 ms, and another client's requests on the worker waited more.)
MAX_PAGE_SESSIONS = 20

# Accepted up to the single export's old limit, so clients written for it keep working:
# a larger count is served a page at a time, as FHIR's `_count` lets a server do.
ACCEPTED_SESSIONS = 500

SessionCount = Annotated[
    int,
    Query(
        ge=1,
        le=ACCEPTED_SESSIONS,
        description=f"How many of the user's sessions (newest first, across episodes) a page "
        f"holds, each as a Procedure with its pain Observations: at most {MAX_PAGE_SESSIONS} "
        f"a page, whatever is asked (up to {ACCEPTED_SESSIONS}). Further sessions are on the "
        "pages the `next` link leads to.",
    ),
]

PageCursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern="^[A-Za-z0-9_-]+$",
        description="Where the page starts: copied from the previous page's `next` link, "
        "never built by hand. Absent: the first page.",
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

    user = UserOut.model_validate(_first_example(UserOut))
    session = SessionOut.model_validate(_first_example(SessionOut))
    after = cursor_at(session.date, session.created_at, session.id)
    return user_bundle(
        user=user,
        client_id="9b3e7c1a-52d4-4f8e-a6b0-3c9d2e7f1a45",
        episodes=[ConditionOut.model_validate(_first_example(ConditionOut))],
        sessions=[session],
        latest=StoredRecommendationOut.model_validate(_first_example(StoredRecommendationOut)),
        cited=[],
        now=datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
        links=[
            ("self", f"/v1/users/{user.id}/fhir"),
            ("next", f"/v1/users/{user.id}/fhir?cursor={after}"),
        ],
    )


# The outline a client can rely on; each resource is FHIR R4 (validate it with a FHIR tool).
_BUNDLE_SCHEMA: dict[str, Any] = {
    "title": "FhirBundle",
    "type": "object",
    "description": "A FHIR R4 Bundle of type collection, one page of the record: Patient, "
    "Conditions, CarePlan (first page), ServiceRequests, Procedures and Observations, in "
    "that order; `link` has `self` and, unless this is the last page, `next`.",
    "required": ["resourceType", "id", "type", "timestamp", "link", "entry"],
    "properties": {
        "resourceType": {"type": "string", "const": "Bundle"},
        "id": {"type": "string"},
        "type": {"type": "string", "const": "collection"},
        "timestamp": {"type": "string", "format": "date-time"},
        "link": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["relation", "url"],
                "properties": {
                    "relation": {"type": "string", "enum": ["self", "next"]},
                    "url": {"type": "string"},
                },
            },
        },
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


def _full_path(request: Request) -> str:
    """The path the client asked for, with the prefix a proxy may have taken off
    (``root_path``), so that a page's links work from where the client stands."""
    path, prefix = request.url.path, request.scope.get("root_path", "")
    return path if path.startswith(prefix) else prefix + path


@router.get(
    "/users/{user_id}/fhir",
    operation_id="export_user_fhir",
    summary="Export a user's record as FHIR R4 Bundles, a page each",
    description=(
        "A FHIR R4 `Bundle` of type `collection`, as `application/fhir+json`, for a clinic's "
        "EHR: one page of the user's record. The first page holds a pseudonymous `Patient` "
        "(id: the user's id; one identifier, system `urn:uuid:<your client id>` and value "
        "your `external_id`; nothing else about the person), a `Condition` per episode "
        "(SNOMED CT and ladderback's own kind code), a `CarePlan` for the latest "
        "recommendation with a `ServiceRequest` per prescribed exercise (dose in "
        "`patientInstruction`), a `Procedure` per session (newest first, `sessions` of "
        "them, at most 20 a page) with pain `Observation`s (LOINC 72514-3), and the "
        "`ServiceRequest`s of older recommendations those sessions followed. Each further "
        "page holds the next sessions the same way, with the `Patient` and the `Condition`s and "
        "`ServiceRequest`s they cite. Every page is self-contained: every reference is a "
        "`urn:uuid:` `fullUrl` in that page. `Bundle.link` has `self` and, unless it is the "
        "last page, `next`: a URL relative to this host, with a `cursor` (keep following it; "
        "a session logged meanwhile never shifts the pages that follow). Ids are stable: "
        "the same stored data gives the same page but for `timestamp`. A recommendation to "
        "refer gives a `CarePlan` with no activities. Another client's user answers 404, as "
        "a missing one. A client may have one page in progress at a time on each worker "
        "(`LADDERBACK_FHIR_EXPORTS_PER_CLIENT`); another is answered 429 at once, so follow "
        "`next` one page after another."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "One page of the user's record as a FHIR R4 collection Bundle.",
            "content": {FHIR_JSON: {"schema": _BUNDLE_SCHEMA}},
        },
        **problems(
            *READ_PROBLEMS,
            descriptions={
                422: "A query parameter is out of range, or `cursor` is not a well-formed "
                "page cursor; `errors` names the parameter.",
                429: "The client's request budget for this minute is spent, or it already "
                "has as many export pages in progress as it may (problem type "
                "`/problems/too-many-in-flight`); retry after `Retry-After`.",
            },
        ),
    },
    dependencies=[Depends(fhir_export_slot, scope="function")],
)
async def export_user_fhir(
    request: Request,
    user_id: UserId,
    tenant: TenantDep,
    settings: SettingsDep,
    now: NowDep,
    sessions: SessionCount = MAX_PAGE_SESSIONS,
    cursor: PageCursor = None,
) -> Response:
    processes: ExportProcesses | None = getattr(request.app.state, "fhir_export_processes", None)
    if processes is None:
        processes = request.app.state.fhir_export_processes = ExportProcesses(
            settings.database_url, settings.db_lock_timeout_seconds, settings.fhir_export_processes
        )
    page = PageRequest(
        client_id=tenant.client_id,
        user_id=user_id,
        now=now,
        size=min(sessions, MAX_PAGE_SESSIONS),
        cursor=cursor,
        path=_full_path(request),
        # The links carry what the page was asked for, nothing else the caller sent.
        query=(("sessions", str(sessions)),) if "sessions" in request.query_params else (),
    )
    return Response(await processes.page(page), media_type=FHIR_JSON)
