"""CDS Hooks 2.0: the service's description, the ``patient-view`` call, its cards, and the
feedback on them; and reading a patient from prefetched FHIR resources.

The wire models keep the specification's camelCase names. CDS Hooks forbids ``null`` in
its JSON, so every optional field is left out when empty (routes serialise with
``exclude_none``), and a card's text is never empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    StrictInt,
    ValidationError,
)

from app.api.schemas import (
    AGES,
    UUID_PATTERN,
    ExerciseDecisionOut,
    Instant,
    ReasonOut,
    RecommendationOut,
    plausible_date,
)
from app.domain.types import (
    AbilityLevel,
    Change,
    Condition,
    ConditionKind,
    Profile,
    RecommendationStatus,
)
from app.errors import InvalidInput, field_path
from app.interop.narrative import RED_FLAG_WORDS, dose_words
from app.interop.terminology import KIND_DISPLAY, LOINC, PAIN_SEVERITY, kind_of

__all__ = [
    "HOOK",
    "PREFETCH",
    "SERVICE_ID",
    "Card",
    "CardsResponse",
    "Discovery",
    "FeedbackReceipt",
    "FeedbackRequest",
    "HookRequest",
    "PrefetchMissing",
    "PrefetchedPatient",
    "cards_for",
    "discovery",
    "read_prefetch",
]

SERVICE_ID = "ladderback-next-session"
HOOK = "patient-view"
# What the EHR should send along, so a patient the service has never seen can still be
# answered: their record, active conditions and latest pain scores.
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "painScores": (
        "Observation?patient={{context.patientId}}&code="
        f"{LOINC}|{PAIN_SEVERITY.code}&_sort=-date&_count=10"
    ),
}
SUMMARY_LIMIT = 139  # "< 140 characters"

# Reasons that mean the last session flared or spread symptoms: a clinician should know.
_FLARE_REASONS = frozenset(
    {"session_flare_hold", "pain_flare", "next_day_pain_up", "peripheralisation"}
)
_FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"


# ---------------------------------------------------------------------------------------------
# Discovery


class ServiceDescription(BaseModel):
    hook: str
    title: str
    description: str
    id: str
    prefetch: dict[str, str]
    usageRequirements: str


class Discovery(BaseModel):
    services: list[ServiceDescription]


def discovery() -> Discovery:
    return Discovery(
        services=[
            ServiceDescription(
                hook=HOOK,
                title="Next back-exercise session",
                description=(
                    "The patient's next exercise session for back strain, sciatica, poor "
                    "posture or overuse, from ladderback's published progression rules: each "
                    "exercise with its dose and why it changed. Red flags give a critical "
                    "referral card instead of exercise; a flare or a need for review gives a "
                    "warning card."
                ),
                id=SERVICE_ID,
                prefetch=dict(PREFETCH),
                usageRequirements=(
                    "Register the EHR's token issuer with ladderback. A patient registered by "
                    "the clinic (external_id = the EHR patient id) is answered from stored "
                    "history; any other patient needs the prefetched record, an active back "
                    "condition coded in SNOMED CT and a pain score (LOINC 72514-3)."
                ),
            )
        ]
    )


# The published example is the document itself.
Discovery.model_config["json_schema_extra"] = {"examples": [discovery().model_dump(mode="json")]}
Discovery.model_rebuild(force=True)


# ---------------------------------------------------------------------------------------------
# The call


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The wire names are the specification's (camelCase).
class PatientViewContext(BaseModel):
    # Hooks grow context fields over versions: unknown ones are ignored, not refused.
    model_config = ConfigDict(extra="ignore")

    userId: Annotated[
        str,
        Field(
            pattern=r"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-.]{1,64}$",
            description="Who opened the chart, as `ResourceType/id`.",
        ),
    ]
    patientId: Annotated[str, Field(pattern=_FHIR_ID, description="The EHR's patient id.")]
    encounterId: Annotated[str, Field(pattern=_FHIR_ID)] | None = None


class HookRequest(_Wire):
    """A ``patient-view`` call. ``fhirAuthorization`` is accepted and never used or kept:
    the service reads only what is prefetched."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "hook": "patient-view",
                    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                    "context": {"userId": "Practitioner/example", "patientId": "member-1"},
                }
            ]
        },
    )

    hook: Literal["patient-view"]
    hookInstance: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
    fhirServer: Annotated[str, Field(max_length=2000, pattern=r"^https?://")] | None = None
    fhirAuthorization: dict[str, Any] | None = None
    context: PatientViewContext
    prefetch: dict[str, dict[str, Any] | None] | None = None
    extension: dict[str, Any] | None = None


