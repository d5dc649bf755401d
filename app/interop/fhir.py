"""One page of a user's stored record as a FHIR R4 ``Bundle`` of type ``collection``.

A pure mapping: it reads the service's stored-resource models (``app.api.resources``) and
builds FHIR resources; it touches no database and no web framework. Each resource is built
as the JSON it is sent as and checked by its ``fhir.resources.R4B`` model (required
elements, types, no unknown elements) before it is kept. Building the models themselves
and serialising them cost ten times as much (a model per Coding, a Python serialiser per
element): a 500-session export spent 3.7 s there.

| ladderback | FHIR R4 | id |
|---|---|---|
| user | ``Patient``, pseudonymous: only the caller's ``external_id`` | user id |
| condition episode | ``Condition`` (SNOMED CT + our kind code) | episode id |
| latest recommendation | ``CarePlan`` (intent ``plan``) | derived |
| each exercise it prescribes | ``ServiceRequest`` (exercise therapy) | derived |
| logged session | ``Procedure`` (``completed`` or ``not-done``) | session id |
| pain before, during, after, next morning | ``Observation`` (LOINC 72514-3) | derived |

The Patient's identifier system is ``urn:uuid:<client id>``: an ``external_id`` is unique
only among one client's users, so the client (tenant) is the namespace of the identifier.

Ids are deterministic, so the same stored data always gives the same bundle (only
``Bundle.timestamp`` moves): stored rows keep their UUIDs; a derived resource gets a
``uuid5`` of ``ID_NAMESPACE`` and a readable name such as
``recommendation/<id>/exercise/0``. Every ``fullUrl`` and every reference is
``urn:uuid:<id>``, so each reference resolves inside the bundle: a page carries the
Patient, and the Conditions and ServiceRequests its own resources cite. Every code comes
from ``app.interop.terminology``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import BaseModel, ConfigDict

from app.api.resources import (
    ConditionOut,
    ConditionStatus,
    ExerciseResultOut,
    SessionOut,
    StoredRecommendationOut,
    UserOut,
)
from app.api.schemas import DoseOut
from app.domain.types import Change, ConditionKind, RecommendationStatus, Side
from app.interop.narrative import RED_FLAG_WORDS, dose_words, plural
from app.interop.terminology import (
    CONDITION_ACTIVE,
    CONDITION_CODES,
    CONDITION_KIND_SYSTEM,
    CONDITION_RESOLVED,
    EXERCISE_THERAPY,
    KIND_DISPLAY,
    PAIN_SEVERITY,
    PHYSICAL_ACTIVITY,
    PROBLEM_LIST_ITEM,
    SURVEY,
    Code,
)

__all__ = [
    "ID_NAMESPACE",
    "CitedExercise",
    "CitedRecommendation",
    "bundle_json",
    "cited_of",
    "derived_id",
    "user_bundle",
]

# The namespace of every derived resource id. Fixed forever: changing it changes every id.
ID_NAMESPACE = uuid.UUID("0d6c1f4e-8a27-5b3e-9c41-7f2a6e8d3b59")

Json = dict[str, Any]

_SIDE_WORDS: Mapping[Side, str] = {
    Side.LEFT: "Symptoms on the left side.",
    Side.RIGHT: "Symptoms on the right side.",
    Side.BOTH: "Symptoms on both sides.",
}


# ---------------------------------------------------------------------------------------------
# What a recommendation's ServiceRequests need: its exercises, not its whole stored answer


class CitedExercise(BaseModel):
    """One prescribed exercise, as much of it as its ServiceRequest says."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    exercise_id: str
    name: str
    change: Change
    first_reason: str | None = None
    dose: DoseOut | None
    cautions: tuple[str, ...]


