"""CDS Hooks 2.0: discovery, the patient-view service (stored and prefetched patients, red
flags, flares), feedback, and the EHR's signed tokens. Keys are made in the test."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from app.api.deps import IDEMPOTENCY_KEY_PATTERN, get_now
from app.db.models import CdsCard, CdsFeedback, CdsTokenUse, IdempotencyRecord
from app.db.session import Database
from app.main import create_app
from app.services.cds import hook_instance_key
from app.services.cds_auth import KeySets, add_issuer
from app.services.clients import create_client
from app.settings import Settings
from tests.api.test_api import assert_problem
from tests.api.test_users import _cli
from tests.builders import condition, exercise_result, new_user, session
from tests.conftest import Clock

SERVICE = "/cds-services/ladderback-next-session"
AUDIENCE = "http://testserver" + SERVICE
PatientId = str


def _no_nulls(value: Any, where: str = "$") -> None:
    """CDS Hooks JSON holds no null, and no empty string, list or object but `cards`."""
    assert value is not None, f"null at {where}"
    if isinstance(value, dict):
        assert value or where == "$", f"empty object at {where}"
        for key, item in value.items():
            if not (key == "cards" and item == []):
                _no_nulls(item, f"{where}.{key}")
    elif isinstance(value, list):
        assert value, f"empty list at {where}"
        for i, item in enumerate(value):
            _no_nulls(item, f"{where}[{i}]")
    elif isinstance(value, str):
        assert value, f"empty string at {where}"


def _public_jwk(private_key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@dataclass
class Ehr:
    """An EHR with its own key pair, registered as an issuer for one clinic (tenant)."""

    issuer: str
    key: Any
    kid: str
    alg: str
    clock: Clock
    client_id: str = ""
    api: TestClient | None = None
    server: Any = None
    used: list[str] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_public_jwk(self.key, self.kid, self.alg)]}

    def token(self, *, aud: str = AUDIENCE, lifetime: int = 300, **changes: Any) -> str:
        now = int(self.clock.now.timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": aud,
            "iat": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
        }
        claims.update(changes)
        claims = {k: v for k, v in claims.items() if v is not None}
        headers = {"kid": self.kid, "typ": "JWT"}
        return jwt.encode(claims, self.key, algorithm=self.alg, headers=headers)

    def headers(self, **token_changes: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**token_changes)}"}


def _clinic(database: Database, app: FastAPI, clock: Clock, alg: str = "ES384") -> Ehr:
    with database.transaction() as db:
        info, api_key = create_client(db, "Clinic", datetime.now(UTC))
    key = ec.generate_private_key(ec.SECP384R1()) if alg == "ES384" else _rsa()
    ehr = Ehr(f"https://ehr-{uuid.uuid4().hex[:8]}.example/fhir", key, "key-1", alg, clock)
    with database.transaction() as db:
        add_issuer(db, info.id, ehr.issuer, datetime.now(UTC), jwks=ehr.jwks())
    ehr.client_id = info.id
    ehr.api = TestClient(app, headers={"Authorization": f"Bearer {api_key}"})
    return ehr


def _rsa() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def ehr(database: Database, app: FastAPI, clock: Clock) -> Ehr:
    return _clinic(database, app, clock)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def _call(
    client: TestClient,
    ehr: Ehr,
    patient: PatientId,
    *,
    prefetch: dict[str, Any] | None = None,
    hook_instance: str | None = None,
    **token_changes: Any,
) -> Any:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": hook_instance or str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": patient},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return client.post(SERVICE, json=body, headers=ehr.headers(**token_changes))


def _cards(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    _no_nulls(body)
    cards: list[dict[str, Any]] = body["cards"]
    for card in cards:
        assert 0 < len(card["summary"]) < 140
        assert card["source"]["label"]
        assert card["indicator"] in ("info", "warning", "critical")
    return cards


def _registered(ehr: Ehr, patient: PatientId, **condition_changes: Any) -> str:
    assert ehr.api is not None
    return new_user(ehr.api, external_id=patient, with_condition=condition(**condition_changes))


# --- discovery -------------------------------------------------------------------------------


def test_discovery_describes_the_patient_view_service_with_its_prefetch(
    client: TestClient,
) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    body = response.json()
    _no_nulls(body)
    [service] = body["services"]
    assert service["hook"] == "patient-view"
    assert service["id"] == "ladderback-next-session"
    assert service["title"]
    assert service["description"]
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "72514-3" in service["prefetch"]["painScores"]
    assert "{{context.patientId}}" in service["prefetch"]["conditions"]


# --- the service -----------------------------------------------------------------------------


def test_a_registered_patient_gets_the_next_session_from_stored_history(
    client: TestClient, ehr: Ehr
) -> None:
    assert ehr.api is not None
    user_id = _registered(ehr, "ehr-1001", kind="sciatica", side="left")
    cards = _cards(_call(client, ehr, "ehr-1001"))  # no prefetch: the history is stored
    [card] = cards
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Sciatica")
    assert "| Exercise | Dose | Change | Why |" in card["detail"]
    stored = ehr.api.get(f"/v1/users/{user_id}/recommendations").json()
    assert stored["total"] == 1  # the card is a recommendation issued, and kept
    names = [e["name"] for e in stored["items"][0]["recommendation"]["exercises"]]
    assert names
    assert all(name in card["detail"] for name in names)
    events = ehr.api.get("/v1/audit-events", params={"user_id": user_id}).json()["items"]
    assert "cds.patient-view" in [e["action"] for e in events]


def test_a_retried_hook_instance_gets_the_first_answer_and_stores_nothing_new(
    client: TestClient, ehr: Ehr
) -> None:
    assert ehr.api is not None
    user_id = _registered(ehr, "ehr-1002")
    instance = str(uuid.uuid4())
    first = _cards(_call(client, ehr, "ehr-1002", hook_instance=instance))
    again = _cards(_call(client, ehr, "ehr-1002", hook_instance=instance))  # a new token
    assert again == first
    assert ehr.api.get(f"/v1/users/{user_id}/recommendations").json()["total"] == 1
    other = _cards(_call(client, ehr, "ehr-1002"))
    assert other[0]["uuid"] != first[0]["uuid"]


def test_red_flags_give_one_critical_referral_card_and_no_exercise(
    client: TestClient, ehr: Ehr
) -> None:
    _registered(ehr, "ehr-1003", red_flags=["saddle_numbness"])
    [card] = _cards(_call(client, ehr, "ehr-1003"))
    assert card["indicator"] == "critical"
    assert "refer" in card["summary"].lower()
    assert "saddle numbness" in card["detail"]
    assert "No exercise is prescribed" in card["detail"]
    assert "| Exercise |" not in card["detail"]


def test_a_flare_adds_a_warning_card_and_nothing_is_progressed(
    client: TestClient, ehr: Ehr, clock: Clock
) -> None:
    assert ehr.api is not None
    user_id = _registered(ehr, "ehr-1004", onset=date(2026, 11, 1))
    clock.set_day(date(2026, 11, 20))
    first = ehr.api.post(f"/v1/users/{user_id}/recommendations").json()
    done = [
        exercise_result(
            exercise_id=e["exercise_id"],
            dose={k: v for k, v in e["dose"].items() if v is not None},
            slot=e["slot"],
            pain_during=8,
        )
        for e in first["recommendation"]["exercises"]
    ]
    logged = ehr.api.post(
        f"/v1/users/{user_id}/sessions",
        json=session(day=date(2026, 11, 20), exercises=done, recommendation_id=first["id"]),
    )
    assert logged.status_code == 201, logged.text
    clock.set_day(date(2026, 11, 22))
    cards = _cards(_call(client, ehr, "ehr-1004"))
    indicators = [c["indicator"] for c in cards]
    assert "warning" in indicators
    assert indicators[-1] == "info"
    warning = next(c for c in cards if c["indicator"] == "warning")
    assert "flared" in warning["summary"]
    assert "progressed" not in cards[-1]["summary"]


def test_a_registered_patient_without_an_active_condition_gets_no_cards(
    client: TestClient, ehr: Ehr
) -> None:
    assert ehr.api is not None
    new_user(ehr.api, external_id="ehr-1005")
    assert _cards(_call(client, ehr, "ehr-1005")) == []


def _prefetch(
    *,
    birth: str | None = "1980-05-17",
    snomed: str = "23056005",
    pain: int | None = 6,
    clinical_status: str = "active",
) -> dict[str, Any]:
    condition_resource = {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical_status,
                }
            ]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": snomed}]},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": "2026-10-20",
    }
    observations = []
    if pain is not None:
        observations.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
                    "subject": {"reference": "Patient/p1"},
                    "effectiveDateTime": "2026-11-23T09:30:00Z",
                    "valueInteger": pain,
                }
            }
        )
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "p1"}
    if birth is not None:
        patient["birthDate"] = birth
    return {
        "patient": patient,
        "conditions": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": condition_resource}],
        },
        "painScores": {"resourceType": "Bundle", "type": "searchset", "entry": observations},
    }


def test_an_unregistered_patient_is_answered_from_the_prefetch_and_nothing_is_stored(
    client: TestClient, ehr: Ehr, database: Database
) -> None:
    assert ehr.api is not None
    screening, card = _cards(_call(client, ehr, "p1", prefetch=_prefetch()))
    # Nobody asked this patient the red-flag questions: that comes first, as a warning.
    assert screening["indicator"] == "warning"
    assert "Red flags not screened" in screening["summary"]
    assert "saddle numbness" in screening["detail"]
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Sciatica")
    assert "Assumed" in card["detail"]
    assert "No session history" in card["detail"]
    assert ehr.api.get("/v1/users").json()["total"] == 0
    with database.transaction(write=False) as db:
        stored = db.exec(select(CdsCard).where(CdsCard.id == card["uuid"])).one()
    assert stored.user_id is None
    assert stored.recommendation_id is None


def test_the_prefetch_decides_the_condition_and_its_pain(client: TestClient, ehr: Ehr) -> None:
    posture = _cards(_call(client, ehr, "p1", prefetch=_prefetch(snomed="43029002")))
    assert posture[-1]["summary"].startswith("Poor posture")
    refuted = _prefetch()
    refuted["conditions"]["entry"][0]["resource"]["verificationStatus"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "refuted",
            }
        ]
    }
    assert _cards(_call(client, ehr, "p1", prefetch=refuted)) == []
    # Generic back pain does not say which protocol fits: nothing to say.
    assert _cards(_call(client, ehr, "p1", prefetch=_prefetch(snomed="279039007"))) == []
    assert _cards(_call(client, ehr, "p1", prefetch=_prefetch(clinical_status="resolved"))) == []
    assert _cards(_call(client, ehr, "p1", prefetch=_prefetch(pain=None))) == []
    assert _cards(_call(client, ehr, "p1", prefetch=_prefetch(birth=None))) == []


def test_partial_fhir_dates_are_read_and_impossible_ones_are_refused(
    client: TestClient, ehr: Ehr
) -> None:
    partial = _prefetch(birth="1980")
    partial["conditions"]["entry"][0]["resource"]["onsetDateTime"] = "2026-10"
    cards = _cards(_call(client, ehr, "p1", prefetch=partial))
    assert cards[-1]["summary"].startswith("Sciatica")
    # Born some day in 2013: the youngest reading is 12, under the rules' ages.
    assert _cards(_call(client, ehr, "p1", prefetch=_prefetch(birth="2013"))) == []
    impossible = _prefetch()
    impossible["conditions"]["entry"][0]["resource"]["onsetDateTime"] = "2026-02-30"
    field = "prefetch.conditions.entry[0].resource.onsetDateTime"
    assert_problem(_call(client, ehr, "p1", prefetch=impossible), 422, field)
    assert_problem(_call(client, ehr, "p1", prefetch=_prefetch(birth="1980-13")), 422)
    overflow = _prefetch()
    score = overflow["painScores"]["entry"][0]["resource"]
    del score["valueInteger"]
    score["valueQuantity"] = {"value": 12345.5}
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": "p1"},
        "prefetch": overflow,
    }
    # Valid JSON that no float holds: parsed as infinity.
    text = json.dumps(body).replace("12345.5", "1e400")
    headers = {**ehr.headers(), "Content-Type": "application/json"}
    field = "prefetch.painScores.entry[0].resource.valueQuantity.value"
    assert_problem(client.post(SERVICE, content=text, headers=headers), 422, field)


def test_prefetch_keys_the_ehr_had_no_data_for_give_no_cards(client: TestClient, ehr: Ehr) -> None:
    empty = {"patient": None, "conditions": None, "painScores": None}
    assert _cards(_call(client, ehr, "p1", prefetch=empty)) == []


def test_an_unregistered_patient_without_the_prefetch_gets_412(
    client: TestClient, ehr: Ehr
) -> None:
    problem = assert_problem(_call(client, ehr, "p1"), 412, "prefetch")
    assert "painScores" in problem["detail"]
    partial = _prefetch()
    del partial["painScores"]
    assert_problem(_call(client, ehr, "p1", prefetch=partial), 412, "prefetch")
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    assert_problem(_call(client, ehr, "p1", prefetch={**_prefetch(), "patient": outcome}), 412)


def test_a_malformed_prefetch_is_a_422_naming_the_field(client: TestClient, ehr: Ehr) -> None:
    bad = _prefetch()
    bad["painScores"]["entry"][0]["resource"]["valueInteger"] = "six"
    assert_problem(
        _call(client, ehr, "p1", prefetch=bad),
        422,
        "prefetch.painScores.entry[0].resource.valueInteger",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("valueInteger", 11),
        ("valueInteger", -1),
        ("valueInteger", 6.5),
        ("valueQuantity", {"value": 11}),
        ("valueQuantity", {"value": -1}),
        ("valueQuantity", {"value": 6.5}),
    ],
)
def test_a_pain_score_off_the_scale_is_a_422_naming_it_never_skipped(
    client: TestClient, ehr: Ehr, field: str, value: object
) -> None:
    """0-10 whole numbers only, however the score is sent: a skipped 11 would silently
    plan from an older score, or from none."""
    bad = _prefetch()
    resource = bad["painScores"]["entry"][0]["resource"]
    del resource["valueInteger"]
    resource[field] = value
    path = "prefetch.painScores.entry[0].resource." + (
        "valueInteger" if field == "valueInteger" else "valueQuantity.value"
    )
    assert_problem(_call(client, ehr, "p1", prefetch=bad), 422, path)
    # The same score on the scale is read.
    resource[field] = 7 if field == "valueInteger" else {"value": 7}
    assert _call(client, ehr, "p1", prefetch=bad).status_code == 200


def test_a_prefetched_patient_other_than_the_context_patient_is_refused(
    client: TestClient, ehr: Ehr
) -> None:
    """The prefetch is read as the chart's patient only when it is that patient."""
    other = _prefetch()
    other["patient"]["id"] = "p2"
    assert_problem(_call(client, ehr, "p1", prefetch=other), 422, "prefetch.patient.id")
    nameless = _prefetch()
    del nameless["patient"]["id"]
    assert_problem(_call(client, ehr, "p1", prefetch=nameless), 422, "prefetch.patient.id")
    # Conditions and pain scores about someone else are refused too, naming the reference.
    foreign = _prefetch()
    foreign["conditions"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/p2"}
    field = "prefetch.conditions.entry[0].resource.subject.reference"
    assert_problem(_call(client, ehr, "p1", prefetch=foreign), 422, field)
    foreign = _prefetch()
    foreign["painScores"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/p2"}
    field = "prefetch.painScores.entry[0].resource.subject.reference"
    assert_problem(_call(client, ehr, "p1", prefetch=foreign), 422, field)
    # An absolute reference to the same patient is the same patient.
    absolute = _prefetch()
    subject = {"reference": "https://ehr.example/fhir/Patient/p1"}
    absolute["painScores"]["entry"][0]["resource"]["subject"] = subject
    assert _call(client, ehr, "p1", prefetch=absolute).status_code == 200


def test_a_prefetched_date_off_the_calendar_is_a_422_naming_it(
    client: TestClient, ehr: Ehr
) -> None:
    """Dates read from the EHR are held to the range the REST contract accepts."""
    old = _prefetch()
    old["conditions"]["entry"][0]["resource"]["onsetDateTime"] = "0001-01-01T00:00:00+14:00"
    field = "prefetch.conditions.entry[0].resource.onsetDateTime"
    assert_problem(_call(client, ehr, "p1", prefetch=old), 422, field)


def test_a_clinic_never_sees_another_clinics_patient(
    client: TestClient, database: Database, app: FastAPI, clock: Clock
) -> None:
    north, south = _clinic(database, app, clock), _clinic(database, app, clock)
    _registered(south, "shared-7", red_flags=["saddle_numbness"])
    # North's EHR asks about the same id: South's patient is not North's, so North is
    # asked for a prefetch (412), never shown South's referral.
    assert_problem(_call(client, north, "shared-7"), 412)
    [card] = _cards(_call(client, south, "shared-7"))
    assert card["indicator"] == "critical"


def test_a_hook_instance_serves_one_call_only(client: TestClient, ehr: Ehr, clock: Clock) -> None:
    _registered(ehr, "ehr-1006")
    instance = str(uuid.uuid4())
    assert _call(client, ehr, "ehr-1006", hook_instance=instance).status_code == 200
    other_patient = _call(client, ehr, "p1", prefetch=_prefetch(), hook_instance=instance)
    assert_problem(other_patient, 409, "hookInstance")
    # Past the retry window, the same call is no longer a retry, and still not a new call.
    clock.set_day(date(2026, 11, 26))
    assert_problem(_call(client, ehr, "ehr-1006", hook_instance=instance), 409, "hookInstance")


def test_without_a_public_url_cds_calls_are_refused(
    database: Database, database_url: str, clock: Clock
) -> None:
    # The audience must never come from the Host header, which the caller chooses.
    bare = create_app(Settings(database_url=database_url))
    bare.dependency_overrides[get_now] = lambda: clock.now
    ehr = _clinic(database, bare, clock)
    with TestClient(bare) as client:
        assert client.get("/cds-services").status_code == 200
        problem = assert_problem(_call(client, ehr, "p1", prefetch=_prefetch()), 503)
        assert "LADDERBACK_PUBLIC_URL" in problem["detail"]


def test_wrong_hook_and_unknown_service_are_refused(client: TestClient, ehr: Ehr) -> None:
    body = {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
    }
    assert_problem(client.post(SERVICE, json=body, headers=ehr.headers()), 422, "hook")
    other = "/cds-services/something-else"
    body["hook"] = "patient-view"
    response = client.post(other, json=body, headers=ehr.headers(aud="http://testserver" + other))
    assert_problem(response, 404)


# --- feedback --------------------------------------------------------------------------------


def _feedback(client: TestClient, ehr: Ehr, items: list[dict[str, Any]]) -> Any:
    url = SERVICE + "/feedback"
    return client.post(
        url, json={"feedback": items}, headers=ehr.headers(aud=AUDIENCE + "/feedback")
    )


def test_feedback_on_a_card_is_stored_once(
    client: TestClient, ehr: Ehr, database: Database
) -> None:
    assert ehr.api is not None
    user_id = _registered(ehr, "ehr-2001")
    [card] = _cards(_call(client, ehr, "ehr-2001"))
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {
            "reason": {"system": "http://example.org/reasons", "code": "seen", "display": "Seen"},
            "userComment": "Plan agreed in clinic.",
        },
        "outcomeTimestamp": "2026-11-24T10:05:31Z",
    }
    first = _feedback(client, ehr, [item])
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "stored": 1}
    assert _feedback(client, ehr, [item]).json() == {"received": 1, "stored": 0}
    with database.transaction(write=False) as db:
        [row] = db.exec(select(CdsFeedback).where(CdsFeedback.card_id == card["uuid"])).all()
    assert row.outcome == "overridden"
    assert row.user_comment == "Plan agreed in clinic."
    assert row.override_reason == {
        "system": "http://example.org/reasons",
        "code": "seen",
        "display": "Seen",
    }
    events = ehr.api.get("/v1/audit-events", params={"user_id": user_id}).json()["items"]
    assert "cds.feedback" in [e["action"] for e in events]
    # The service's own URL as the audience is accepted for feedback too.
    again = {**item, "outcomeTimestamp": "2026-11-24T11:00:00Z", "outcome": "accepted"}
    url = SERVICE + "/feedback"
    response = client.post(url, json={"feedback": [again]}, headers=ehr.headers())
    assert response.json() == {"received": 1, "stored": 1}
    # A far offset is kept as the same moment in UTC.
    late = {**item, "outcomeTimestamp": "2026-11-24T23:30:00-14:00", "outcome": "accepted"}
    assert _feedback(client, ehr, [late]).json() == {"received": 1, "stored": 1}
    with database.transaction(write=False) as db:
        stamps = db.exec(
            select(CdsFeedback.outcome_at).where(CdsFeedback.card_id == card["uuid"])
        ).all()
    latest = max(s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps)
    assert latest == datetime(2026, 11, 25, 13, 30, tzinfo=UTC)