# Text the service stores: PostgreSQL cannot hold a NUL character.
StoredText = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]


class Coding(_Wire):
    system: StoredText
    code: StoredText
    display: StoredText | None = None


class Source(_Wire):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Card(_Wire):
    uuid: str
    summary: Annotated[str, Field(min_length=1, max_length=SUMMARY_LIMIT)]
    detail: Annotated[str, Field(min_length=1)] | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source


class CardsResponse(_Wire):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "cards": [
                        {
                            "uuid": "0b5c3f0e-8b1e-5c49-a2f4-2f1c7c9f4e11",
                            "summary": "Next session: 7 exercises, about 24 min (2 progressed).",
                            "detail": "| Exercise | Dose | Change | Why |\n|---|---|---|---|\n",
                            "indicator": "info",
                            "source": {"label": "ladderback 1.0.0"},
                        }
                    ]
                },
                {"cards": []},
            ]
        },
    )

    cards: list[Card]


# ---------------------------------------------------------------------------------------------
# Feedback


class OverrideReason(_Wire):
    reason: Coding | None = None
    userComment: StoredText | None = None


class AcceptedSuggestion(_Wire):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]


class FeedbackItem(_Wire):
    card: Annotated[str, Field(pattern=UUID_PATTERN, description="The card's `uuid`, as sent.")]
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: Instant


class FeedbackRequest(_Wire):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "feedback": [
                        {
                            "card": "0b5c3f0e-8b1e-5c49-a2f4-2f1c7c9f4e11",
                            "outcome": "overridden",
                            "overrideReason": {"userComment": "Seen today; plan agreed in clinic."},
                            "outcomeTimestamp": "2026-11-24T10:05:31Z",
                        }
                    ]
                }
            ]
        },
    )

    feedback: Annotated[list[FeedbackItem], Field(min_length=1, max_length=100)]


class FeedbackReceipt(_Wire):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"received": 2, "stored": 1}]}
    )

    received: int = Field(description="Feedback items in the request.")
    stored: int = Field(description="Items stored now; a repeat of a stored one is not.")


# ---------------------------------------------------------------------------------------------
# Cards


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _fit(text: str) -> str:
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1].rstrip() + "…"


def _why(reasons: Sequence[ReasonOut]) -> str:
    return reasons[0].message if reasons else ""


def _session_table(exercises: Sequence[ExerciseDecisionOut]) -> str:
    rows = ["| Exercise | Dose | Change | Why |", "|---|---|---|---|"]
    for ex in exercises:
        dose = dose_words(ex.dose) if ex.dose is not None else "—"
        rows.append(
            f"| {_cell(ex.name)} | {_cell(dose)} | {ex.change.value} | {_cell(_why(ex.reasons))} |"
        )
    return "\n".join(rows)


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {_cell(item)}" for item in items)


def _footer(rec: RecommendationOut) -> str:
    return (
        f"\n\nDecided by ladderback ruleset `{rec.ruleset_version}` on {rec.today.isoformat()}; "
        "every change cites a named rule and published thresholds."
    )


def _counts(exercises: Sequence[ExerciseDecisionOut]) -> str:
    counted = [
        (change, sum(1 for ex in exercises if ex.change is change))
        for change in (Change.PROGRESSED, Change.REGRESSED, Change.SUBSTITUTED)
    ]
    said = [f"{n} {change.value}" for change, n in counted if n]
    return f" ({', '.join(said)})" if said else ""