class CitedRecommendation(BaseModel):
    """A stored recommendation as its ServiceRequests need it (read without its inputs,
    trace and programme: a tenth of the stored row)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    condition_id: str
    created_at: datetime
    exercises: tuple[CitedExercise, ...]


def cited_of(stored: StoredRecommendationOut) -> CitedRecommendation:
    """The part of a whole stored recommendation its ServiceRequests need."""
    return CitedRecommendation(
        id=stored.id,
        condition_id=stored.condition_id,
        created_at=stored.created_at,
        exercises=tuple(
            CitedExercise(
                exercise_id=e.exercise_id,
                name=e.name,
                change=e.change,
                first_reason=e.reasons[0].message if e.reasons else None,
                dose=e.dose,
                cautions=tuple(e.cautions),
            )
            for e in stored.recommendation.exercises
        ),
    )


# ---------------------------------------------------------------------------------------------
# Small builders


def derived_id(*name: str) -> str:
    """A stable id for a resource with no row of its own, from a readable name."""
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(name)))


def _url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def _ref(resource_id: str) -> Json:
    return {"reference": _url(resource_id)}


def _coding(code: Code) -> Json:
    return {"system": code.system, "code": code.code, "display": code.display}


def _concept(*codes: Code, text: str | None = None) -> Json:
    concept: Json = {"coding": [_coding(c) for c in codes]}
    if text is not None:
        concept["text"] = text
    return concept


def _notes(*texts: str) -> list[Json] | None:
    return [{"text": t} for t in texts if t] or None


def _instant(moment: datetime) -> str:
    """A FHIR dateTime with a time: UTC, written with ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _checked(model: type[Resource], **elements: Any) -> Json:
    """The resource as sent (``None`` elements left out), once its FHIR model accepts it."""
    resource: Json = {"resourceType": model.get_resource_type()}
    resource.update((k, v) for k, v in elements.items() if v is not None)
    model.model_validate(resource)
    return resource


def _change_words(exercise: CitedExercise) -> str:
    """The change and its first reason: "Progressed: the last 2 sessions ..."."""
    label = exercise.change.value.capitalize()
    if exercise.first_reason is None:
        return f"{label}."
    return f"{label}: {exercise.first_reason}"


def _timing(dose: DoseOut) -> Json:
    # FHIR Timing says "frequency times per period". A dose is per_day times a day on
    # per_week days of the week, on no fixed days, so the exact FHIR statement is
    # per_week * per_day times per week; the per-day split is in patientInstruction.
    return {"repeat": {"frequency": dose.per_week * dose.per_day, "period": 1, "periodUnit": "wk"}}


# ---------------------------------------------------------------------------------------------
# Resources


def _patient(user: UserOut, client_id: str) -> Json:
    # Pseudonymous on purpose: the caller's own id and nothing else about the person.
    identifier = {"system": _url(client_id), "value": user.external_id}
    return _checked(Patient, id=user.id, identifier=[identifier])


def _condition(episode: ConditionOut, patient_id: str) -> Json:
    kind = ConditionKind(episode.kind)
    display = KIND_DISPLAY[kind]
    own_kind = Code(CONDITION_KIND_SYSTEM, kind.value, display)
    resolved = episode.status == ConditionStatus.RESOLVED
    side = _SIDE_WORDS.get(episode.side, "")
    flags = ""
    if episode.red_flags:
        named = ", ".join(
            RED_FLAG_WORDS.get(f, f.value.replace("_", " ")) for f in episode.red_flags
        )
        flags = f"Red flags reported: {named}. Medical assessment is needed before any exercise."
    abatement = episode.resolved_on if resolved else None
    # No verificationStatus: the service is told of the condition, it does not confirm it.
    return _checked(
        Condition,
        id=episode.id,
        clinicalStatus=_concept(CONDITION_RESOLVED if resolved else CONDITION_ACTIVE),
        category=[_concept(PROBLEM_LIST_ITEM)],
        code=_concept(CONDITION_CODES[kind], own_kind, text=display),
        subject=_ref(patient_id),
        onsetDateTime=episode.onset_date.isoformat(),
        abatementDateTime=None if abatement is None else abatement.isoformat(),
        note=_notes(side, flags),
    )


@dataclass(frozen=True, slots=True)
class _Prescription:
    """One exercise of a recommendation, as the ServiceRequest that stands for it."""

    id: str
    exercise: CitedExercise
    request: Json