def test_feedback_on_an_unknown_or_foreign_card_is_refused(
    client: TestClient, database: Database, app: FastAPI, clock: Clock
) -> None:
    north, south = _clinic(database, app, clock), _clinic(database, app, clock)
    _registered(south, "ehr-2002")
    [card] = _cards(_call(client, south, "ehr-2002"))
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-24T10:00:00Z"}
    assert_problem(_feedback(client, north, [item]), 422, "feedback[0].card")
    unknown = {**item, "card": str(uuid.uuid4())}
    assert_problem(_feedback(client, south, [unknown]), 422, "feedback[0].card")
    suggestion = {**item, "acceptedSuggestions": [{"id": "not-one"}]}
    assert_problem(_feedback(client, south, [suggestion]), 422, "feedback[0].acceptedSuggestions")
    naive = {**item, "outcomeTimestamp": "2026-11-24T10:00:00"}
    assert_problem(_feedback(client, south, [naive]), 422, "feedback[0].outcomeTimestamp")
    # Valid RFC 3339, but the offset pushes the moment off the calendar in UTC: a 422 naming
    # the field, never a 500.
    for edge in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1850-06-01T00:00:00Z"):
        off = {**item, "outcomeTimestamp": edge}
        assert_problem(_feedback(client, south, [off]), 422, "feedback[0].outcomeTimestamp")
    # A NUL character cannot be stored (PostgreSQL): refused by the schema, never a 500.
    nul = {**item, "outcome": "overridden", "overrideReason": {"userComment": "a\u0000b"}}
    field = "feedback[0].overrideReason.userComment"
    assert_problem(_feedback(client, south, [nul]), 422, field)
    assert_problem(_feedback(client, south, [{**item, "card": "\u0000"}]), 422, "feedback[0].card")