def cards_for(
    rec: RecommendationOut,
    card_uuid: Callable[[str], str],
    *,
    assumptions: Sequence[str] = (),
    red_flags_screened: bool = True,
) -> list[Card]:
    """The cards for one decision: critical on red flags (and nothing else), a warning on a
    flare or a need for clinician review, and the session itself as information.

    ``card_uuid`` names each card by its kind (``referral``, ``screening``, ``flare``,
    ``review``, ``session``), so the same call always yields the same card ids. A patient
    whose red flags were never asked (``red_flags_screened=False``) gets a warning first.
    """
    source = Source(label=f"ladderback {rec.ruleset_version.split('+')[0]}")
    condition = KIND_DISPLAY[rec.condition]
    if rec.status is RecommendationStatus.REFER:
        referral = rec.referral
        flags = [RED_FLAG_WORDS[flag] for flag in referral.flags] if referral else []
        urgency = referral.urgency.value if referral else "urgent"
        message = referral.message if referral else _why(rec.status_reasons)
        detail = (
            f"**Refer ({urgency}).** {message}\n\n"
            + (f"Red flags reported:\n{_bullets(flags)}\n\n" if flags else "")
            + "No exercise is prescribed while red flags are unexplained: assess the patient "
            "before any exercise programme." + _footer(rec)
        )
        summary = f"Red flags ({', '.join(flags) or 'reported'}): refer, {urgency}; no exercise"
        return [
            Card(
                uuid=card_uuid("referral"),
                summary=_fit(summary),
                detail=detail,
                indicator="critical",
                source=source,
            )
        ]

    cards: list[Card] = []
    if not red_flags_screened:
        cards.append(
            Card(
                uuid=card_uuid("screening"),
                summary="Red flags not screened by ladderback: check before starting exercise",
                detail="This patient is not registered with ladderback, so no red-flag "
                "answers were available; none were read from the record. Before any "
                "exercise, rule out:\n" + _bullets(list(RED_FLAG_WORDS.values())) + _footer(rec),
                indicator="warning",
                source=source,
            )
        )
    flare = [
        r for ex in (*rec.exercises, *rec.removed) for r in ex.reasons if r.code in _FLARE_REASONS
    ]
    if flare:
        messages = sorted({r.message for r in flare})
        cards.append(
            Card(
                uuid=card_uuid("flare"),
                summary=_fit(f"{condition}: symptoms flared or spread after the last session"),
                detail="Nothing is made harder today; affected exercises are eased or "
                "swapped.\n\n" + _bullets(messages) + _footer(rec),
                indicator="warning",
                source=source,
            )
        )
    if rec.clinician_review.required:
        reasons = [r.message for r in rec.clinician_review.reasons] or [
            "The rules ask for a clinician's review."
        ]
        cards.append(
            Card(
                uuid=card_uuid("review"),
                summary=_fit(f"{condition}: clinician review advised — {reasons[0]}"),
                detail=_bullets(reasons) + _footer(rec),
                indicator="warning",
                source=source,
            )
        )
    if rec.status is RecommendationStatus.REST or not rec.exercises:
        why = _why(rec.status_reasons) or "No session is due today."
        cards.append(
            Card(
                uuid=card_uuid("session"),
                summary=_fit(f"{condition}: no exercise session today — {why}"),
                detail=_bullets([r.message for r in rec.status_reasons] or [why]) + _footer(rec),
                indicator="info",
                source=source,
            )
        )
        return cards

    phase = ""
    if rec.programme is not None:
        phase = f", phase {rec.programme.phase_number} of {rec.programme.phases_total}"
    summary = (
        f"{condition}{phase}: {len(rec.exercises)} exercises, about "
        f"{round(rec.total_minutes)} min{_counts(rec.exercises)}"
    )
    sections = [_session_table(rec.exercises)]
    if rec.schedule is not None:
        sections.append(f"Next session after this one: {rec.schedule.next_session_date}.")
    if rec.safety_notes:
        sections.append("**Safety**\n" + _bullets(rec.safety_notes))
    if rec.avoid:
        sections.append("**Avoid**\n" + _bullets([a.text for a in rec.avoid]))
    if assumptions:
        sections.append("**Assumed** (not in the record)\n" + _bullets(assumptions))
    cards.append(
        Card(
            uuid=card_uuid("session"),
            summary=_fit(summary),
            detail="\n\n".join(sections) + _footer(rec),
            indicator="info",
            source=source,
        )
    )
    return cards


# ---------------------------------------------------------------------------------------------
# Prefetch


