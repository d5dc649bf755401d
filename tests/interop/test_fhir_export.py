"""``GET /v1/users/{user_id}/fhir``: a user's record as a FHIR R4 Bundle, through the API.

The bundle is checked as an EHR would read it: parsed and validated by ``fhir.resources``
(R4B), every reference resolved inside the bundle, every code checked against the value set
``app.interop.terminology.VALUE_SETS`` declares for its element (the library checks no
bindings), and the clinical content compared with what was logged.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import pickle
import re
import signal
import time
import typing
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import jsonschema_rs
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir_core.types import Code as CodeMarker
from pydantic import BaseModel

from app.api.in_flight import ClientSlots
from app.api.routes.fhir import MAX_PAGE_SESSIONS
from app.api.schemas import DoseOut
from app.db.session import Database
from app.domain.catalog import Catalog
from app.domain.types import ConditionKind
from app.errors import (
    AppError,
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    TooManyInFlight,
    TooManyRequests,
)
from app.interop.narrative import dose_words
from app.interop.terminology import (
    CONDITION_CODES,
    CONDITION_KIND_SYSTEM,
    EXERCISE_THERAPY,
    LOINC,
    PAIN_SEVERITY,
    VALUE_SETS,
)
from app.services.clients import authenticate
from app.services.fhir_export import export_user
from app.services.fhir_pages import ExportProcesses
from tests.api.test_api import assert_problem
from tests.builders import (
    condition,
    flag_active_episode,
    new_user,
    performed_as_prescribed,
    session,
)
from tests.conftest import TODAY, Clock, new_key
from tests.long_record import seed_long_record

DAY0 = date(2026, 11, 2)
TODAY_NOON = datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC)
FHIR_JSON = "application/fhir+json"


# ---------------------------------------------------------------------------------------------
# Reading a bundle


def export(api: TestClient, user_id_or_link: str, **params: Any) -> Any:
    """The export of a user (by id), or the page a ``next`` link names."""
    linked = user_id_or_link.startswith("/")
    path = user_id_or_link if linked else f"/v1/users/{user_id_or_link}/fhir"
    response = api.get(path, params=params or None)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    return response


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def url(resource: dict[str, Any]) -> str:
    return f"urn:uuid:{resource['id']}"


def references(value: Any) -> Iterator[str]:
    """Every ``Reference.reference`` anywhere in a JSON document."""
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


@dataclass(frozen=True)
class EmittedCode:
    """A code the bundle emits, with each path its element can be named by: from the
    resource (``ServiceRequest.status``) and from an enclosing data type
    (``Timing.repeat.periodUnit``). ``system`` is "" for a bare FHIR ``code``."""

    paths: tuple[str, ...]
    system: str
    code: str


def _is_code(annotation: Any) -> bool:
    """Whether a field's type is the FHIR primitive ``code`` (or a list of them)."""
    if typing.get_origin(annotation) is Annotated:
        return any(isinstance(m, CodeMarker) for m in annotation.__metadata__)
    return any(_is_code(arg) for arg in typing.get_args(annotation))


def emitted_codes(value: Any, paths: tuple[str, ...] = ()) -> Iterator[EmittedCode]:
    """Every Coding and every bare ``code`` in a parsed FHIR model, with its element paths."""
    if isinstance(value, list):
        for item in value:
            yield from emitted_codes(item, paths)
        return
    if not isinstance(value, BaseModel):
        return
    kind = type(value)
    # A resource or a data type of its own (not a backbone element such as BundleEntry):
    # its elements may be named from it, as value sets for data types are.
    if kind.__module__.rsplit(".", 1)[-1] == kind.__name__.lower():
        paths = (*paths, kind.__name__)
    if isinstance(value, CodeableConcept):
        for coding in value.coding or []:
            yield EmittedCode(paths, coding.system or "", coding.code or "")
        return
    if isinstance(value, Coding):
        yield EmittedCode(paths, value.system or "", value.code or "")
        return
    for name, field in kind.model_fields.items():
        item = getattr(value, name)
        if item is None or name.endswith("__ext"):
            continue
        inner = tuple(f"{path}.{name}" for path in paths)
        if _is_code(field.annotation):
            for code in item if isinstance(item, list) else [item]:
                yield EmittedCode(inner, "", code)
        else:
            yield from emitted_codes(item, inner)