def test_erasing_a_user_erases_their_cards_and_feedback(
    client: TestClient, ehr: Ehr, database: Database
) -> None:
    assert ehr.api is not None
    user_id = _registered(ehr, "ehr-2003")
    [card] = _cards(_call(client, ehr, "ehr-2003"))
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-24T10:00:00Z"}
    assert _feedback(client, ehr, [item]).status_code == 200
    assert ehr.api.delete(f"/v1/users/{user_id}").status_code == 204
    with database.transaction(write=False) as db:
        assert db.exec(select(CdsCard).where(CdsCard.id == card["uuid"])).first() is None
        assert db.exec(select(CdsFeedback).where(CdsFeedback.card_id == card["uuid"])).all() == []


# --- tokens ----------------------------------------------------------------------------------


def _refused(response: Any) -> None:
    problem = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert problem["detail"] == "The bearer token was refused."


def test_a_valid_token_is_accepted_and_an_rs384_issuer_too(
    client: TestClient, database: Database, app: FastAPI, clock: Clock
) -> None:
    for alg in ("ES384", "RS384"):
        ehr = _clinic(database, app, clock, alg)
        assert _call(client, ehr, "p1", prefetch=_prefetch()).status_code == 200


def test_a_forged_token_is_refused(client: TestClient, ehr: Ehr, clock: Clock) -> None:
    # Signed by another key under the registered kid.
    impostor = Ehr(ehr.issuer, ec.generate_private_key(ec.SECP384R1()), ehr.kid, "ES384", clock)
    _refused(_call(client, impostor, "p1", prefetch=_prefetch()))
    # A token with its payload altered after signing.
    head, payload, signature = ehr.token().split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["jti"] = str(uuid.uuid4())  # every other claim still valid
    altered = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
    }
    headers = {"Authorization": f"Bearer {head}.{altered}.{signature}"}
    _refused(client.post(SERVICE, json=body, headers=headers))