class PrefetchMissing(Exception):
    """The patient is unknown here and the EHR did not prefetch what a decision needs."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(", ".join(keys))
        self.keys = tuple(keys)


@dataclass(frozen=True, slots=True)
class PrefetchedPatient:
    profile: Profile
    condition: Condition
    assumptions: tuple[str, ...]


class _Lenient(BaseModel):
    # EHR resources carry far more than we read; only the fields below are checked.
    model_config = ConfigDict(extra="ignore")


class _Coding(_Lenient):
    system: str | None = None
    code: str | None = None


class _Concept(_Lenient):
    coding: list[_Coding] = []


def _first_day(value: Any) -> Any:
    """A FHIR date or dateTime ("2026", "2026-11", "2026-11-24T09:30:00Z") as the first day
    it can mean; the date itself is then checked (no 30 February)."""
    if not isinstance(value, str) or not re.match(r"^\d{4}(-\d{2}(-\d{2})?)?([T ].*)?$", value):
        return value
    day = value[:10]
    return day + "-01-01"[len(day) - 4 :] if len(day) < 10 else day


def _last_day(value: Any) -> Any:
    """A partial birth date as the last day it can mean: never older than the person is."""
    if not isinstance(value, str) or not re.match(r"^\d{4}(-\d{2})?$", value):
        return _first_day(value)
    if len(value) == 4:
        return f"{value}-12-31"
    year, month = int(value[:4]), int(value[5:7])
    if not 1 <= month <= 12:
        return value
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).isoformat()


# Held to the calendar the REST contract accepts (1900-2100), like every date in.
FhirDay = Annotated[date, BeforeValidator(_first_day), AfterValidator(plausible_date)]
BirthDay = Annotated[date, BeforeValidator(_last_day), AfterValidator(plausible_date)]


class _Patient(_Lenient):
    resourceType: Literal["Patient"]
    id: str | None = None
    birthDate: BirthDay | None = None


class _Reference(_Lenient):
    reference: str | None = None


class _Condition(_Lenient):
    resourceType: Literal["Condition"]
    id: str | None = None
    subject: _Reference | None = None
    code: _Concept | None = None
    clinicalStatus: _Concept | None = None
    verificationStatus: _Concept | None = None
    onsetDateTime: FhirDay | None = None
    recordedDate: FhirDay | None = None


class _Quantity(_Lenient):
    value: FiniteFloat | None = None


class _Observation(_Lenient):
    resourceType: Literal["Observation"]
    subject: _Reference | None = None
    status: str
    code: _Concept
    effectiveDateTime: FhirDay | None = None
    valueInteger: StrictInt | None = None
    valueQuantity: _Quantity | None = None


class _Entry(_Lenient):
    resource: dict[str, Any] | None = None


class _Bundle(_Lenient):
    resourceType: Literal["Bundle"]
    entry: list[_Entry] = []


_REQUIRED_KEYS = ("patient", "conditions", "painScores")
_FINAL = frozenset({"final", "amended", "corrected"})


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(model: type[_Model], data: Any, where: str) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = field_path(first["loc"])
        raise InvalidInput(f"{where}.{path}" if path else where, first["msg"]) from None


def _about(resource: _Condition | _Observation, patient_id: str, where: str) -> None:
    """A prefetched resource about another patient is refused, never read as this one's."""
    reference = resource.subject.reference if resource.subject is not None else None
    if reference is None:
        return
    if reference != f"Patient/{patient_id}" and not reference.endswith(f"/Patient/{patient_id}"):
        raise InvalidInput(f"{where}.subject.reference", "must be the patient of context.patientId")


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _resources(bundle: _Bundle, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """The bundle's resources of one type, with their entry index (for error paths)."""
    return [
        (i, e.resource)
        for i, e in enumerate(bundle.entry)
        if e.resource is not None and e.resource.get("resourceType") == kind
    ]


def _is_active(condition: _Condition) -> bool:
    """Active (or unstated), and not refuted or entered in error."""
    withdrawn = ("refuted", "entered-in-error")
    if condition.verificationStatus is not None and any(
        c.code in withdrawn for c in condition.verificationStatus.coding
    ):
        return False
    if condition.clinicalStatus is None:
        return True
    active = ("active", "recurrence", "relapse")
    return any(c.code in active for c in condition.clinicalStatus.coding)


def _latest_pain(observations: Sequence[tuple[int, _Observation]], today: date) -> int | None:
    """The newest final pain-severity score. A score that is not a whole number from 0 to
    10 is refused with its path, never skipped: an EHR sending 11 has a mapping to fix."""
    scores: list[tuple[date, int]] = []
    for i, obs in observations:
        if obs.status not in _FINAL:
            continue
        if not any(c.system == LOINC and c.code == PAIN_SEVERITY.code for c in obs.code.coding):
            continue
        value: float | None = obs.valueInteger
        where = f"prefetch.painScores.entry[{i}].resource.valueInteger"
        if value is None and obs.valueQuantity is not None:
            value = obs.valueQuantity.value
            where = f"prefetch.painScores.entry[{i}].resource.valueQuantity.value"
        if value is None:
            continue
        if value != int(value) or not 0 <= value <= 10:
            raise InvalidInput(where, "a pain score is a whole number from 0 to 10")
        when = obs.effectiveDateTime or date.min
        if when > today:
            continue
        scores.append((when, int(value)))
    # Newest first; undated scores count as oldest.
    return max(scores)[1] if scores else None


def read_prefetch(
    prefetch: Mapping[str, dict[str, Any] | None] | None, today: date, patient_id: str
) -> PrefetchedPatient | None:
    """The profile and condition a decision needs, read from prefetched resources.

    ``PrefetchMissing`` when a needed key was not sent (or holds an OperationOutcome: the
    EHR could not fetch it); ``None`` when what was sent holds no back condition of ours,
    no pain score or no birth date: then there is nothing to say.
    """
    given = prefetch or {}
    missing = [
        key
        for key in _REQUIRED_KEYS
        if key not in given or (given[key] or {}).get("resourceType") == "OperationOutcome"
    ]
    if missing:
        raise PrefetchMissing(missing)
    patient_data, conditions_data, pain_data = (given[k] for k in _REQUIRED_KEYS)
    if patient_data is None or conditions_data is None or pain_data is None:
        return None
    patient = _parse(_Patient, patient_data, "prefetch.patient")
    if patient.id != patient_id:
        # Another chart's data must never be read as this patient's.
        raise InvalidInput("prefetch.patient.id", "must be the patient of context.patientId")
    conditions_bundle = _parse(_Bundle, conditions_data, "prefetch.conditions")
    pain_bundle = _parse(_Bundle, pain_data, "prefetch.painScores")

    ours: list[tuple[date | None, str, ConditionKind]] = []
    for i, raw in _resources(conditions_bundle, "Condition"):
        where = f"prefetch.conditions.entry[{i}].resource"
        condition = _parse(_Condition, raw, where)
        _about(condition, patient_id, where)
        if not _is_active(condition) or condition.code is None:
            continue
        kinds = [kind_of(c.system, c.code) for c in condition.code.coding]
        kind = next((k for k in kinds if k is not None), None)
        if kind is not None:
            started = condition.onsetDateTime or condition.recordedDate
            ours.append((started, condition.id or "", kind))
    observations = [
        (i, _parse(_Observation, raw, f"prefetch.painScores.entry[{i}].resource"))
        for i, raw in _resources(pain_bundle, "Observation")
    ]
    for i, observation in observations:
        _about(observation, patient_id, f"prefetch.painScores.entry[{i}].resource")
    pain = _latest_pain(observations, today)
    if not ours or pain is None or patient.birthDate is None:
        return None
    age = _age(patient.birthDate, today)
    if not AGES[0] <= age <= AGES[1]:
        return None  # outside the ages the rules were written for

    # The most recent onset decides (ties by id, so the choice never depends on order).
    started, _, kind = max(ours, key=lambda item: (item[0] or date.min, item[1]))
    assumptions = [
        "No equipment beyond household items; beginner level; 30 minutes a session.",
        "No session history: the programme starts at its entry level.",
    ]
    if started is None:
        assumptions.append("The condition has no onset date: taken as today.")
    onset = min(started, today) if started is not None else today
    return PrefetchedPatient(
        profile=Profile(age=age, ability=AbilityLevel.BEGINNER, minutes_available=30),
        condition=Condition(kind=kind, onset_date=onset, baseline_pain=pain),
        assumptions=tuple(assumptions),
    )