def value_set_of(code: EmittedCode) -> str | None:
    """The ``VALUE_SETS`` key that covers this code, or None.

    A key names an element (``Condition.code``); a coding may also fall under a key one
    segment longer (``Condition.code.kind``): a second value set of the same element, told
    apart by its system.
    """
    for path in code.paths:
        for key, (system, codes) in VALUE_SETS.items():
            second = code.system != "" and key.rsplit(".", 1)[0] == path
            if (key == path or second) and system == code.system and code.code in codes:
                return key
    return None


def uncovered_codes(bundle: Bundle) -> list[EmittedCode]:
    return [code for code in emitted_codes(bundle) if value_set_of(code) is None]


def validated(text: str) -> tuple[Bundle, dict[str, Any]]:
    """The bundle parsed by ``fhir.resources``, each entry by its own resource class, and
    written exactly as that class writes it (the service builds the JSON itself)."""
    bundle = Bundle.model_validate_json(text)
    document: dict[str, Any] = json.loads(text)
    assert json.loads(bundle.model_dump_json()) == document
    for entry in document["entry"]:
        resource = entry["resource"]
        model = get_fhir_model_class(resource["resourceType"])
        parsed = model.model_validate(resource)
        assert parsed.id == resource["id"]
        assert json.loads(parsed.model_dump_json()) == resource
        assert entry["fullUrl"] == url(resource)
    return bundle, document


def self_contained(document: dict[str, Any]) -> bool:
    full_urls = {e["fullUrl"] for e in document["entry"]}
    return len(full_urls) == len(document["entry"]) and set(references(document)) <= full_urls


def links(document: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in document.get("link", [])}


def which_pain(observation: dict[str, Any]) -> str:
    """Which of a session's pain scores an Observation's text names."""
    text: str = observation["code"]["text"]
    return next(w for w in ("morning", "before", "during", "after") if w in text)


def client_id_of(database: Database, key: str) -> str:
    with database.transaction(write=False) as db:
        return authenticate(db, key).client_id


# ---------------------------------------------------------------------------------------------
# Setting up a story through the API


def recommend(api: TestClient, user_id: str) -> dict[str, Any]:
    response = api.post(f"/v1/users/{user_id}/recommendations")
    assert response.status_code == 201, response.text
    stored: dict[str, Any] = response.json()
    return stored