def test_an_expired_token_is_refused(client: TestClient, ehr: Ehr, clock: Clock) -> None:
    now = int(clock.now.timestamp())
    _refused(_call(client, ehr, "p1", prefetch=_prefetch(), iat=now - 900, exp=now - 600))


def test_a_replayed_jti_is_refused(client: TestClient, ehr: Ehr, database: Database) -> None:
    token = ehr.token()
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": _prefetch(),
    }
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post(SERVICE, json=body, headers=headers).status_code == 200
    _refused(client.post(SERVICE, json=body, headers=headers))
    with database.transaction(write=False) as db:
        assert db.exec(select(CdsTokenUse).where(CdsTokenUse.issuer == ehr.issuer)).all()


def test_a_wrong_audience_is_refused(client: TestClient, ehr: Ehr) -> None:
    for aud in (
        "http://testserver/cds-services",
        "http://testserver/cds-services/other-service",
        "https://testserver" + SERVICE,
        AUDIENCE + "/",
    ):
        _refused(_call(client, ehr, "p1", prefetch=_prefetch(), aud=aud))


@pytest.mark.parametrize(
    "changes",
    [
        {"jti": None},
        {"exp": None},
        {"iat": None},
        {"aud": None},
        {"iss": "https://unknown.example/fhir"},
        {"lifetime": 7200},  # longer than the accepted lifetime
    ],
    ids=["no-jti", "no-exp", "no-iat", "no-aud", "unknown-iss", "too-long"],
)
def test_tokens_missing_a_required_claim_or_from_strangers_are_refused(
    client: TestClient, ehr: Ehr, changes: dict[str, Any]
) -> None:
    _refused(_call(client, ehr, "p1", prefetch=_prefetch(), **changes))


