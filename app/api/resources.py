"""The public contract of the stored resources: users, condition episodes, sessions and
recommendations kept by the service. Requests are as strict as the stateless ones."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from app.api.schemas import (
    _RESPONSE_EXAMPLE,
    RECOMMENDATION_REQUEST_EXAMPLE,
    UUID_PATTERN,
    WHOLE,
    ConditionIn,
    DoseOut,
    IsoDate,
    Pain,
    ProfileIn,
    RecommendationOut,
    SessionIn,
)
from app.domain.types import (
    AbilityLevel,
    Contraindication,
    DirectionalPreference,
    Equipment,
    Phase,
    RedFlag,
    Side,
    SymptomChange,
)

__all__ = [
    "AuditEventOut",
    "AuditPage",
    "ConditionCreate",
    "ConditionOut",
    "ConditionPage",
    "ConditionPatch",
    "ConditionStatus",
    "Difference",
    "ExerciseResultOut",
    "HistorySummaryOut",
    "ProfileOut",
    "ProfilePatch",
    "RecommendationInputs",
    "ReplayOut",
    "SessionCreate",
    "SessionOut",
    "SessionPage",
    "SessionPatch",
    "StoredRecommendationDetail",
    "StoredRecommendationOut",
    "StoredRecommendationPage",
    "UserCreate",
    "UserOut",
    "UserPage",
    "UserPatch",
]

ResourceId = Annotated[str, Field(min_length=36, max_length=36, pattern=UUID_PATTERN)]
ExternalId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        # Printable, no spaces at either end: an id that survives logs, URLs and CSV exports.
        pattern=r"^[!-~](?:[ -~]*[!-~])?$",
        description="The caller's own id for this person; unique within the caller's users.",
        examples=["member-18842"],
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# Examples for the published contract: one story told throughout. A user with sciatica logs
# sessions on 19 and 21 November (the stateless request example's history), asks for a
# recommendation on the 24th (the stateless response example) and logs that day's session.

_USER_ID = "2f0c6f1e-4f55-4a5e-9d43-94c0b1f9b2a7"
_CONDITION_ID = "c7a1e9d2-3b64-4f0e-8a15-6d2f9b0c4e81"
_RECOMMENDATION_ID = "5e9b2c47-0d13-4a8f-b6e2-9c7d1f3a8b05"
_SESSION_ID = "a41d7f3c-92e8-4b06-8c5a-e3f0b7d29c16"


def _dose_out(**given: Any) -> dict[str, Any]:
    """A dose as the service answers it: every field present."""
    dose: dict[str, Any] = {
        "sets": 1,
        "reps": None,
        "hold_seconds": None,
        "duration_seconds": None,
        "load_kg": None,
        "per_side": False,
        "rest_seconds": 0,
        "per_week": 3,
        "per_day": 1,
    }
    return {**dose, **given}


def _page(item: dict[str, Any], total: int, limit: int = 20) -> dict[str, Any]:
    return {"items": [item], "total": total, "limit": limit, "offset": 0}


_USER_EXAMPLE: dict[str, Any] = {
    "id": _USER_ID,
    "external_id": "member-18842",
    "profile": RECOMMENDATION_REQUEST_EXAMPLE["profile"],
    "created_at": "2026-11-19T08:00:00Z",
    "updated_at": "2026-11-19T08:00:00Z",
}

_CONDITION_EXAMPLE: dict[str, Any] = {
    "id": _CONDITION_ID,
    "user_id": _USER_ID,
    **RECOMMENDATION_REQUEST_EXAMPLE["condition"],
    "stenosis_like_symptoms": False,
    "status": "active",
    "resolved_on": None,
    "created_at": "2026-11-19T08:00:00Z",
    "updated_at": "2026-11-19T08:00:00Z",
}

_SLIDER_DOSE = {"sets": 1, "reps": 12, "per_week": 5, "rest_seconds": 30}
_BRIDGE_DOSE = {"sets": 1, "reps": 5, "hold_seconds": 10, "per_week": 2, "rest_seconds": 20}
_BRIDGE_DONE = {"sets": 1, "reps": 4, "hold_seconds": 10, "per_week": 2, "rest_seconds": 20}
_CAT_COW_DOSE = {"sets": 1, "reps": 8, "per_week": 3, "rest_seconds": 20}

_SESSION_CREATE_EXAMPLE: dict[str, Any] = {
    "date": "2026-11-24",
    "recommendation_id": _RECOMMENDATION_ID,
    "completed": True,
    "pain_before": 2,
    "pain_after": 2,
    "symptom_change": "centralising",
    "new_numbness_or_tingling": False,
    "exercises": [
        {
            "exercise_id": "sciatic-slider-supine",
            "slot": "sciatic-nerve-glide",
            "prescribed": _SLIDER_DOSE,
            "performed": _SLIDER_DOSE,
            "pain_during": 1,
            "pain_after": 0,
            "effort": 4,
            "symptom_change": "centralising",
        },
        {
            "exercise_id": "bridge-hold",
            "slot": "glute-bridge",
            "prescribed": _BRIDGE_DOSE,
            "performed": _BRIDGE_DONE,
            "pain_during": 2,
            "pain_after": 1,
            "effort": 6,
        },
        {
            "exercise_id": "seated-cat-cow",
            "slot": "cat-cow",
            "prescribed": _CAT_COW_DOSE,
            "performed": None,
            "completed": False,
        },
    ],
}

_SESSION_EXAMPLE: dict[str, Any] = {
    "id": _SESSION_ID,
    "user_id": _USER_ID,
    "condition_id": _CONDITION_ID,
    "recommendation_id": _RECOMMENDATION_ID,
    "date": "2026-11-24",
    "completed": True,
    "exercises": [
        {
            "exercise_id": "sciatic-slider-supine",
            "prescribed": _dose_out(**_SLIDER_DOSE),
            "performed": _dose_out(**_SLIDER_DOSE),
            "completed": True,
            "pain_during": 1,
            "pain_after": 0,
            "effort": 4,
            "symptom_change": "centralising",
            "slot": "sciatic-nerve-glide",
        },
        {
            "exercise_id": "bridge-hold",
            "prescribed": _dose_out(**_BRIDGE_DOSE),
            "performed": _dose_out(**_BRIDGE_DONE),
            "completed": True,
            "pain_during": 2,
            "pain_after": 1,
            "effort": 6,
            "symptom_change": "stable",
            "slot": "glute-bridge",
        },
        {
            "exercise_id": "seated-cat-cow",
            "prescribed": _dose_out(**_CAT_COW_DOSE),
            "performed": None,
            "completed": False,
            "pain_during": None,
            "pain_after": None,
            "effort": None,
            "symptom_change": "stable",
            "slot": "cat-cow",
        },
    ],
    "pain_before": 2,
    "pain_after": 2,
    "next_day_pain": 1,
    "symptom_change": "centralising",
    "new_numbness_or_tingling": False,
    "created_at": "2026-11-24T18:30:00Z",
    "updated_at": "2026-11-25T07:45:00Z",
}

_STORED_RECOMMENDATION_EXAMPLE: dict[str, Any] = {
    "id": _RECOMMENDATION_ID,
    "user_id": _USER_ID,
    "condition_id": _CONDITION_ID,
    "created_at": "2026-11-24T08:15:02Z",
    "ruleset_version": _RESPONSE_EXAMPLE["ruleset_version"],
    "recommendation": _RESPONSE_EXAMPLE,
}

_STORED_RECOMMENDATION_DETAIL_EXAMPLE: dict[str, Any] = {
    **_STORED_RECOMMENDATION_EXAMPLE,
    "inputs": {
        "profile": RECOMMENDATION_REQUEST_EXAMPLE["profile"],
        "condition": RECOMMENDATION_REQUEST_EXAMPLE["condition"],
        "history": RECOMMENDATION_REQUEST_EXAMPLE["history"],
        "summary": None,
        "today": RECOMMENDATION_REQUEST_EXAMPLE["today"],
    },
}

# Today's ruleset gives the progressed exercise one rep fewer than the stored answer did.
_STORED_EXERCISE = _RESPONSE_EXAMPLE["exercises"][0]
_REPLAY_EXAMPLE: dict[str, Any] = {
    "recommendation_id": _RECOMMENDATION_ID,
    "stored_ruleset_version": _RESPONSE_EXAMPLE["ruleset_version"],
    "current_ruleset_version": "1.1.0+3a9e51c07b2d",
    "same": False,
    "differences": [
        {"path": "exercises[0].dose.reps", "stored": 12, "replayed": 11},
        {"path": "exercises[0].minutes", "stored": 1.4, "replayed": 1.3},
    ],
    "replayed": {
        **_RESPONSE_EXAMPLE,
        "ruleset_version": "1.1.0+3a9e51c07b2d",
        "exercises": [
            {
                **_STORED_EXERCISE,
                "dose": {**_STORED_EXERCISE["dose"], "reps": 11},
                "minutes": 1.3,
            }
        ],
    },
}

_AUDIT_EVENT_EXAMPLE: dict[str, Any] = {
    "id": 812,
    "user_id": _USER_ID,
    "action": "create_user_recommendation",
    "request_id": "5b1f0d9c2a8e4c51",
    "at": "2026-11-24T08:15:02Z",
}


class _Patch(_Request):
    """A JSON merge patch: fields left out keep their value; ``null`` is refused where a
    field cannot be empty."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_nulls(self) -> Any:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable:
                raise ValueError(f"{name} cannot be null; leave it out to keep its value")
        return self