def log(api: TestClient, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/v1/users/{user_id}/sessions", json=body)
    assert response.status_code == 201, response.text
    logged: dict[str, Any] = response.json()
    return logged


@dataclass
class Story:
    user_id: str
    episode_id: str
    uncited: dict[str, Any]  # a recommendation no session followed
    first: dict[str, Any]
    second: dict[str, Any]  # the latest
    sessions: list[dict[str, Any]]  # oldest first


def tell_story(api: TestClient, clock: Clock) -> Story:
    """A strain on the left; three recommendations, the last two followed by three sessions:
    one of the first (all but its last exercise, one with an extra set, with next-morning
    pain), then one of the second (its last exercise skipped) and a missed one."""
    clock.set_day(DAY0, hour=8)
    user_id = new_user(api, with_condition=condition(onset=DAY0 - timedelta(days=30), side="left"))
    episode_id = api.get(f"/v1/users/{user_id}/conditions").json()["items"][0]["id"]
    uncited = recommend(api, user_id)
    clock.set_day(DAY0, hour=9)
    first = recommend(api, user_id)

    # The last exercise is left out of the log: its request is not what this session was based on.
    done = performed_as_prescribed(first["recommendation"], pain_during=1)[:-1]
    done[0]["pain_during"] = 3
    done[1]["performed"] = {**done[1]["prescribed"], "sets": done[1]["prescribed"]["sets"] + 1}
    one = log(
        api,
        user_id,
        session(
            day=DAY0, exercises=done, recommendation_id=first["id"], pain_before=2, pain_after=2
        ),
    )
    clock.set_day(DAY0 + timedelta(days=1), hour=7)
    morning = api.patch(f"/v1/users/{user_id}/sessions/{one['id']}", json={"next_day_pain": 1})
    assert morning.status_code == 200, morning.text

    clock.set_day(DAY0 + timedelta(days=2))
    second = recommend(api, user_id)
    assert second["recommendation"]["status"] == "ok", second
    done = performed_as_prescribed(second["recommendation"], pain_during=1)
    done[0]["pain_after"] = 1
    # Its last exercise is skipped: logged, but not carried out.
    done[-1].update(performed=None, completed=False, pain_during=None, pain_after=None)
    day2 = DAY0 + timedelta(days=2)
    two = log(
        api,
        user_id,
        session(day=day2, exercises=done, recommendation_id=second["id"], pain_before=2),
    )

    clock.set_day(DAY0 + timedelta(days=3))
    skipped = [
        {
            "exercise_id": e["exercise_id"],
            "prescribed": {k: v for k, v in e["dose"].items() if v is not None},
            "performed": None,
            "completed": False,
            "slot": e["slot"],
        }
        for e in second["recommendation"]["exercises"]
    ]
    missed = session(
        day=DAY0 + timedelta(days=3),
        exercises=skipped,
        recommendation_id=second["id"],
        completed=False,
        pain_before=3,
    )
    three = log(api, user_id, missed)
    clock.set_day(DAY0 + timedelta(days=4))
    return Story(user_id, episode_id, uncited, first, second, [one, two, three])


# ---------------------------------------------------------------------------------------------
# The acceptance test


def test_a_users_record_exports_as_a_valid_self_contained_fhir_bundle(
    api: TestClient, clock: Clock, database: Database, api_key: str, app: FastAPI
) -> None:
    story = tell_story(api, clock)
    response = export(api, story.user_id)
    bundle, document = validated(response.text)

    # The documented outline holds too (the contract run reaches this route only with 404s).
    operation = app.openapi()["paths"]["/v1/users/{user_id}/fhir"]["get"]
    documented = operation["responses"]["200"]["content"][FHIR_JSON]["schema"]
    jsonschema_rs.validator_for(documented).validate(document)
    assert document["type"] == "collection"

    # Self-contained: every reference is an entry's fullUrl.
    full_urls = {e["fullUrl"] for e in document["entry"]}
    assert len(full_urls) == len(document["entry"])
    cited = list(references(document))
    assert len(cited) > 30
    assert set(cited) <= full_urls, set(cited) - full_urls

    # Every code is in its element's declared value set, and every value set is exercised.
    codes = list(emitted_codes(bundle))
    assert uncovered_codes(bundle) == []
    assert {value_set_of(c) for c in codes} == set(VALUE_SETS)

    first_exercises = story.first["recommendation"]["exercises"]
    latest_exercises = story.second["recommendation"]["exercises"]
    counts = Counter(e["resource"]["resourceType"] for e in document["entry"])
    assert counts == {
        "Patient": 1,
        "Condition": 1,
        "CarePlan": 1,
        "ServiceRequest": len(first_exercises) + len(latest_exercises),
        "Procedure": 3,
        "Observation": 8,
    }
    order = [e["resource"]["resourceType"] for e in document["entry"]]
    kinds = ["Patient", "Condition", "CarePlan", "ServiceRequest", "Procedure", "Observation"]
    assert order == sorted(order, key=kinds.index)

    # The Patient is pseudonymous: the caller's own id, nothing else.
    (patient,) = resources(document, "Patient")
    assert set(patient) <= {"resourceType", "id", "identifier", "meta"}
    assert patient["id"] == story.user_id
    client_id = client_id_of(database, api_key)
    assert patient["identifier"] == [{"system": f"urn:uuid:{client_id}", "value": "member-1"}]

    (episode,) = resources(document, "Condition")
    assert episode["id"] == story.episode_id
    strain = CONDITION_CODES[ConditionKind.STRAIN]
    assert episode["code"]["coding"] == [
        {"system": strain.system, "code": strain.code, "display": strain.display},
        {"system": CONDITION_KIND_SYSTEM, "code": "strain", "display": "Back muscle strain"},
    ]
    assert episode["clinicalStatus"]["coding"][0]["code"] == "active"
    assert "verificationStatus" not in episode
    assert episode["onsetDateTime"] == (DAY0 - timedelta(days=30)).isoformat()
    assert "abatementDateTime" not in episode
    assert "left" in episode["note"][0]["text"]
    assert episode["subject"]["reference"] == url(patient)

    # The CarePlan is the latest recommendation; its activities are its exercises, in order.
    (plan,) = resources(document, "CarePlan")
    assert plan["status"] == "active"
    assert plan["intent"] == "plan"
    assert plan["addresses"] == [{"reference": url(episode)}]
    assert plan["created"] == story.second["created_at"]
    assert plan["period"] == {"start": story.second["recommendation"]["today"]}
    assert f"{len(latest_exercises)} exercises" in plan["description"]
    requests = {url(r): r for r in resources(document, "ServiceRequest")}
    activities = [requests[a["reference"]["reference"]] for a in plan["activity"]]
    assert [r["code"]["text"] for r in activities] == [e["name"] for e in latest_exercises]
    assert {r["status"] for r in activities} == {"active"}
    assert {r["authoredOn"] for r in activities} == {story.second["created_at"]}

    for request, exercise in zip(activities, latest_exercises, strict=True):
        dose = exercise["dose"]
        instruction = request["patientInstruction"]
        assert instruction.startswith(dose_words(DoseOut.model_validate(dose)))
        assert f"{dose['per_week']} days a week" in instruction
        assert exercise["reasons"][0]["message"] in instruction
        assert instruction.split(". ")[1].startswith(exercise["change"].capitalize())
        repeat = request["occurrenceTiming"]["repeat"]
        assert repeat == {
            "frequency": dose["per_week"] * dose["per_day"],
            "period": 1,
            "periodUnit": "wk",
        }
        assert request["code"]["coding"][0]["code"] == EXERCISE_THERAPY.code
        assert request["performer"] == [{"reference": url(patient)}]
        assert request["reasonReference"] == [{"reference": url(episode)}]

    # Older ServiceRequests: only those of the recommendation a session followed, completed.
    older = [r for u, r in requests.items() if u not in {url(a) for a in activities}]
    assert [r["code"]["text"] for r in older] == [e["name"] for e in first_exercises]
    assert {r["status"] for r in older} == {"completed"}
    assert {r["authoredOn"] for r in older} == {story.first["created_at"]}
    assert story.uncited["created_at"] not in {r["authoredOn"] for r in requests.values()}

    # Procedures, newest first, each based on the requests of the recommendation it followed.
    procedures = resources(document, "Procedure")
    one, two, three = story.sessions
    assert [p["id"] for p in procedures] == [three["id"], two["id"], one["id"]]
    assert [p["status"] for p in procedures] == ["not-done", "completed", "completed"]
    assert [p["performedDateTime"] for p in procedures] == [
        three["date"],
        two["date"],
        one["date"],
    ]
    based_on = [{b["reference"] for b in p["basedOn"]} for p in procedures]
    assert (
        based_on
        == [
            {url(a) for a in activities},  # missed: what it was meant to carry out
            {url(a) for a in activities[:-1]},  # the skipped exercise is not carried out
            {url(r) for r in older[:-1]},  # the unlogged exercise neither
        ]
    )
    for procedure in procedures:
        assert procedure["reasonReference"] == [{"reference": url(episode)}]
        assert procedure["code"]["coding"][0]["code"] == EXERCISE_THERAPY.code
    assert procedures[0]["note"][0]["text"].startswith("Session missed.")
    assert "not done" in procedures[0]["note"][0]["text"]
    done_first = procedures[2]["note"][0]["text"].split("; ")
    assert len(done_first) == len(first_exercises) - 1
    assert done_first[0].startswith(f"{first_exercises[0]['name']}: ")
    assert done_first[0].endswith(", as prescribed")
    more_sets = first_exercises[1]["dose"]["sets"] + 1
    assert done_first[1].startswith(f"{first_exercises[1]['name']}: {more_sets} sets")
    assert "(prescribed " in done_first[1]

    # Pain: before, highest during, after, next morning, as logged.
    pains = [
        (o["partOf"][0]["reference"], which_pain(o), o["valueInteger"], o["effectiveDateTime"])
        for o in resources(document, "Observation")
    ]
    on = {s["id"]: date.fromisoformat(s["date"]) for s in story.sessions}
    assert pains == [
        (f"urn:uuid:{three['id']}", "before", 3, on[three["id"]].isoformat()),
        (f"urn:uuid:{two['id']}", "before", 2, on[two["id"]].isoformat()),
        (f"urn:uuid:{two['id']}", "during", 1, on[two["id"]].isoformat()),
        (f"urn:uuid:{two['id']}", "after", 1, on[two["id"]].isoformat()),
        (f"urn:uuid:{one['id']}", "before", 2, on[one["id"]].isoformat()),
        (f"urn:uuid:{one['id']}", "during", 3, on[one["id"]].isoformat()),
        (f"urn:uuid:{one['id']}", "after", 2, on[one["id"]].isoformat()),
        (f"urn:uuid:{one['id']}", "morning", 1, (on[one["id"]] + timedelta(days=1)).isoformat()),
    ]
    for observation in resources(document, "Observation"):
        assert observation["status"] == "final"
        assert observation["code"]["coding"][0]["code"] == PAIN_SEVERITY.code
        assert observation["subject"] == {"reference": url(patient)}

    # The export is audited like every read of a user's data.
    events = api.get("/v1/audit-events", params={"user_id": story.user_id}).json()["items"]
    assert events[0]["action"] == "export_user_fhir"


def test_fewer_sessions_leave_out_the_requests_no_exported_session_follows(
    api: TestClient, clock: Clock
) -> None:
    story = tell_story(api, clock)
    _, document = validated(export(api, story.user_id, sessions=2).text)
    procedures = resources(document, "Procedure")
    assert [p["id"] for p in procedures] == [s["id"] for s in story.sessions[:0:-1]]
    requests = resources(document, "ServiceRequest")
    assert len(requests) == len(story.second["recommendation"]["exercises"])
    assert {r["status"] for r in requests} == {"active"}
    assert set(references(document)) <= {e["fullUrl"] for e in document["entry"]}


def test_the_code_check_fails_on_a_code_outside_its_value_set(
    api: TestClient, clock: Clock
) -> None:
    story = tell_story(api, clock)
    document = export(api, story.user_id).json()
    # fhir.resources accepts both (it checks no bindings): the walker must not.
    resources(document, "Procedure")[0]["status"] = "bogus"
    resources(document, "Condition")[0]["code"]["coding"][0]["system"] = "http://loinc.org"
    bundle = Bundle.model_validate(document)
    # paths[0] names the element from the Bundle, paths[1] from its resource.
    found = {(c.paths[1], c.system, c.code) for c in uncovered_codes(bundle)}
    strain = CONDITION_CODES[ConditionKind.STRAIN].code
    assert found == {("Procedure.status", "", "bogus"), ("Condition.code", LOINC, strain)}


# ---------------------------------------------------------------------------------------------
# Determinism, tenancy, edge cases


def test_the_same_data_gives_the_same_bundle_but_for_its_timestamp(
    api: TestClient, clock: Clock
) -> None:
    story = tell_story(api, clock)
    before = export(api, story.user_id).text
    clock.set_day(DAY0 + timedelta(days=9), hour=15)
    after = export(api, story.user_id).text
    stamp_before = json.loads(before)["timestamp"]
    stamp_after = json.loads(after)["timestamp"]
    assert stamp_before != stamp_after
    assert before.replace(stamp_before, stamp_after) == after

    # New data gives a new bundle id.
    clock.set_day(DAY0 + timedelta(days=9))
    path = f"/v1/users/{story.user_id}/sessions/{story.sessions[1]['id']}"
    assert api.patch(path, json={"next_day_pain": 2}).status_code == 200
    changed = json.loads(export(api, story.user_id).text)
    assert changed["id"] != json.loads(after)["id"]


def test_another_tenants_user_answers_404_like_a_missing_one(
    api: TestClient, app: FastAPI, database: Database
) -> None:
    user_id = new_user(api, with_condition=condition())
    other = TestClient(app, headers={"Authorization": f"Bearer {new_key(database)}"})
    theirs = assert_problem(other.get(f"/v1/users/{user_id}/fhir"), 404)
    missing = assert_problem(other.get(f"/v1/users/{uuid.uuid4()}/fhir"), 404)
    assert (theirs["type"], theirs["title"]) == (missing["type"], missing["title"])
    assert_problem(api.get(f"/v1/users/{uuid.uuid4()}/fhir"), 404)
    # The owner still can.
    export(api, user_id)


def test_a_red_flag_exports_a_referral_care_plan_with_no_exercises(
    api: TestClient, clock: Clock
) -> None:
    clock.set_day(DAY0)
    user_id = new_user(api, with_condition=condition())
    flag_active_episode(api, user_id, "saddle_numbness")
    decision = recommend(api, user_id)["recommendation"]
    assert decision["status"] == "refer"

    bundle, document = validated(export(api, user_id).text)
    assert uncovered_codes(bundle) == []
    (plan,) = resources(document, "CarePlan")
    assert "activity" not in plan
    assert resources(document, "ServiceRequest") == []
    assert "Referral before any exercise" in plan["description"]
    assert decision["referral"]["message"] in plan["note"][0]["text"]
    (condition_resource,) = resources(document, "Condition")
    notes = " ".join(n["text"] for n in condition_resource["note"])
    assert "saddle numbness" in notes


def test_a_user_with_no_recommendation_or_session_exports_patient_and_condition(
    api: TestClient,
) -> None:
    user_id = new_user(api, with_condition=condition(kind="sciatica"))
    bundle, document = validated(export(api, user_id).text)
    assert [e["resource"]["resourceType"] for e in document["entry"]] == ["Patient", "Condition"]
    assert uncovered_codes(bundle) == []
    assert set(references(document)) == {f"urn:uuid:{user_id}"}


def test_a_resolved_episode_is_resolved_and_its_plan_completed(
    api: TestClient, clock: Clock
) -> None:
    clock.set_day(DAY0)
    user_id = new_user(api, with_condition=condition())
    recommend(api, user_id)
    episode = api.get(f"/v1/users/{user_id}/conditions").json()["items"][0]
    api.patch(f"/v1/users/{user_id}/conditions/{episode['id']}", json={"status": "resolved"})
    bundle, document = validated(export(api, user_id).text)
    assert uncovered_codes(bundle) == []
    (condition_resource,) = resources(document, "Condition")
    assert condition_resource["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert condition_resource["abatementDateTime"] == DAY0.isoformat()
    assert resources(document, "CarePlan")[0]["status"] == "completed"
    assert {r["status"] for r in resources(document, "ServiceRequest")} == {"completed"}


@pytest.mark.parametrize("sessions", ["0", "501", "-1", "ten", "2.5"])
def test_the_sessions_bound_is_refused_with_a_problem_naming_it(
    api: TestClient, sessions: str
) -> None:
    user_id = new_user(api)
    response = api.get(f"/v1/users/{user_id}/fhir", params={"sessions": sessions})
    assert_problem(response, 422, "query.sessions")


# ---------------------------------------------------------------------------------------------
# Pages: a long record in bounded pieces


@pytest.fixture
def long_record(database: Database, api_key: str, catalog: Catalog) -> str:
    """This test's tenant's user with 45 sessions, one a day, each after its own
    recommendation (each cites ServiceRequests of its own)."""
    return seed_long_record(
        database, client_id_of(database, api_key), catalog, sessions=45, until=TODAY_NOON
    )


def list_sessions(api: TestClient, user_id: str) -> list[str]:
    """The user's session ids as the listing orders them (newest first)."""
    response = api.get(f"/v1/users/{user_id}/sessions", params={"limit": 100})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def all_pages(api: TestClient, user_id: str, **params: Any) -> list[dict[str, Any]]:
    pages = [validated(export(api, user_id, **params).text)[1]]
    while "next" in links(pages[-1]):
        pages.append(validated(export(api, links(pages[-1])["next"]).text)[1])
        assert len(pages) < 100
    return pages


def test_a_long_record_comes_in_bounded_self_contained_pages_linked_by_next(
    api: TestClient, long_record: str
) -> None:
    whole = list_sessions(api, long_record)
    pages = all_pages(api, long_record, sessions=20)
    assert len(pages) == 3
    # Together the pages hold every session once, newest first, as the listing orders them.
    procedures = [p["id"] for page in pages for p in resources(page, "Procedure")]
    assert procedures == whole
    assert [len(resources(page, "Procedure")) for page in pages] == [20, 20, 5]
    for number, page in enumerate(pages):
        assert self_contained(page), number
        assert len(resources(page, "Patient")) == 1
        assert len(resources(page, "Condition")) == 1
        # The CarePlan once, on the first page; every session's requests on its own page.
        assert len(resources(page, "CarePlan")) == (1 if number == 0 else 0)
        carried_out = [
            p for p in resources(page, "Procedure") if "No exercises" not in p["note"][0]["text"]
        ]
        assert carried_out
        assert all(p.get("basedOn") for p in carried_out)
        assert page["type"] == "collection"
    # A page's links: itself, and the next page unless it is the last, query kept.
    path = f"/v1/users/{long_record}/fhir"
    assert links(pages[0])["self"] == f"{path}?sessions=20"
    for page, following in itertools.pairwise(pages):
        assert links(page)["next"].startswith(f"{path}?sessions=20&cursor=")
        assert links(following)["self"] == links(page)["next"]
    assert set(links(pages[-1])) == {"self"}
    # The same resource on two pages (the latest recommendation's requests) is the same.
    seen: dict[str, Any] = {}
    for page in pages:
        for entry in page["entry"]:
            assert seen.setdefault(entry["fullUrl"], entry["resource"]) == entry["resource"]


def test_more_sessions_than_a_page_holds_come_a_page_at_a_time(
    api: TestClient, long_record: str
) -> None:
    """Up to 500 was one export before pages: such a client now gets the same sessions
    in pages of the largest size, each linking to the next with what it asked for."""
    pages = all_pages(api, long_record, sessions=100)
    assert [len(resources(page, "Procedure")) for page in pages] == [20, 20, 5]
    assert links(pages[0])["next"].startswith(f"/v1/users/{long_record}/fhir?sessions=100&")


def test_the_links_carry_only_what_the_page_was_asked_for(
    api: TestClient, long_record: str
) -> None:
    """A page is kept by the EHR: a token or anything else in the query must not be."""
    page = export(api, long_record, sessions=20, access_token="secret", other="x").json()
    for url in links(page).values():
        assert "secret" not in url
        assert "other" not in url
    assert links(page)["self"] == f"/v1/users/{long_record}/fhir?sessions=20"


def test_without_sessions_a_page_holds_the_largest_number(
    api: TestClient, long_record: str
) -> None:
    first = export(api, long_record).json()
    assert len(resources(first, "Procedure")) == MAX_PAGE_SESSIONS
    assert links(first)["next"].startswith(f"/v1/users/{long_record}/fhir?cursor=")


def test_a_session_logged_between_two_pages_shifts_nothing_on_the_next(
    api: TestClient, long_record: str, clock: Clock
) -> None:
    first = export(api, long_record, sessions=10).json()
    before = export(api, links(first)["next"]).json()
    # A new session, newest of all, and a late one dated into the second page's range.
    clock.set_day(TODAY_NOON.date(), hour=13)
    log(api, long_record, session(day=TODAY_NOON.date()))
    log(api, long_record, session(day=TODAY_NOON.date() - timedelta(days=3)))
    after = export(api, links(first)["next"]).json()
    assert resources(after, "Procedure") == resources(before, "Procedure")
    assert links(after)["next"] == links(before)["next"]
    # The new sessions are where the order puts them: on a first page read now.
    newest = resources(export(api, long_record, sessions=10).json(), "Procedure")
    assert newest[0]["performedDateTime"] == TODAY_NOON.date().isoformat()


def test_the_same_data_gives_the_same_later_page_but_for_its_timestamp(
    api: TestClient, long_record: str, clock: Clock
) -> None:
    next_page = links(export(api, long_record, sessions=5).json())["next"]
    before = export(api, next_page).text
    clock.set_day(TODAY_NOON.date() + timedelta(days=2), hour=9)
    after = export(api, next_page).text
    stamp_before, stamp_after = json.loads(before)["timestamp"], json.loads(after)["timestamp"]
    assert stamp_before != stamp_after
    assert before.replace(stamp_before, stamp_after) == after


def test_the_next_link_keeps_the_path_prefix_a_proxy_took_off(
    app: FastAPI, api_key: str, long_record: str
) -> None:
    behind_proxy = TestClient(
        app, root_path="/ladderback", headers={"Authorization": f"Bearer {api_key}"}
    )
    page = export(behind_proxy, long_record, sessions=15).json()
    path = f"/ladderback/v1/users/{long_record}/fhir"
    assert links(page)["self"] == f"{path}?sessions=15"
    assert links(page)["next"].startswith(f"{path}?sessions=15&cursor=")


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%%",
        _cursor("2026-11-20|2026-11-20T12:00:00+00:00"),  # no id
        _cursor("2026-11-20|2026-11-20T12:00:00+00:00|not-a-uuid"),
        _cursor("2026-11-20|2026-11-20T12:00:00|0b3c4a1e-2f5d-4c6e-8a7b-9d0e1f2a3b4c"),  # naive
        _cursor("2026-13-40|2026-11-20T12:00:00+00:00|0b3c4a1e-2f5d-4c6e-8a7b-9d0e1f2a3b4c"),
        # Moments with no UTC equivalent: they failed in the database, a 500.
        _cursor("9999-12-31|9999-12-31T23:59:59-23:59|0b3c4a1e-2f5d-4c6e-8a7b-9d0e1f2a3b4c"),
        _cursor("0001-01-01|0001-01-01T00:00:00+23:59|0b3c4a1e-2f5d-4c6e-8a7b-9d0e1f2a3b4c"),
        "x" * 201,
        "",
    ],
)
def test_a_cursor_that_is_not_well_formed_is_refused_naming_it(
    api: TestClient, cursor: str
) -> None:
    user_id = new_user(api, with_condition=condition())
    response = api.get(f"/v1/users/{user_id}/fhir", params={"cursor": cursor})
    problem = assert_problem(response, 422, "query.cursor")
    assert problem["type"] == "/problems/invalid-input"