def test_a_token_issued_in_the_future_is_refused(
    client: TestClient, ehr: Ehr, clock: Clock
) -> None:
    now = int(clock.now.timestamp())
    _refused(_call(client, ehr, "p1", prefetch=_prefetch(), iat=now + 600, exp=now + 900))


def test_unsigned_and_shared_secret_tokens_are_refused(client: TestClient, ehr: Ehr) -> None:
    now = int(ehr.clock.now.timestamp())
    claims = {"iss": ehr.issuer, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": _prefetch(),
    }
    unsigned = jwt.encode({**claims, "jti": "a"}, None, algorithm="none", headers={"kid": ehr.kid})
    # The classic confusion: an HMAC keyed with the issuer's public key, which anyone can
    # read. PyJWT will not make one, so it is made by hand.
    public_pem = ehr.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = {"alg": "HS384", "typ": "JWT", "kid": ehr.kid}
    signing_input = ".".join(
        jwt.utils.base64url_encode(json.dumps(part).encode()).decode()
        for part in (head, {**claims, "jti": "b"})
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha384).digest()
    forged_hmac = signing_input + "." + jwt.utils.base64url_encode(mac).decode()
    for token in (unsigned, forged_hmac, "not-a-jwt", ""):
        _refused(client.post(SERVICE, json=body, headers={"Authorization": f"Bearer {token}"}))
    _refused(client.post(SERVICE, json=body))  # no token at all