# ---------------------------------------------------------------------------------------------
# Users


class UserCreate(_Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "external_id": "member-18842",
                    "profile": {
                        "age": 42,
                        "ability": "intermediate",
                        "equipment": ["band"],
                        "contraindications": [],
                        "minutes_available": 30,
                    },
                }
            ]
        },
    )

    external_id: ExternalId
    profile: ProfileIn


class ProfilePatch(_Patch):
    age: Annotated[int, Field(strict=True, ge=13, le=110), WHOLE] | SkipJsonSchema[None] = None
    ability: AbilityLevel | SkipJsonSchema[None] = None
    equipment: (
        Annotated[list[Equipment], Field(max_length=len(Equipment))] | SkipJsonSchema[None]
    ) = None
    contraindications: (
        Annotated[list[Contraindication], Field(max_length=len(Contraindication))]
        | SkipJsonSchema[None]
    ) = None
    minutes_available: (
        Annotated[int, Field(strict=True, ge=10, le=120), WHOLE] | SkipJsonSchema[None]
    ) = None


class UserPatch(_Patch):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"profile": {"minutes_available": 20, "equipment": ["band", "dumbbell"]}},
                {"external_id": "member-18842-b"},
            ]
        },
    )

    external_id: ExternalId | SkipJsonSchema[None] = None
    profile: ProfilePatch | SkipJsonSchema[None] = None