def _prescriptions(
    stored: CitedRecommendation, patient_id: str, *, active: bool
) -> list[_Prescription]:
    status = "active" if active else "completed"
    authored = _instant(stored.created_at)
    found = []
    for index, exercise in enumerate(stored.exercises):
        request_id = derived_id("recommendation", stored.id, "exercise", str(index))
        dose = exercise.dose
        instruction = _change_words(exercise)
        if dose is not None:
            instruction = f"{dose_words(dose)}. {instruction}"
        request = _checked(
            ServiceRequest,
            id=request_id,
            status=status,
            intent="plan",
            category=[_concept(PHYSICAL_ACTIVITY)],
            code=_concept(EXERCISE_THERAPY, text=exercise.name),
            subject=_ref(patient_id),
            occurrenceTiming=None if dose is None else _timing(dose),
            authoredOn=authored,
            performer=[_ref(patient_id)],
            reasonReference=[_ref(stored.condition_id)],
            note=_notes(*(f"Caution: {c}" for c in exercise.cautions)),
            patientInstruction=instruction,
        )
        found.append(_Prescription(request_id, exercise, request))
    return found


def _care_plan(
    stored: StoredRecommendationOut, patient_id: str, active: bool, requests: Sequence[str]
) -> Json:
    decision = stored.recommendation
    phase = f"{decision.programme.phase.value} phase" if decision.programme else "no phase"
    exercises = plural(len(decision.exercises), "exercise")
    description = f"Status {decision.status.value}, {phase}, {exercises}."
    note = decision.summary
    if decision.status == RecommendationStatus.REFER:
        description += " Referral before any exercise."
        referral = decision.referral
        note = "Referral before any exercise."
        if referral is not None:
            note = f"Referral ({referral.urgency.value}) before any exercise: {referral.message}"
    return _checked(
        CarePlan,
        id=derived_id("recommendation", stored.id, "care-plan"),
        status="active" if active else "completed",
        intent="plan",
        category=[_concept(PHYSICAL_ACTIVITY)],
        description=description,
        subject=_ref(patient_id),
        period={"start": decision.today.isoformat()},
        created=_instant(stored.created_at),
        addresses=[_ref(stored.condition_id)],
        activity=[{"reference": _ref(r)} for r in requests] or None,
        note=_notes(note),
    )


def _result_words(result: ExerciseResultOut, name: str) -> str:
    """One exercise of a session: what was done against what was prescribed."""
    prescribed = dose_words(result.prescribed, schedule=False)
    if not result.completed or result.performed is None:
        return f"{name}: not done (prescribed {prescribed})"
    performed = dose_words(result.performed, schedule=False)
    if performed == prescribed:
        return f"{name}: {performed}, as prescribed"
    return f"{name}: {performed} (prescribed {prescribed})"


def _procedure(
    logged: SessionOut, patient_id: str, names: Mapping[str, str], based_on: Sequence[str]
) -> Json:
    done = [_result_words(r, names.get(r.exercise_id, r.exercise_id)) for r in logged.exercises]
    summary = "; ".join(done) + "." if done else "No exercises recorded."
    if not logged.completed:
        summary = f"Session missed. {summary}"
    return _checked(
        Procedure,
        id=logged.id,
        basedOn=[_ref(r) for r in based_on] or None,
        status="completed" if logged.completed else "not-done",
        code=_concept(EXERCISE_THERAPY),
        subject=_ref(patient_id),
        performedDateTime=logged.date.isoformat(),
        reasonReference=[_ref(logged.condition_id)],
        note=_notes(summary),
    )


@dataclass(frozen=True, slots=True)
class _Pain:
    which: str  # the readable part of the Observation's derived id
    text: str
    value: int | None
    day: date


def _pains(logged: SessionOut) -> list[_Pain]:
    """Each pain score the session carries: before, highest during, after, next morning."""
    during = [r.pain_during for r in logged.exercises if r.pain_during is not None]
    after = [r.pain_after for r in logged.exercises if r.pain_after is not None]
    # The session's own "after" score; failing that, the worst after any exercise.
    pain_after = logged.pain_after if logged.pain_after is not None else max(after, default=None)
    day, next_day = logged.date, logged.date + timedelta(days=1)
    scores = [
        _Pain("before", "Pain before the exercise session", logged.pain_before, day),
        _Pain(
            "during", "Highest pain during the session's exercises", max(during, default=None), day
        ),
        _Pain("after", "Pain after the exercise session", pain_after, day),
        _Pain("next-morning", "Pain the morning after the session", logged.next_day_pain, next_day),
    ]
    return [pain for pain in scores if pain.value is not None]