def test_a_refused_call_does_nothing(client: TestClient, ehr: Ehr) -> None:
    assert ehr.api is not None
    user_id = _registered(ehr, "ehr-3001")
    _refused(_call(client, ehr, "ehr-3001", aud="http://elsewhere.example" + SERVICE))
    assert ehr.api.get(f"/v1/users/{user_id}/recommendations").json()["total"] == 0


class _KeySetServer:
    """A JWK Set published over HTTP, as an EHR publishes its keys; it counts the fetches
    and can be made to fail."""

    def __init__(self, jwks: Callable[[], dict[str, Any]]) -> None:
        served = jwks
        self.fetches = 0
        self.failing = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                if outer.failing:
                    self.send_error(503)
                    return
                body = json.dumps(served()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def published_ehr(database: Database, clock: Clock) -> Iterator[Ehr]:
    with database.transaction() as db:
        info, _ = create_client(db, "Clinic with a JWKS URL", datetime.now(UTC))
    ehr = Ehr(
        "https://published.example/" + uuid.uuid4().hex[:8],
        ec.generate_private_key(ec.SECP384R1()),
        "k1",
        "ES384",
        clock,
    )
    server = _KeySetServer(ehr.jwks)
    with database.transaction() as db:
        add_issuer(db, info.id, ehr.issuer, datetime.now(UTC), jwks_url=server.url)
    ehr.client_id = info.id
    ehr.server = server
    yield ehr
    server.close()


@contextmanager
def _key_sets(app: FastAPI, refetch_seconds: int) -> Iterator[None]:
    """The app's key sets, fresh, with this pause between forced fetches."""
    kept = app.state.cds_key_sets
    app.state.cds_key_sets = KeySets(300, refetch_seconds=refetch_seconds)
    try:
        yield
    finally:
        app.state.cds_key_sets = kept


def test_keys_published_at_a_url_are_fetched_and_a_rotated_key_is_picked_up(
    client: TestClient, published_ehr: Ehr, app: FastAPI
) -> None:
    ehr = published_ehr
    # No pause between forced fetches here (30 s by default), so the test need not wait.
    with _key_sets(app, refetch_seconds=0):
        assert _call(client, ehr, "p1", prefetch=_prefetch()).status_code == 200
        # The EHR rotates: a new key under a new kid, published at the same URL.
        ehr.key, ehr.kid = ec.generate_private_key(ec.SECP384R1()), "k2"
        assert _call(client, ehr, "p1", prefetch=_prefetch()).status_code == 200
        # A kid it never published is still refused.
        key = ec.generate_private_key(ec.SECP384R1())
        stranger = Ehr(ehr.issuer, key, "k3", "ES384", ehr.clock)
        _refused(_call(client, stranger, "p1", prefetch=_prefetch()))


def test_an_unreachable_key_server_is_not_asked_again_at_once(
    client: TestClient, published_ehr: Ehr, app: FastAPI
) -> None:
    published_ehr.server.failing = True
    with _key_sets(app, refetch_seconds=30):
        for _ in range(3):  # made-up kids cannot turn us against the EHR's key server
            _refused(_call(client, published_ehr, "p1", prefetch=_prefetch()))
    assert published_ehr.server.fetches == 1


def test_cds_responses_are_not_cached(client: TestClient, ehr: Ehr) -> None:
    response = _call(client, ehr, "p1", prefetch=_prefetch())
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/cds-services").headers.get("Cache-Control") != "no-store"


def test_tokens_and_prefetched_data_stay_out_of_the_logs(
    client: TestClient, ehr: Ehr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    token = ehr.token(aud="http://wrong.example")
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": _prefetch(birth="1961-02-03"),
    }
    client.post(SERVICE, json=body, headers={"Authorization": f"Bearer {token}"})
    client.post(SERVICE, json=body, headers=ehr.headers())
    text = caplog.text
    assert token not in text
    assert token.split(".")[1] not in text
    assert "1961-02-03" not in text


def test_issuers_are_checked_when_registered(database: Database, clock: Clock) -> None:
    with database.transaction() as db:
        info, _ = create_client(db, "Clinic", datetime.now(UTC))
    ehr = Ehr("https://check.example/" + uuid.uuid4().hex[:8], _rsa(), "r1", "RS384", clock)
    private = json.loads(jwt.get_algorithm_by_name("RS384").to_jwk(ehr.key))
    now = datetime.now(UTC)
    with database.transaction() as db:
        with pytest.raises(ValueError, match="private key"):
            add_issuer(db, info.id, ehr.issuer, now, jwks={"keys": [{**private, "kid": "r1"}]})
        with pytest.raises(ValueError, match="kid"):
            add_issuer(
                db, info.id, ehr.issuer, now, jwks={"keys": [_public_jwk(ehr.key, "", "RS384")]}
            )
        with pytest.raises(ValueError, match="either"):
            add_issuer(db, info.id, ehr.issuer, now)
        weak = Ehr(
            "weak",
            rsa.generate_private_key(public_exponent=65537, key_size=1024),
            "w1",
            "RS384",
            clock,
        )
        with pytest.raises(ValueError, match="2048"):
            add_issuer(db, info.id, weak.issuer, now, jwks=weak.jwks())
        with pytest.raises(ValueError, match="https"):
            add_issuer(db, info.id, ehr.issuer, now, jwks_url="http://ehr.example/jwks.json")
        add_issuer(db, info.id, ehr.issuer, now, jwks=ehr.jwks())
        with pytest.raises(ValueError, match="already"):
            add_issuer(db, info.id, ehr.issuer, now, jwks=ehr.jwks())


def test_the_cli_registers_lists_and_removes_an_issuer(
    database: Database, database_url: str, clock: Clock, tmp_path: Path
) -> None:
    with database.transaction() as db:
        info, _ = create_client(db, "Clinic via CLI", datetime.now(UTC))
    ehr = Ehr(f"https://cli.example/{uuid.uuid4().hex[:8]}", _rsa(), "c1", "RS384", clock)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(ehr.jwks()))
    added = _cli(database_url, "cds-issuers", "add", info.id, ehr.issuer, "--jwks-file", str(keys))
    assert added.returncode == 0, added.stderr
    listed = _cli(database_url, "cds-issuers", "list")
    assert f"{ehr.issuer}  client {info.id}  keys c1" in listed.stdout
    again = _cli(database_url, "cds-issuers", "add", info.id, ehr.issuer, "--jwks-file", str(keys))
    assert again.returncode == 2
    assert "already registered" in again.stderr
    assert _cli(database_url, "cds-issuers", "remove", ehr.issuer).returncode == 0
    assert ehr.issuer not in _cli(database_url, "cds-issuers", "list").stdout
    unknown = _cli(
        database_url, "cds-issuers", "add", str(uuid.uuid4()), "x", "--jwks-url", "https://x"
    )
    assert unknown.returncode == 1