class ProfileOut(BaseModel):
    age: int
    ability: AbilityLevel
    equipment: list[Equipment]
    contraindications: list[Contraindication]
    minutes_available: int


class UserOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_USER_EXAMPLE]})

    id: str
    external_id: str
    profile: ProfileOut
    created_at: datetime
    updated_at: datetime


class UserPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_page(_USER_EXAMPLE, total=1)]})

    items: list[UserOut]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------------------------------------
# Condition episodes


class ConditionStatus(StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"


class ConditionCreate(ConditionIn):
    """A new episode; the user may have only one active episode at a time."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [RECOMMENDATION_REQUEST_EXAMPLE["condition"]]},
    )


class ConditionPatch(_Patch):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"baseline_pain": 4},
                {"status": "resolved", "resolved_on": "2026-11-24"},
            ]
        },
    )

    nullable: ClassVar[frozenset[str]] = frozenset({"resolved_on"})

    onset_date: IsoDate | SkipJsonSchema[None] = None
    baseline_pain: Pain | SkipJsonSchema[None] = None
    red_flags: Annotated[list[RedFlag], Field(max_length=len(RedFlag))] | SkipJsonSchema[None] = (
        Field(
            default=None, description="The full list of red flags now present (replaces the old)."
        )
    )
    side: Side | SkipJsonSchema[None] = None
    directional_preference: DirectionalPreference | SkipJsonSchema[None] = None
    stenosis_like_symptoms: Annotated[bool, Field(strict=True)] | SkipJsonSchema[None] = None
    status: ConditionStatus | SkipJsonSchema[None] = Field(
        default=None, description="`resolved` closes the episode; `active` reopens it."
    )
    resolved_on: IsoDate | None = Field(
        default=None, description="When it resolved; today if `status` becomes resolved."
    )


class ConditionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CONDITION_EXAMPLE]})

    id: str
    user_id: str
    kind: str
    onset_date: date
    baseline_pain: int
    red_flags: list[RedFlag]
    side: Side
    directional_preference: DirectionalPreference
    stenosis_like_symptoms: bool
    status: ConditionStatus
    resolved_on: date | None
    created_at: datetime
    updated_at: datetime


class ConditionPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_page(_CONDITION_EXAMPLE, total=1)]})

    items: list[ConditionOut]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------------------------------------
# Sessions


class SessionCreate(SessionIn):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [_SESSION_CREATE_EXAMPLE]}
    )

    recommendation_id: ResourceId | None = Field(
        default=None, description="The stored recommendation this session followed, if any."
    )


class SessionPatch(_Patch):
    """What the person reports later, typically the next morning."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"next_day_pain": 1},
                {"next_day_pain": 4, "symptom_change": "peripheralising"},
            ]
        },
    )

    nullable: ClassVar[frozenset[str]] = frozenset({"next_day_pain", "pain_after"})

    next_day_pain: Pain | None = Field(default=None, description="Pain the next morning (0-10).")
    pain_after: Pain | None = None
    symptom_change: SymptomChange | SkipJsonSchema[None] = None
    new_numbness_or_tingling: Annotated[bool, Field(strict=True)] | SkipJsonSchema[None] = None