def test_a_page_reads_the_cited_recommendations_exercises_not_their_whole_record(
    database: Database, api_key: str, catalog: Catalog
) -> None:
    client_id = client_id_of(database, api_key)
    user_id = seed_long_record(database, client_id, catalog, sessions=8, until=TODAY_NOON)
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(database.engine, "before_cursor_execute", seen)
    try:
        with database.transaction(write=False) as db:
            page = export_user(db, client_id, user_id, TODAY_NOON, 5)
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", seen)
    assert len(resources(page.bundle, "Procedure")) == 5
    reads = [s for s in statements if "FROM recommendation" in s]
    assert reads, statements
    # Never the stored inputs (ten times the answer); the whole answer of the latest only
    # (its CarePlan), of the others just their exercises, picked out by the database.
    assert not [s for s in reads if "recommendation.inputs" in s], reads
    whole_answer = re.compile(r"(?<!\()recommendation\.output\s*(,|FROM)")
    assert len([s for s in reads if whole_answer.search(s)]) == 1, reads


# ---------------------------------------------------------------------------------------------
# One client's exports cannot crowd out the others


def test_a_client_with_an_export_in_progress_is_told_to_retry_at_once(
    api: TestClient, app: FastAPI, database: Database, api_key: str
) -> None:
    user_id = new_user(api, with_condition=condition())
    export(api, user_id)  # the worker's export slots exist from the first export on
    slots: ClientSlots = app.state.fhir_export_slots
    client_id = client_id_of(database, api_key)
    assert slots.take(client_id)  # an export of this client, in progress
    try:
        response = api.get(f"/v1/users/{user_id}/fhir")
        problem = assert_problem(response, 429)
        assert problem["type"] == "/problems/too-many-in-flight"
        assert "as many FHIR export pages in progress" in problem["detail"]
        assert response.headers["Retry-After"] == "1"
        # Another client is not held up by it.
        other = TestClient(app, headers={"Authorization": f"Bearer {new_key(database)}"})
        theirs = new_user(other, with_condition=condition())
        export(other, theirs)
    finally:
        slots.give_back(client_id)
    export(api, user_id)
    assert slots.in_use(client_id) == 0