def test_a_hook_call_with_a_second_credential_is_refused(
    client: TestClient, ehr: Ehr, database: Database, app: FastAPI, clock: Clock
) -> None:
    """A CDS call presents the EHR's token alone, once: an API key beside it, or a second
    Authorization header, is refused rather than one of them chosen."""
    _registered(ehr, "ehr-3001")
    other = _clinic(database, app, clock)
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": "ehr-3001"},
    }
    token = ehr.headers()["Authorization"]
    with database.transaction() as db:
        _, api_key = create_client(db, "Another app", datetime.now(UTC))
    doubled = [
        [("Authorization", token), ("X-API-Key", api_key)],
        [("Authorization", token), ("Authorization", other.headers()["Authorization"])],
        [("Authorization", other.headers()["Authorization"]), ("Authorization", token)],
    ]
    for headers in doubled:
        response = client.post(SERVICE, json=body, headers=headers)
        assert_problem(response, 401)
        assert "more than one credential" in response.json()["detail"]
    # The token alone still works (a refused call did not spend its jti).
    assert client.post(SERVICE, json=body, headers=[("Authorization", token)]).status_code == 200


def test_an_apps_idempotency_key_never_collides_with_an_ehrs_call(
    client: TestClient, ehr: Ehr
) -> None:
    """The REST and CDS interfaces keep their idempotency keys apart: an app of the same
    tenant sending ``cds-hooks:<hookInstance>`` (or anything else) first does not make the
    EHR's call a 409 or a replay."""
    assert ehr.api is not None
    user_id = _registered(ehr, "ehr-3002")
    instance = str(uuid.uuid4())
    url = f"/v1/users/{user_id}/recommendations"
    for key in (f"cds-hooks:{instance}", f"cds-hooks{instance}", instance):
        made = ehr.api.post(url, headers={"Idempotency-Key": key})
        assert made.status_code == 201, made.text
    # The stored form of a hook call's key has a space: the header refuses it.
    spaced = ehr.api.post(url, headers={"Idempotency-Key": hook_instance_key(instance)})
    assert_problem(spaced, 422, "header.Idempotency-Key")
    _cards(_call(client, ehr, "ehr-3002", hook_instance=instance))


