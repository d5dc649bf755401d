"""The public contract of the stored resources: users, condition episodes, sessions and
recommendations kept by the service. Requests are as strict as the stateless ones."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.schemas import (
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

ResourceId = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[0-9a-f-]+$")]
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
    age: Annotated[int, Field(strict=True, ge=13, le=110)] | None = None
    ability: AbilityLevel | None = None
    equipment: Annotated[list[Equipment], Field(max_length=len(Equipment))] | None = None
    contraindications: (
        Annotated[list[Contraindication], Field(max_length=len(Contraindication))] | None
    ) = None
    minutes_available: Annotated[int, Field(strict=True, ge=10, le=120)] | None = None


class UserPatch(_Patch):
    external_id: ExternalId | None = None
    profile: ProfilePatch | None = None


class ProfileOut(BaseModel):
    age: int
    ability: AbilityLevel
    equipment: list[Equipment]
    contraindications: list[Contraindication]
    minutes_available: int


class UserOut(BaseModel):
    id: str
    external_id: str
    profile: ProfileOut
    created_at: datetime
    updated_at: datetime


class UserPage(BaseModel):
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


class ConditionPatch(_Patch):
    nullable: ClassVar[frozenset[str]] = frozenset({"resolved_on"})

    onset_date: IsoDate | None = None
    baseline_pain: Pain | None = None
    red_flags: Annotated[list[RedFlag], Field(max_length=len(RedFlag))] | None = Field(
        default=None, description="The full list of red flags now present (replaces the old)."
    )
    side: Side | None = None
    directional_preference: DirectionalPreference | None = None
    stenosis_like_symptoms: Annotated[bool, Field(strict=True)] | None = None
    status: ConditionStatus | None = Field(
        default=None, description="`resolved` closes the episode; `active` reopens it."
    )
    resolved_on: IsoDate | None = Field(
        default=None, description="When it resolved; today if `status` becomes resolved."
    )


class ConditionOut(BaseModel):
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
    items: list[ConditionOut]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------------------------------------
# Sessions


class SessionCreate(SessionIn):
    recommendation_id: ResourceId | None = Field(
        default=None, description="The stored recommendation this session followed, if any."
    )


class SessionPatch(_Patch):
    """What the person reports later, typically the next morning."""

    nullable: ClassVar[frozenset[str]] = frozenset({"next_day_pain", "pain_after"})

    next_day_pain: Pain | None = Field(default=None, description="Pain the next morning (0-10).")
    pain_after: Pain | None = None
    symptom_change: SymptomChange | None = None
    new_numbness_or_tingling: Annotated[bool, Field(strict=True)] | None = None


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
    id: str
    user_id: str
    condition_id: str
    created_at: datetime
    ruleset_version: str
    recommendation: RecommendationOut


class StoredRecommendationDetail(StoredRecommendationOut):
    inputs: RecommendationInputs


class StoredRecommendationPage(BaseModel):
    items: list[StoredRecommendationOut]
    total: int
    limit: int
    offset: int


class Difference(BaseModel):
    path: str = Field(description="Where the answers differ, e.g. exercises[2].dose.reps")
    stored: Any
    replayed: Any


class ReplayOut(BaseModel):
    recommendation_id: str
    stored_ruleset_version: str
    current_ruleset_version: str
    same: bool = Field(description="True when today's ruleset gives the same answer.")
    differences: list[Difference]
    replayed: RecommendationOut