class ExerciseResultOut(BaseModel):
    exercise_id: str
    prescribed: DoseOut
    performed: DoseOut | None
    completed: bool
    pain_during: int | None
    pain_after: int | None
    effort: int | None
    symptom_change: SymptomChange
    slot: str | None


class SessionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SESSION_EXAMPLE]})

    id: str
    user_id: str
    condition_id: str
    recommendation_id: str | None
    date: date
    completed: bool
    exercises: list[ExerciseResultOut]
    pain_before: int | None
    pain_after: int | None
    next_day_pain: int | None
    symptom_change: SymptomChange
    new_numbness_or_tingling: bool
    created_at: datetime
    updated_at: datetime


class SessionPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_page(_SESSION_EXAMPLE, total=3, limit=1)]}
    )

    items: list[SessionOut]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------------------------------------
# Stored recommendations


class HistorySummaryOut(BaseModel):
    """The sessions before the decision window, folded into what the programme has earned."""

    through: date
    first_date: date
    sessions: int
    completed_sessions: int
    phase: Phase | None
    pain: int | None
    held: bool
    exercises_done: list[str] = Field(description="Exercises done before the window.")


class RecommendationInputs(BaseModel):
    """Exactly what the engine was given. ``profile``, ``condition``, ``history`` and
    ``today`` have the shape of a stateless request body."""

    profile: ProfileIn
    condition: ConditionIn
    history: list[SessionIn]
    summary: HistorySummaryOut | None = Field(
        description="Older sessions, folded; null when the whole history fits the window."
    )
    today: date


class StoredRecommendationOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_STORED_RECOMMENDATION_EXAMPLE]})

    id: str
    user_id: str
    condition_id: str
    created_at: datetime
    ruleset_version: str
    recommendation: RecommendationOut


class StoredRecommendationDetail(StoredRecommendationOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_STORED_RECOMMENDATION_DETAIL_EXAMPLE]}
    )

    inputs: RecommendationInputs


class StoredRecommendationPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_page(_STORED_RECOMMENDATION_EXAMPLE, total=1)]}
    )

    items: list[StoredRecommendationOut]
    total: int
    limit: int
    offset: int


class Difference(BaseModel):
    path: str = Field(description="Where the answers differ, e.g. exercises[2].dose.reps")
    stored: Any
    replayed: Any


class ReplayOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_REPLAY_EXAMPLE]})

    recommendation_id: str
    stored_ruleset_version: str
    current_ruleset_version: str
    same: bool = Field(description="True when today's ruleset gives the same answer.")
    differences: list[Difference]
    replayed: RecommendationOut


# ---------------------------------------------------------------------------------------------
# Audit


class AuditEventOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_AUDIT_EVENT_EXAMPLE]})

    id: int
    user_id: str | None = Field(description="Whose data; null for a listing of users.")
    action: str = Field(description="The operation, by its OpenAPI operationId.")
    request_id: str = Field(description="The request's X-Request-ID.")
    at: datetime


class AuditPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_page(_AUDIT_EVENT_EXAMPLE, total=812, limit=1)]}
    )

    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int