def _observation(logged: SessionOut, pain: _Pain, patient_id: str) -> Json:
    return _checked(
        Observation,
        id=derived_id("session", logged.id, "pain", pain.which),
        partOf=[_ref(logged.id)],
        status="final",
        category=[_concept(SURVEY)],
        code=_concept(PAIN_SEVERITY, text=f"{pain.text} (0-10)"),
        subject=_ref(patient_id),
        effectiveDateTime=pain.day.isoformat(),
        valueInteger=pain.value,
    )


# ---------------------------------------------------------------------------------------------
# The bundle


def bundle_json(bundle: Json) -> str:
    """The bundle as sent: compact JSON, UTF-8 text as is."""
    return json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))


def user_bundle(
    *,
    user: UserOut,
    client_id: str,
    episodes: Sequence[ConditionOut],
    sessions: Sequence[SessionOut],
    latest: StoredRecommendationOut | None,
    cited: Iterable[CitedRecommendation],
    now: datetime,
    first_page: bool = True,
    links: Sequence[tuple[str, str]] = (),
) -> Json:
    """One page of the user's record as a FHIR ``collection`` Bundle (JSON-ready).

    ``episodes``: the user's condition episodes (all of them on the first page); a later
    page keeps only those its resources cite. ``sessions``: this page's sessions, newest
    first. ``latest``: the latest recommendation of the newest episode that has one, or
    None; on the first page it is the CarePlan, and on any page its ServiceRequests are
    ``active`` (unless its episode is resolved). ``cited``: the other recommendations this
    page's sessions cite (their ServiceRequests, completed, so each Procedure's
    ``basedOn`` resolves). ``links``: (relation, url) pairs, such as ``("next", ...)``.
    ``now``: the Bundle's timestamp, the only part that differs between two exports of
    the same data.
    """
    patient = _patient(user, client_id)
    resolved = {e.id for e in episodes if e.status == ConditionStatus.RESOLVED}

    by_recommendation: dict[str, list[_Prescription]] = {}
    plan: list[Json] = []
    if latest is not None:
        active = latest.condition_id not in resolved
        cited_ids = {s.recommendation_id for s in sessions}
        if first_page or latest.id in cited_ids:
            current = _prescriptions(cited_of(latest), user.id, active=active)
            by_recommendation[latest.id] = current
            if first_page:
                plan.append(_care_plan(latest, user.id, active, [p.id for p in current]))
    for stored in cited:
        if stored.id not in by_recommendation:
            by_recommendation[stored.id] = _prescriptions(stored, user.id, active=False)
    requests = [p.request for found in by_recommendation.values() for p in found]

    procedures: list[Json] = []
    observations: list[Json] = []
    for logged in sessions:
        followed = by_recommendation.get(logged.recommendation_id or "", [])
        names = {p.exercise.exercise_id: p.exercise.name for p in followed}
        # A session is based on the requests it carried out; a missed one, on those it
        # was meant to carry out.
        carried = {
            r.exercise_id
            for r in logged.exercises
            if not logged.completed or (r.completed and r.performed is not None)
        }
        based_on = [p.id for p in followed if p.exercise.exercise_id in carried]
        procedures.append(_procedure(logged, user.id, names, based_on))
        observations += [_observation(logged, pain, user.id) for pain in _pains(logged)]

    if not first_page:
        # Only the episodes this page's requests and procedures cite.
        named = {r["reasonReference"][0]["reference"] for r in requests + procedures}
        episodes = [e for e in episodes if _url(e.id) in named]
    conditions = [_condition(e, user.id) for e in episodes]

    resources = [patient, *conditions, *plan, *requests, *procedures, *observations]
    entries = [{"fullUrl": _url(r["id"]), "resource": r} for r in resources]
    # The id follows the content: the same data gives the same id, changed data a new one.
    digest = hashlib.sha256(bundle_json({"entry": entries}).encode())
    envelope = _checked(
        Bundle,
        id=derived_id("bundle", user.id, digest.hexdigest()),
        type="collection",
        timestamp=_instant(now),
        link=[{"relation": relation, "url": url} for relation, url in links] or None,
    )
    return {**envelope, "entry": entries}