def test_an_export_process_that_died_while_idle_costs_no_page(
    api: TestClient, app: FastAPI
) -> None:
    user_id = new_user(api, with_condition=condition())
    export(api, user_id)
    processes: ExportProcesses = app.state.fhir_export_processes
    dead = processes.process_ids()
    for pid in dead:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not processes.broken() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes.broken()
    export(api, user_id)  # another process builds it: no 503 for a page nobody had begun
    assert set(processes.process_ids()).isdisjoint(dead)


@pytest.mark.parametrize(
    "error",
    [
        InvalidInput("query.cursor", "is not well-formed"),
        Conflict("external_id", "is taken"),
        NotFound("No such user."),
        TooManyRequests(600, 12),
        TooManyInFlight("FHIR export pages", 1),
        ServiceUnavailable("The database is busy.", retry_after=2, cause="lock timeout"),
        PreconditionFailed("prefetch.patient", "is missing"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_cross_from_an_export_process_intact(error: AppError) -> None:
    """Errors of a page reach the worker by pickling; one that could not be rebuilt broke
    the pool, failing every client's pages in flight."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.status, copy.detail, copy.errors, copy.headers) == (
        error.status,
        error.detail,
        error.errors,
        error.headers,
    )


# ---------------------------------------------------------------------------------------------
# Dose words


@pytest.mark.parametrize(
    ("dose", "words"),
    [
        (
            {"sets": 2, "reps": 10, "per_side": True, "rest_seconds": 30, "per_week": 3},
            "2 sets of 10 reps, each side, rest 30 s; 3 days a week",
        ),
        (
            {"sets": 1, "reps": 5, "hold_seconds": 10, "per_week": 1, "per_day": 2},
            "1 set of 5 reps, hold 10 s; 1 day a week, 2 times a day",
        ),
        (
            {"sets": 3, "duration_seconds": 45, "load_kg": 2.5, "per_week": 7},
            "3 sets of 45 s, with 2.5 kg; 7 days a week",
        ),
        (
            {"sets": 1, "duration_seconds": 300, "per_week": 5, "rest_seconds": 90},
            "1 set of 5 min, rest 90 s; 5 days a week",
        ),
    ],
)
def test_a_dose_reads_in_plain_words(dose: dict[str, Any], words: str) -> None:
    given = {
        "reps": None,
        "hold_seconds": None,
        "duration_seconds": None,
        "load_kg": None,
        "per_side": False,
        "rest_seconds": 0,
        "per_day": 1,
        **dose,
    }
    assert dose_words(DoseOut.model_validate(given)) == words