@given(instance=st.from_regex(r"^[!-~]{1,64}$", fullmatch=True))
def test_no_key_the_rest_header_admits_is_a_hook_calls_key(instance: str) -> None:
    assert re.fullmatch(IDEMPOTENCY_KEY_PATTERN, hook_instance_key(instance)) is None


def test_a_call_kept_under_the_earlier_key_form_still_replays_and_a_rest_key_never_does(
    client: TestClient, ehr: Ehr, database: Database
) -> None:
    """Calls answered before the namespaces were parted sit under ``cds-hooks:<id>`` for a
    day: a retry of the same call replays them; a REST key of that form is never replayed."""
    assert ehr.api is not None
    user_id = _registered(ehr, "ehr-3003")
    instance = str(uuid.uuid4())
    first = _cards(_call(client, ehr, "ehr-3003", hook_instance=instance))
    with database.transaction() as db:
        row = db.exec(
            select(IdempotencyRecord).where(IdempotencyRecord.key == hook_instance_key(instance))
        ).one()
        row.key = f"cds-hooks:{instance}"
        db.add(row)
    assert _cards(_call(client, ehr, "ehr-3003", hook_instance=instance)) == first
    assert ehr.api.get(f"/v1/users/{user_id}/recommendations").json()["total"] == 1
    # An app's key of the earlier form, on another request, is not the EHR's call.
    other = str(uuid.uuid4())
    made = ehr.api.post(
        f"/v1/users/{user_id}/recommendations", headers={"Idempotency-Key": f"cds-hooks:{other}"}
    )
    assert made.status_code == 201
    cards = _cards(_call(client, ehr, "ehr-3003", hook_instance=other))
    assert cards[0]["uuid"] != first[0]["uuid"]
