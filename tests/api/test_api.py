"""The HTTP contract: what an integrating app sees."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.deps import get_catalog
from app.api.schemas import RECOMMENDATION_REQUEST_EXAMPLE
from app.main import create_app
from app.settings import Settings
from tests.conftest import TODAY


@pytest.fixture
def client(api: TestClient) -> TestClient:
    return api


def body(**changes: Any) -> dict[str, Any]:
    request = copy.deepcopy(RECOMMENDATION_REQUEST_EXAMPLE)
    request.update(changes)
    return request


DOSE = {"sets": 1, "reps": 10, "per_week": 5, "rest_seconds": 30}


def green_session(day: str, **changes: Any) -> dict[str, Any]:
    exercise = {
        "exercise_id": "sciatic-slider-supine",
        "prescribed": DOSE,
        "performed": DOSE,
        "pain_during": 0,
        "pain_after": 0,
        "effort": 4,
    }
    exercise.update(changes)
    return {"date": day, "pain_before": 2, "next_day_pain": 2, "exercises": [exercise]}


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert problem["status"] == status
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    return problem


# --- the decision ---------------------------------------------------------------------------


def test_two_green_sessions_progress_the_nerve_glide_with_a_reason(client: TestClient) -> None:
    history = [green_session("2026-11-19"), green_session("2026-11-21")]
    response = client.post("/v1/recommendations", json=body(history=history))
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    glide = next(e for e in data["exercises"] if e["exercise_id"] == "sciatic-slider-supine")
    assert glide["change"] == "progressed"
    assert glide["dose"]["reps"] > DOSE["reps"]
    assert glide["side"] == "left"
    codes = [r["code"] for r in glide["reasons"]]
    assert "two_green_sessions" in codes
    assert "progress_reps" in codes
    assert all(r["message"] and r["rule"] for r in glide["reasons"])
    assert data["trace"][0]["rule"] == "triage_red_flags"
    assert data["exercises"][0]["section"] == "warm_up"


def test_peripheralising_pain_stops_progression_and_steps_the_glide_down(
    client: TestClient,
) -> None:
    history = [
        green_session("2026-11-19"),
        green_session("2026-11-21", symptom_change="peripheralising", pain_during=4),
    ]
    data = client.post("/v1/recommendations", json=body(history=history)).json()
    assert all(e["change"] != "progressed" for e in data["exercises"])
    changed = [
        e
        for e in data["exercises"] + data["removed"]
        if e["previous_exercise_id"] == "sciatic-slider-supine"
    ]
    assert changed
    assert changed[0]["change"] in ("regressed", "substituted", "removed")
    assert "peripheralisation" in [r["code"] for r in changed[0]["reasons"]]
    assert data["clinician_review"]["required"] is True


def test_saddle_numbness_refers_with_no_exercise(client: TestClient) -> None:
    request = body()
    request["condition"]["red_flags"] = ["saddle_numbness"]
    data = client.post("/v1/recommendations", json=request).json()
    assert data["status"] == "refer"
    assert data["exercises"] == []
    assert data["referral"]["urgency"] == "emergency"
    assert data["referral"]["flags"] == ["saddle_numbness"]


def test_the_same_request_gives_the_same_answer(client: TestClient) -> None:
    first = client.post("/v1/recommendations", json=body()).json()
    second = client.post("/v1/recommendations", json=body()).json()
    assert first == second
    assert first["ruleset_version"] == client.get("/v1/ruleset").json()["ruleset_version"]


def test_today_defaults_to_the_service_clock(client: TestClient) -> None:
    request = body()
    del request["today"]
    assert client.post("/v1/recommendations", json=request).json()["today"] == TODAY.isoformat()


# --- strict input ---------------------------------------------------------------------------


def _set(request: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target: Any = request
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    target[keys[-1]] = value
    return request


BAD_INPUTS = [
    ("boolean for a number", "profile.age", True, "profile.age"),
    ("string for a number", "profile.age", "42", "profile.age"),
    ("fraction for a whole number", "profile.minutes_available", 30.5, "profile.minutes_available"),
    ("pain above 10", "condition.baseline_pain", 11, "condition.baseline_pain"),
    ("negative effort", "history.0.exercises.0.effort", -1, "history[0].exercises[0].effort"),
    ("number for a date", "condition.onset_date", 20261001, "condition.onset_date"),
    ("impossible date", "history.0.date", "2026-02-30", "history[0].date"),
    ("unknown condition", "condition.kind", "whiplash", "condition.kind"),
    ("unknown nested field", "profile.weight", 80, "profile.weight"),
    ("unknown top-level field", "user", "x", "user"),
    ("empty field name", "", 1, '""'),
    (
        "boolean as string",
        "condition.stenosis_like_symptoms",
        "yes",
        "condition.stenosis_like_symptoms",
    ),
    (
        "exercise id that is not a slug",
        "history.0.exercises.0.exercise_id",
        "Bird Dog!",
        "history[0].exercises[0].exercise_id",
    ),
    ("session in the future", "history.0.date", "2026-12-01", "history[0].date"),
    ("onset in the future", "condition.onset_date", "2027-01-01", "condition.onset_date"),
    (
        "unknown exercise",
        "history.0.exercises.0.exercise_id",
        "moon-walk",
        "history[0].exercises[0].exercise_id",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "field"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_is_a_422_problem_naming_the_field(
    client: TestClient, path: str, value: Any, field: str
) -> None:
    request = _set(body(), path, value)
    assert_problem(client.post("/v1/recommendations", json=request), 422, field)


def test_a_missing_field_is_named(client: TestClient) -> None:
    request = body()
    del request["condition"]["kind"]
    assert_problem(client.post("/v1/recommendations", json=request), 422, "condition.kind")


def test_too_long_a_history_is_refused(client: TestClient) -> None:
    history = [green_session(f"2026-{1 + i // 28:02d}-{1 + i % 28:02d}") for i in range(201)]
    assert_problem(client.post("/v1/recommendations", json=body(history=history)), 422, "history")


def test_malformed_json_is_a_400_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/recommendations", content=b'{"profile": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)


def test_an_oversized_body_is_a_413_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/recommendations", content=b" " * 300_000, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


def test_a_non_json_body_is_a_415_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/recommendations",
        content=b"age=4",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415)


def test_a_wrong_method_names_every_allowed_method(client: TestClient) -> None:
    for path, allowed in (
        ("/v1/users", "GET, POST"),
        ("/v1/users/" + "00000000-0000-4000-8000-000000000000", "DELETE, GET, PATCH"),
        ("/v1/recommendations", "POST"),
    ):
        response = client.put(path, json={})
        assert_problem(response, 405)
        assert response.headers["allow"] == allowed


def test_a_wrong_method_outside_the_contract_keeps_its_allow_header(client: TestClient) -> None:
    response = client.post("/docs", json={})
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize("key", ["none", "list[int]", "constrained-str"])
def test_an_unknown_field_is_named_as_sent(client: TestClient, key: str) -> None:
    response = client.post("/v1/users", json={"external_id": "a", "profile": {"age": 40, key: 1}})
    assert_problem(response, 422, f"profile.{key}")


def test_a_wrong_method_is_a_405_problem(client: TestClient) -> None:
    problem = assert_problem(client.delete("/v1/recommendations"), 405)
    assert problem["title"] == "Method not allowed"


# --- catalog --------------------------------------------------------------------------------


def test_exercises_can_be_filtered(client: TestClient) -> None:
    everything = client.get("/v1/exercises").json()
    assert everything["total"] >= 45
    sciatica = client.get("/v1/exercises", params={"condition": "sciatica"}).json()
    ids = {e["id"] for e in sciatica["items"]}
    assert "standing-hamstring-stretch" not in ids
    assert sciatica["total"] < everything["total"]
    stretches = client.get("/v1/exercises", params={"category": "static_stretch"}).json()
    assert stretches["items"]
    assert all(e["category"] == "static_stretch" for e in stretches["items"])
    bridge = client.get("/v1/exercises", params={"ladder": "glute-bridge"}).json()
    assert [e["level"] for e in bridge["items"]] == list(range(1, bridge["total"] + 1))
    no_kit = client.get("/v1/exercises", params={"equipment": ["mat"]}).json()
    with_band = client.get("/v1/exercises", params={"equipment": ["band"]}).json()
    assert "clamshell-band" not in {e["id"] for e in no_kit["items"]}
    assert "clamshell-band" in {e["id"] for e in with_band["items"]}
    page = client.get("/v1/exercises", params={"limit": 5, "offset": 5}).json()
    assert len(page["items"]) == 5
    assert page["items"][0]["id"] == everything["items"][5]["id"]


def test_an_exercise_has_instructions_bounds_and_a_time_estimate(client: TestClient) -> None:
    exercise = client.get("/v1/exercises/glute-bridge").json()
    assert exercise["ladder"] == "glute-bridge"
    assert exercise["level"] >= 1
    assert len(exercise["instructions"]) > 40
    assert len(exercise["cues"]) >= 2
    assert exercise["minutes_estimate"] > 0
    assert exercise["dose"]["sets"]["min"] <= exercise["dose"]["sets"]["max"]


def test_an_unknown_exercise_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/exercises/moon-walk"), 404)


def test_a_bad_filter_is_a_422_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/exercises", params={"condition": "flu"}), 422, "query.condition")
    assert_problem(client.get("/v1/exercises", params={"limit": 0}), 422, "query.limit")


def test_conditions_list_each_protocol(client: TestClient) -> None:
    protocols = client.get("/v1/conditions").json()
    assert {p["kind"] for p in protocols} == {"strain", "sciatica", "posture", "overuse"}
    for protocol in protocols:
        assert protocol["emphasis"]
        assert protocol["avoid"]
        assert len(protocol["phases"]) >= 2


def test_the_ruleset_lists_rules_thresholds_and_every_reason(client: TestClient) -> None:
    ruleset = client.get("/v1/ruleset").json()
    assert ruleset["rules"][0] == "triage_red_flags"
    # The whole rulebook, not only the progression rules: selection and scheduling too.
    assert {"exclude_contraindicated", "rest_between_loading_days", "ease_down"} <= set(
        ruleset["rules"]
    )
    assert [r["name"] for r in ruleset["rulebook"]] == ruleset["rules"]
    assert all(r["source"] and r["statement"] for r in ruleset["rulebook"])
    flare = next(s for s in ruleset["signals"] if s["name"] == "flare")
    assert "pain_acceptable_max" in flare["thresholds"]
    assert all(t["source"] for t in ruleset["thresholds"])
    assert "two_green_sessions" in ruleset["reason_codes"]


def test_health(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["exercises"] >= 45


def crashed_response(database_url: str, api_key: str) -> Any:
    """The answer to a request whose handling raises an unexpected error, with a message
    that must never reach the caller."""
    app = create_app(Settings(database_url=database_url))

    def broken_catalog() -> None:
        raise RuntimeError("secret internals: /srv/ladderback/app")

    app.dependency_overrides[get_catalog] = broken_catalog
    auth = {"Authorization": f"Bearer {api_key}"}
    with TestClient(app, raise_server_exceptions=False, headers=auth) as broken:
        return broken.post("/v1/recommendations", json=body())


def test_an_unexpected_failure_is_a_500_problem_that_discloses_nothing(
    database_url: str, api_key: str
) -> None:
    response = crashed_response(database_url, api_key)
    problem = assert_problem(response, 500)
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert problem["detail"] == "The server could not complete the request."


def _raw(
    app: FastAPI, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, bytes]:
    """Drive the ASGI app directly, with headers and chunking no HTTP client would send."""
    import asyncio

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/recommendations",
        "raw_path": b"/v1/recommendations",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if "body" in m)


def test_an_oversized_chunked_body_is_a_413_problem(app: FastAPI) -> None:
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    status, payload = _raw(app, headers, [b" " * 200_000, b" " * 200_000])
    assert status == 413
    assert b'"status":413' in payload


def test_a_non_numeric_content_length_is_a_400_problem(app: FastAPI) -> None:
    status, _ = _raw(
        app, [(b"content-type", b"application/json"), (b"content-length", b"ten")], [b"{}"]
    )
    assert status == 400


def test_a_chunked_body_within_the_limit_is_accepted(app: FastAPI, api_key: str) -> None:
    payload = json.dumps(body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"transfer-encoding", b"chunked"),
        (b"authorization", f"Bearer {api_key}".encode()),
    ]
    status, response = _raw(app, headers, [payload[:100], payload[100:]])
    assert status == 200, response


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_dates_far_from_today_are_refused_not_a_500(client: TestClient, day: str) -> None:
    assert_problem(client.post("/v1/recommendations", json=body(today=day)), 422, "today")


def test_a_nan_load_is_refused_with_its_field(client: TestClient) -> None:
    request = body()
    request["history"][0]["exercises"][0]["prescribed"]["load_kg"] = float("nan")
    raw = json.dumps(request)  # Python writes the non-standard NaN token, as some clients do
    response = client.post(
        "/v1/recommendations", content=raw, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "history[0].exercises[0].prescribed.load_kg"
    assert "finite" in problem["errors"][0]["message"]


def test_an_absurd_content_length_is_a_413_not_a_crash(app: FastAPI) -> None:
    status, _ = _raw(
        app, [(b"content-type", b"application/json"), (b"content-length", b"9" * 5000)], [b"{}"]
    )
    assert status == 413
