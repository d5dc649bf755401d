"""One user's stored record as a FHIR R4 ``Bundle`` of type ``collection``.

A pure mapping: it reads the service's stored-resource models (``app.api.resources``) and
builds ``fhir.resources.R4B`` models; it touches no database and no web framework.

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
``urn:uuid:<id>``, so each reference resolves inside the bundle. Every code comes from
``app.interop.terminology``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.careplan import CarePlan, CarePlanActivity
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.timing import Timing, TimingRepeat

from app.api.resources import (
    ConditionOut,
    ConditionStatus,
    ExerciseResultOut,
    SessionOut,
    StoredRecommendationOut,
    UserOut,
)
from app.api.schemas import DoseOut, ExerciseDecisionOut
from app.domain.types import ConditionKind, RecommendationStatus, Side
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

__all__ = ["ID_NAMESPACE", "derived_id", "user_bundle"]

# The namespace of every derived resource id. Fixed forever: changing it changes every id.
ID_NAMESPACE = uuid.UUID("0d6c1f4e-8a27-5b3e-9c41-7f2a6e8d3b59")

_SIDE_WORDS: Mapping[Side, str] = {
    Side.LEFT: "Symptoms on the left side.",
    Side.RIGHT: "Symptoms on the right side.",
    Side.BOTH: "Symptoms on both sides.",
}


# ---------------------------------------------------------------------------------------------
# Small builders


def derived_id(*name: str) -> str:
    """A stable id for a resource with no row of its own, from a readable name."""
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(name)))


def _url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def _ref(resource_id: str) -> Reference:
    return Reference(reference=_url(resource_id))


def _coding(code: Code) -> Coding:
    return Coding(system=code.system, code=code.code, display=code.display)


def _concept(*codes: Code, text: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[_coding(c) for c in codes], text=text)


def _notes(*texts: str) -> list[Annotation] | None:
    kept = [Annotation(text=t) for t in texts if t]
    return kept or None


def _change_words(exercise: ExerciseDecisionOut) -> str:
    """The change and its first reason: "Progressed: the last 2 sessions ..."."""
    label = exercise.change.value.capitalize()
    if not exercise.reasons:
        return f"{label}."
    return f"{label}: {exercise.reasons[0].message}"


def _timing(dose: DoseOut) -> Timing:
    # FHIR Timing says "frequency times per period". A dose is per_day times a day on
    # per_week days of the week, on no fixed days, so the exact FHIR statement is
    # per_week * per_day times per week; the per-day split is in patientInstruction.
    repeat = TimingRepeat(frequency=dose.per_week * dose.per_day, period=1, periodUnit="wk")
    return Timing(repeat=repeat)


# ---------------------------------------------------------------------------------------------
# Resources


def _patient(user: UserOut, client_id: str) -> Patient:
    # Pseudonymous on purpose: the caller's own id and nothing else about the person.
    identifier = Identifier(system=_url(client_id), value=user.external_id)
    return Patient(id=user.id, identifier=[identifier])


def _condition(episode: ConditionOut, patient_id: str) -> Condition:
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
    # No verificationStatus: the service is told of the condition, it does not confirm it.
    return Condition(
        id=episode.id,
        clinicalStatus=_concept(CONDITION_RESOLVED if resolved else CONDITION_ACTIVE),
        category=[_concept(PROBLEM_LIST_ITEM)],
        code=_concept(CONDITION_CODES[kind], own_kind, text=display),
        subject=_ref(patient_id),
        onsetDateTime=episode.onset_date,
        abatementDateTime=episode.resolved_on if resolved else None,
        note=_notes(side, flags),
    )


@dataclass(frozen=True, slots=True)
class _Prescription:
    """One exercise of a recommendation, as the ServiceRequest that stands for it."""

    id: str
    exercise: ExerciseDecisionOut
    request: ServiceRequest


def _prescriptions(
    stored: StoredRecommendationOut, patient_id: str, *, active: bool
) -> list[_Prescription]:
    status = "active" if active else "completed"
    found = []
    for index, exercise in enumerate(stored.recommendation.exercises):
        request_id = derived_id("recommendation", stored.id, "exercise", str(index))
        dose = exercise.dose
        instruction = _change_words(exercise)
        if dose is not None:
            instruction = f"{dose_words(dose)}. {instruction}"
        request = ServiceRequest(
            id=request_id,
            status=status,
            intent="plan",
            category=[_concept(PHYSICAL_ACTIVITY)],
            code=_concept(EXERCISE_THERAPY, text=exercise.name),
            subject=_ref(patient_id),
            occurrenceTiming=None if dose is None else _timing(dose),
            authoredOn=stored.created_at,
            performer=[_ref(patient_id)],
            reasonReference=[_ref(stored.condition_id)],
            note=_notes(*(f"Caution: {c}" for c in exercise.cautions)),
            patientInstruction=instruction,
        )
        found.append(_Prescription(request_id, exercise, request))
    return found


def _care_plan(
    stored: StoredRecommendationOut, patient_id: str, active: bool, requests: Sequence[str]
) -> CarePlan:
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
    return CarePlan(
        id=derived_id("recommendation", stored.id, "care-plan"),
        status="active" if active else "completed",
        intent="plan",
        category=[_concept(PHYSICAL_ACTIVITY)],
        description=description,
        subject=_ref(patient_id),
        period=Period(start=decision.today),
        created=stored.created_at,
        addresses=[_ref(stored.condition_id)],
        activity=[CarePlanActivity(reference=_ref(r)) for r in requests] or None,
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
) -> Procedure:
    done = [_result_words(r, names.get(r.exercise_id, r.exercise_id)) for r in logged.exercises]
    summary = "; ".join(done) + "." if done else "No exercises recorded."
    if not logged.completed:
        summary = f"Session missed. {summary}"
    return Procedure(
        id=logged.id,
        basedOn=[_ref(r) for r in based_on] or None,
        status="completed" if logged.completed else "not-done",
        code=_concept(EXERCISE_THERAPY),
        subject=_ref(patient_id),
        performedDateTime=logged.date,
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


def _observation(logged: SessionOut, pain: _Pain, patient_id: str) -> Observation:
    return Observation(
        id=derived_id("session", logged.id, "pain", pain.which),
        partOf=[_ref(logged.id)],
        status="final",
        category=[_concept(SURVEY)],
        code=_concept(PAIN_SEVERITY, text=f"{pain.text} (0-10)"),
        subject=_ref(patient_id),
        effectiveDateTime=pain.day,
        valueInteger=pain.value,
    )


# ---------------------------------------------------------------------------------------------
# The bundle


def user_bundle(
    *,
    user: UserOut,
    client_id: str,
    episodes: Sequence[ConditionOut],
    sessions: Sequence[SessionOut],
    latest: StoredRecommendationOut | None,
    cited: Sequence[StoredRecommendationOut],
    now: datetime,
) -> Bundle:
    """The user's record as a FHIR ``collection`` Bundle.

    ``episodes``: all the user's condition episodes; ``sessions``: the sessions to export,
    newest first; ``latest``: the latest recommendation of the newest episode that has one
    (the CarePlan), or None; ``cited``: older recommendations the sessions cite (their
    ServiceRequests, completed, so each Procedure's ``basedOn`` resolves); ``now``: the
    Bundle's timestamp, the only part that differs between two exports of the same data.
    """
    patient = _patient(user, client_id)
    resolved = {e.id for e in episodes if e.status == ConditionStatus.RESOLVED}
    resources: list[Resource] = [patient]
    resources += [_condition(e, user.id) for e in episodes]

    by_recommendation: dict[str, list[_Prescription]] = {}
    if latest is not None:
        active = latest.condition_id not in resolved
        current = _prescriptions(latest, user.id, active=active)
        by_recommendation[latest.id] = current
        resources.append(_care_plan(latest, user.id, active, [p.id for p in current]))
    for stored in cited:
        if stored.id not in by_recommendation:
            by_recommendation[stored.id] = _prescriptions(stored, user.id, active=False)
    resources += [p.request for found in by_recommendation.values() for p in found]

    observations: list[Resource] = []
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
        resources.append(_procedure(logged, user.id, names, based_on))
        observations += [_observation(logged, pain, user.id) for pain in _pains(logged)]
    resources += observations

    entries = [BundleEntry(fullUrl=_url(str(r.id)), resource=r) for r in resources]
    # The id follows the content: the same data gives the same id, changed data a new one.
    digest = hashlib.sha256("\n".join(e.model_dump_json() for e in entries).encode())
    return Bundle(
        id=derived_id("bundle", user.id, digest.hexdigest()),
        type="collection",
        timestamp=now,
        entry=entries,
    )
