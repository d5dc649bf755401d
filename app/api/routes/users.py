"""Stored resources under ``/v1/users``: people, their condition episodes, logged sessions
and the recommendations issued to them. Every route is scoped to the calling tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse

from app.api.deps import (
    AuditDep,
    CatalogDep,
    IdempotencyKey,
    NowDep,
    ReadDb,
    SettingsDep,
    TenantDep,
    WriteDb,
    record_access,
)
from app.api.resources import (
    ConditionCreate,
    ConditionOut,
    ConditionPage,
    ConditionPatch,
    ReplayOut,
    SessionCreate,
    SessionOut,
    SessionPage,
    SessionPatch,
    StoredRecommendationDetail,
    StoredRecommendationOut,
    StoredRecommendationPage,
    UserCreate,
    UserOut,
    UserPage,
    UserPatch,
)
from app.api.responses import (
    CREATE_USER_PROBLEMS,
    LIST_PROBLEMS,
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    created,
    problems,
)
from app.api.schemas import UUID_PATTERN
from app.services import conditions, sessions, stored_recommendations, users
from app.services.idempotency import Outcome, fingerprint, once

# Every route here reads or changes a user's data: each success leaves an audit event.
router = APIRouter(prefix="/v1", dependencies=[Depends(record_access, scope="function")])

# Ids are the service's own UUIDs; anything else is refused before it reaches a query.
ID_PATTERN = UUID_PATTERN
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="The id the service gave the user.")]
ChildId = Annotated[str, Path(pattern=ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]

_IDEMPOTENT = (
    " Send an `Idempotency-Key` header to make retries safe: a retry returns the first "
    "response (with `Idempotent-Replayed: true`) and stores nothing new."
)


def _created_once(
    db: WriteDb,
    tenant: TenantDep,
    key: str | None,
    now: NowDep,
    settings: SettingsDep,
    request: tuple[str, str, Any],
    collection: str,
    create: Callable[[], SessionOut | StoredRecommendationOut],
) -> JSONResponse:
    """A 201 for what ``create`` made, or the first response again for a retried key.

    ``request`` is (operation, user id, body): what makes a retry "the same request".
    """
    user_id = request[1]

    def act() -> Outcome:
        made = create()
        location = f"/v1/users/{user_id}/{collection}/{made.id}"
        return Outcome(201, made.model_dump(mode="json"), {"Location": location}, user_id)

    outcome = once(
        db,
        client_id=tenant.client_id,
        key=key,
        request_fingerprint=fingerprint(*request),
        now=now,
        keep_hours=settings.idempotency_hours,
        act=act,
    )
    headers = dict(outcome.headers)
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


# ---------------------------------------------------------------------------------------------
# Users


@router.post(
    "/users",
    tags=["users"],
    operation_id="create_user",
    description=(
        "Registers a person under the caller's own `external_id` (unique among the caller's "
        "users; 409 if taken), with the exercise profile decisions use. Returns the service's "
        "`id` for the user."
    ),
    summary="Register a person under the caller's own id",
    status_code=201,
    response_model=UserOut,
    responses={**created("user"), **problems(*CREATE_USER_PROBLEMS)},
)
def create_user(
    body: UserCreate,
    tenant: TenantDep,
    db: WriteDb,
    now: NowDep,
    response: Response,
    audit: AuditDep,
) -> UserOut:
    user = users.create_user(db, tenant.client_id, body, now)
    audit.user_id = user.id
    response.headers["Location"] = f"/v1/users/{user.id}"
    return user


@router.get(
    "/users",
    tags=["users"],
    operation_id="list_users",
    description=(
        "The caller's users, oldest first, a page at a time. Other clients' users never appear."
    ),
    summary="The caller's users, oldest first",
    response_model=UserPage,
    responses=problems(*LIST_PROBLEMS),
)
def list_users(tenant: TenantDep, db: ReadDb, limit: Limit = 20, offset: Offset = 0) -> UserPage:
    return users.list_users(db, tenant.client_id, limit, offset)


@router.get(
    "/users/{user_id}",
    tags=["users"],
    operation_id="get_user",
    description=(
        "One of the caller's users with their current profile. Another client's user id "
        "answers 404, exactly as a missing one."
    ),
    summary="One user and their profile",
    response_model=UserOut,
    responses=problems(*READ_PROBLEMS),
)
def get_user(user_id: UserId, tenant: TenantDep, db: ReadDb) -> UserOut:
    return users.get_user(db, tenant.client_id, user_id)


@router.patch(
    "/users/{user_id}",
    tags=["users"],
    operation_id="update_user",
    description=(
        "A JSON merge patch: fields left out keep their value, `null` is refused. The next "
        "recommendation uses the new profile; stored recommendations keep the profile they "
        "were decided with."
    ),
    summary="Change a user's external id or profile (fields left out keep their value)",
    response_model=UserOut,
    responses=problems(*WRITE_PROBLEMS),
)
def update_user(
    user_id: UserId, body: UserPatch, tenant: TenantDep, db: WriteDb, now: NowDep
) -> UserOut:
    return users.update_user(db, tenant.client_id, user_id, body, now)


@router.delete(
    "/users/{user_id}",
    tags=["users"],
    operation_id="delete_user",
    summary="Erase a user and everything stored about them",
    description="Right to erasure: the user, their condition episodes, sessions, "
    "recommendations and history summaries are deleted in one transaction.",
    status_code=204,
    response_class=Response,
    responses=problems(*READ_PROBLEMS),
)
def delete_user(user_id: UserId, tenant: TenantDep, db: WriteDb) -> Response:
    users.delete_user(db, tenant.client_id, user_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------------------------
# Condition episodes


@router.post(
    "/users/{user_id}/conditions",
    tags=["conditions"],
    operation_id="create_condition",
    description=(
        "Opens an episode (strain, sciatica, posture or overuse) with its onset date, "
        "baseline pain, red flags, side and directional preference. A user has one active "
        "episode at a time (409 otherwise); sessions and recommendations attach to it."
    ),
    summary="Open a condition episode (one active episode at a time)",
    status_code=201,
    response_model=ConditionOut,
    responses={**created("condition episode"), **problems(*WRITE_PROBLEMS)},
)
def create_condition(
    user_id: UserId,
    body: ConditionCreate,
    tenant: TenantDep,
    db: WriteDb,
    now: NowDep,
    response: Response,
) -> ConditionOut:
    episode = conditions.create_condition(db, tenant.client_id, user_id, body, now)
    response.headers["Location"] = f"/v1/users/{user_id}/conditions/{episode.id}"
    return episode


@router.get(
    "/users/{user_id}/conditions",
    tags=["conditions"],
    operation_id="list_user_conditions",
    description=(
        "Every condition episode of the user, newest first: the active one and those resolved."
    ),
    summary="The user's condition episodes, newest first",
    response_model=ConditionPage,
    responses=problems(*READ_PROBLEMS),
)
def list_user_conditions(
    user_id: UserId, tenant: TenantDep, db: ReadDb, limit: Limit = 20, offset: Offset = 0
) -> ConditionPage:
    return conditions.list_conditions(db, tenant.client_id, user_id, limit, offset)


@router.get(
    "/users/{user_id}/conditions/{condition_id}",
    tags=["conditions"],
    operation_id="get_user_condition",
    description=("One condition episode of the user."),
    summary="One condition episode",
    response_model=ConditionOut,
    responses=problems(*READ_PROBLEMS),
)
def get_user_condition(
    user_id: UserId, condition_id: ChildId, tenant: TenantDep, db: ReadDb
) -> ConditionOut:
    return conditions.get_condition(db, tenant.client_id, user_id, condition_id)


@router.patch(
    "/users/{user_id}/conditions/{condition_id}",
    tags=["conditions"],
    operation_id="update_user_condition",
    description=(
        "A JSON merge patch of the episode: a new red flag (the next recommendation refers), "
        "a tested directional preference, a corrected baseline, or `status: resolved`. Only "
        "`resolved_on` may be set to null."
    ),
    summary="Update an episode: a new red flag, a tested preference, resolution",
    response_model=ConditionOut,
    responses=problems(*WRITE_PROBLEMS),
)
def update_user_condition(
    user_id: UserId,
    condition_id: ChildId,
    body: ConditionPatch,
    tenant: TenantDep,
    db: WriteDb,
    now: NowDep,
) -> ConditionOut:
    return conditions.update_condition(db, tenant.client_id, user_id, condition_id, body, now)


# ---------------------------------------------------------------------------------------------
# Sessions


@router.post(
    "/users/{user_id}/sessions",
    tags=["sessions"],
    operation_id="log_session",
    summary="Log a performed (or missed) session",
    description="Per exercise, what was prescribed and what was performed, pain during and "
    "after, effort and symptom change; per session, pain before and after. Add next-morning "
    "pain later with PATCH. The session joins the user's active condition episode." + _IDEMPOTENT,
    status_code=201,
    response_model=SessionOut,
    responses={**created("session", idempotent=True), **problems(*WRITE_PROBLEMS)},
)
def log_session(
    user_id: UserId,
    body: SessionCreate,
    tenant: TenantDep,
    db: WriteDb,
    catalog: CatalogDep,
    now: NowDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> Any:
    return _created_once(
        db,
        tenant,
        idempotency_key,
        now,
        settings,
        ("log_session", user_id, body.model_dump(mode="json")),
        "sessions",
        lambda: sessions.log_session(
            db, tenant.client_id, user_id, body, catalog, now, settings.max_sessions_per_day
        ),
    )


@router.get(
    "/users/{user_id}/sessions",
    tags=["sessions"],
    operation_id="list_sessions",
    description=("The user's logged sessions, newest first; `condition_id` keeps one episode's."),
    summary="The user's sessions, newest first",
    response_model=SessionPage,
    responses=problems(*READ_PROBLEMS),
)
def list_sessions(
    user_id: UserId,
    tenant: TenantDep,
    db: ReadDb,
    limit: Limit = 20,
    offset: Offset = 0,
    condition_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="Only this episode's sessions.")
    ] = None,
) -> SessionPage:
    return sessions.list_sessions(db, tenant.client_id, user_id, limit, offset, condition_id)


@router.get(
    "/users/{user_id}/sessions/{session_id}",
    tags=["sessions"],
    operation_id="get_session",
    description=("One logged session, per exercise prescribed against performed."),
    summary="One logged session",
    response_model=SessionOut,
    responses=problems(*READ_PROBLEMS),
)
def get_session(user_id: UserId, session_id: ChildId, tenant: TenantDep, db: ReadDb) -> SessionOut:
    return sessions.get_session(db, tenant.client_id, user_id, session_id)


@router.patch(
    "/users/{user_id}/sessions/{session_id}",
    tags=["sessions"],
    operation_id="update_session",
    description=(
        "Adds what was reported later: next-morning pain (the 24-hour signal), pain after, "
        "symptom change or new numbness. A JSON merge patch; `next_day_pain` and `pain_after` "
        "may be cleared with null."
    ),
    summary="Add what was reported later, such as next-morning pain",
    response_model=SessionOut,
    responses=problems(*WRITE_PROBLEMS),
)
def update_session(
    user_id: UserId,
    session_id: ChildId,
    body: SessionPatch,
    tenant: TenantDep,
    db: WriteDb,
    now: NowDep,
) -> SessionOut:
    return sessions.update_session(db, tenant.client_id, user_id, session_id, body, now)


# ---------------------------------------------------------------------------------------------
# Recommendations


@router.post(
    "/users/{user_id}/recommendations",
    tags=["recommendations"],
    operation_id="create_user_recommendation",
    summary="Decide the user's next session from what is stored, and keep it",
    description="Reads the stored profile, the active condition episode and its sessions, "
    "decides with the same engine as `POST /v1/recommendations`, and stores the answer with "
    "its exact inputs, `ruleset_version` and trace." + _IDEMPOTENT,
    status_code=201,
    response_model=StoredRecommendationOut,
    responses={**created("recommendation", idempotent=True), **problems(*WRITE_PROBLEMS)},
)
def create_user_recommendation(
    user_id: UserId,
    tenant: TenantDep,
    db: WriteDb,
    catalog: CatalogDep,
    now: NowDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> Any:
    return _created_once(
        db,
        tenant,
        idempotency_key,
        now,
        settings,
        ("create_user_recommendation", user_id, None),
        "recommendations",
        lambda: stored_recommendations.recommend_for_user(
            db, tenant.client_id, user_id, catalog, now
        ),
    )


@router.get(
    "/users/{user_id}/recommendations",
    tags=["recommendations"],
    operation_id="list_user_recommendations",
    description=(
        "The recommendations issued to the user, newest first, each with the full answer as "
        "it was given."
    ),
    summary="Recommendations issued to the user, newest first",
    response_model=StoredRecommendationPage,
    responses=problems(*READ_PROBLEMS),
)
def list_user_recommendations(
    user_id: UserId, tenant: TenantDep, db: ReadDb, limit: Limit = 20, offset: Offset = 0
) -> StoredRecommendationPage:
    return stored_recommendations.list_recommendations(db, tenant.client_id, user_id, limit, offset)


@router.get(
    "/users/{user_id}/recommendations/{recommendation_id}",
    tags=["recommendations"],
    operation_id="get_user_recommendation",
    description=(
        "One issued recommendation with the exact inputs it was decided from: profile, "
        "episode, the sessions of the decision window and the summary of older ones."
    ),
    summary="One issued recommendation, with the exact inputs it was decided from",
    response_model=StoredRecommendationDetail,
    responses=problems(*READ_PROBLEMS),
)
def get_user_recommendation(
    user_id: UserId, recommendation_id: ChildId, tenant: TenantDep, db: ReadDb
) -> StoredRecommendationDetail:
    return stored_recommendations.get_recommendation(
        db, tenant.client_id, user_id, recommendation_id
    )


@router.post(
    "/users/{user_id}/recommendations/{recommendation_id}/replay",
    tags=["recommendations"],
    operation_id="replay_user_recommendation",
    summary="Re-run a recommendation's stored inputs with today's ruleset",
    description="Reports whether the answer is the same and, if not, each difference by "
    "path. Nothing is stored.",
    response_model=ReplayOut,
    responses=problems(*READ_PROBLEMS, 409),
)
def replay_user_recommendation(
    user_id: UserId,
    recommendation_id: ChildId,
    tenant: TenantDep,
    db: ReadDb,
    catalog: CatalogDep,
) -> ReplayOut:
    return stored_recommendations.replay_recommendation(
        db, tenant.client_id, user_id, recommendation_id, catalog
    )
