"""The codes ladderback emits and reads in FHIR and CDS Hooks, each with where it was checked.

FHIR libraries check types and cardinality, not value-set bindings, so every code we emit
is drawn from here and the tests check each emitted code against ``VALUE_SETS``.

SNOMED CT concepts for the four conditions (checked in published code lists):

| kind | concept | source |
|---|---|---|
| strain | 309710005 Lumbosacral strain (disorder) | GM SDE back-problems code set v2 |
| sciatica | 23056005 Sciatica (disorder) | GM SDE back-problems v2; VisualDx |
| posture | 43029002 Abnormal posture (finding) | KBV CMR ConceptMap (U7a/U9 exam) |
| overuse | 279039007 Low back pain (finding) | GM SDE back-problems code set v2 |

No SNOMED CT concept for overuse back pain could be confirmed, so an overuse episode is
coded as low back pain, the finding it presents with, and its kind travels in a second
coding from ladderback's own code system (``CONDITION_KIND_SYSTEM``). "Poor posture" exists
in SNOMED CT but its id could not be confirmed; its parent-level finding "Abnormal posture"
is used. Every Condition carries both codings, so a reader loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.domain.types import ConditionKind

__all__ = [
    "CONDITION_ACTIVE",
    "CONDITION_CODES",
    "CONDITION_KIND_SYSTEM",
    "CONDITION_RESOLVED",
    "EXERCISE_THERAPY",
    "LOINC",
    "PAIN_SEVERITY",
    "PHYSICAL_ACTIVITY",
    "SNOMED",
    "UCUM",
    "VALUE_SETS",
    "Code",
    "kind_of",
]

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PA_TEMPORARY_CODES = "http://hl7.org/fhir/us/physical-activity/CodeSystem/pa-temporary-codes"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# ladderback's own code system for its four condition kinds. A fixed UUID URI: a canonical
# that needs no domain name, and never changes.
CONDITION_KIND_SYSTEM = "urn:uuid:5b1f0c9e-3d0a-4d55-9a51-5e0f4a2b7c11"


@dataclass(frozen=True, slots=True)
class Code:
    """One coded concept: system, code and the display its code system gives it."""

    system: str
    code: str
    display: str

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


CONDITION_CODES: Mapping[ConditionKind, Code] = {
    ConditionKind.STRAIN: Code(SNOMED, "309710005", "Lumbosacral strain (disorder)"),
    ConditionKind.SCIATICA: Code(SNOMED, "23056005", "Sciatica (disorder)"),
    ConditionKind.POSTURE: Code(SNOMED, "43029002", "Abnormal posture (finding)"),
    ConditionKind.OVERUSE: Code(SNOMED, "279039007", "Low back pain (finding)"),
}
KIND_DISPLAY: Mapping[ConditionKind, str] = {
    ConditionKind.STRAIN: "Back muscle strain",
    ConditionKind.SCIATICA: "Sciatica",
    ConditionKind.POSTURE: "Poor posture",
    ConditionKind.OVERUSE: "Overuse back pain",
}

# Codes an EHR may send that name one of our conditions unambiguously. Generic back pain
# (279039007 and its kin) is not here: it does not say which protocol fits.
_SNOMED_KINDS: Mapping[str, ConditionKind] = {
    "309710005": ConditionKind.STRAIN,  # Lumbosacral strain (disorder)
    "300956001": ConditionKind.STRAIN,  # Low back strain (GM SDE back-problems v1)
    "23056005": ConditionKind.SCIATICA,  # Sciatica (disorder)
    "202794004": ConditionKind.SCIATICA,  # Lumbago with sciatica (finding)
    "247366003": ConditionKind.SCIATICA,  # Acute back pain with sciatica (disorder)
    "43029002": ConditionKind.POSTURE,  # Abnormal posture (finding)
}

EXERCISE_THERAPY = Code(SNOMED, "229065009", "Exercise therapy (regime/therapy)")
PAIN_SEVERITY = Code(
    LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"
)
# HL7 Physical Activity IG (STU1): the category its CarePlan and ServiceRequest profiles fix.
PHYSICAL_ACTIVITY = Code(PA_TEMPORARY_CODES, "PhysicalActivity", "Physical Activity")
SURVEY = Code(OBSERVATION_CATEGORY, "survey", "Survey")
PROBLEM_LIST_ITEM = Code(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")
# Condition.clinicalStatus for our two episode states (condition-clinical, FHIR R4).
CONDITION_ACTIVE = Code(CONDITION_CLINICAL, "active", "Active")
CONDITION_RESOLVED = Code(CONDITION_CLINICAL, "resolved", "Resolved")


def kind_of(system: str | None, code: str | None) -> ConditionKind | None:
    """The condition kind a coding names, or ``None`` when it names none of ours."""
    if system == CONDITION_KIND_SYSTEM and code is not None:
        return next((kind for kind in ConditionKind if kind.value == code), None)
    if system == SNOMED and code is not None:
        return _SNOMED_KINDS.get(code)
    return None


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


# The value sets our bindings claim (FHIR R4 unless named): element → (system, codes).
# A system of "" means the element is a bare FHIR ``code`` whose system is implied.
VALUE_SETS: Mapping[str, tuple[str, frozenset[str]]] = {
    "Bundle.type": ("", _codes("collection")),
    "Condition.clinicalStatus": (CONDITION_CLINICAL, _codes("active", "resolved")),
    "Condition.category": (CONDITION_CATEGORY, _codes("problem-list-item")),
    "Condition.code": (SNOMED, frozenset(c.code for c in CONDITION_CODES.values())),
    "Condition.code.kind": (CONDITION_KIND_SYSTEM, frozenset(k.value for k in ConditionKind)),
    # RequestStatus and CarePlanIntent (required bindings)
    "CarePlan.status": ("", _codes("active", "completed", "revoked")),
    "CarePlan.intent": ("", _codes("plan")),
    "CarePlan.category": (PA_TEMPORARY_CODES, _codes("PhysicalActivity")),
    "ServiceRequest.status": ("", _codes("active", "completed")),
    "ServiceRequest.intent": ("", _codes("plan")),
    "ServiceRequest.category": (PA_TEMPORARY_CODES, _codes("PhysicalActivity")),
    "ServiceRequest.code": (SNOMED, _codes(EXERCISE_THERAPY.code)),
    # EventStatus
    "Procedure.status": ("", _codes("completed", "not-done")),
    "Procedure.code": (SNOMED, _codes(EXERCISE_THERAPY.code)),
    "Observation.status": ("", _codes("final")),
    "Observation.category": (OBSERVATION_CATEGORY, _codes("survey")),
    "Observation.code": (LOINC, _codes(PAIN_SEVERITY.code)),
    # UnitsOfTime
    "Timing.repeat.periodUnit": ("", _codes("d", "wk")),
}
