"""Every kind of bad input gets a problem+json answer naming what is wrong, and stores
nothing: checked against the stored resources, not only the stateless route."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.schemas import RECOMMENDATION_REQUEST_EXAMPLE
from tests.api.test_api import assert_problem
from tests.builders import condition, exercise_result, new_user, session
from tests.conftest import TODAY

GOOD_SESSION = session(day=TODAY)


def _with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(GOOD_SESSION))
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


BAD_SESSIONS = [
    pytest.param(_with(("pain_before",), "3"), "pain_before", id="string-for-number"),
    pytest.param(_with(("pain_before",), True), "pain_before", id="boolean-for-number"),
    pytest.param(_with(("pain_before",), 11), "pain_before", id="pain-above-10"),
    pytest.param(_with(("exercises", 0, "effort"), -1), "exercises[0].effort", id="effort-below-0"),
    pytest.param(
        _with(("exercises", 0, "prescribed", "sets"), 2.5),
        "exercises[0].prescribed.sets",
        id="fraction-for-whole-number",
    ),
    pytest.param(_with(("mood",), "fine"), "mood", id="unknown-field"),
    pytest.param(
        _with(("exercises", 0, "extra"), 1), "exercises[0].extra", id="unknown-nested-field"
    ),
    pytest.param(_with(("date",), "2026-13-01"), "date", id="impossible-date"),
    pytest.param(_with(("date",), "24/11/2026"), "date", id="date-not-iso"),
    pytest.param(_with(("date",), 20261124), "date", id="number-for-date"),
    pytest.param(_with(("date",), "2027-01-01"), "date", id="date-after-today"),
    pytest.param(
        _with(("exercises",), [exercise_result()] * 41), "exercises", id="too-many-exercises"
    ),
    pytest.param(
        _with(("exercises", 0, "exercise_id"), "x" * 81),
        "exercises[0].exercise_id",
        id="too-long-string",
    ),
    pytest.param(
        _with(("exercises", 0, "exercise_id"), "moon-walk"),
        "exercises[0].exercise_id",
        id="unknown-exercise",
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD_SESSIONS)
def test_a_bad_session_is_a_problem_naming_the_field_and_stores_nothing(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    user_id = new_user(api, with_condition=condition())
    url = f"/v1/users/{user_id}/sessions"
    assert_problem(api.post(url, json=body, headers={"Idempotency-Key": "k"}), 422, field)
    assert api.get(url).json()["total"] == 0
    # The key was not used up by the refusal.
    assert api.post(url, json=GOOD_SESSION, headers={"Idempotency-Key": "k"}).status_code == 201


def test_an_oversized_body_is_413_and_stores_nothing(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition())
    url = f"/v1/users/{user_id}/sessions"
    huge = json.dumps({**GOOD_SESSION, "padding": "x" * 300_000})
    response = api.post(url, content=huge, headers={"content-type": "application/json"})
    assert_problem(response, 413)
    assert api.get(url).json()["total"] == 0


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"external_id=a", "application/x-www-form-urlencoded", 415),
        (b"[]", "application/json", 422),
        (b"null", "application/json", 422),
    ],
    ids=["unparsable", "not-json", "array", "null"],
)
def test_a_malformed_body_is_a_problem_and_stores_nothing(
    api: TestClient, raw: bytes, content_type: str, status: int
) -> None:
    response = api.post("/v1/users", content=raw, headers={"content-type": content_type})
    assert_problem(response, status)
    assert api.get("/v1/users").json()["total"] == 0


def test_a_too_long_history_is_refused(api: TestClient) -> None:
    request = {
        "profile": {"age": 40},
        "condition": condition(),
        "history": [session(day=TODAY)] * 201,
    }
    assert_problem(api.post("/v1/recommendations", json=request), 422, "history")


def test_page_sizes_are_capped(api: TestClient) -> None:
    user_id = new_user(api)
    for url in ("/v1/users", f"/v1/users/{user_id}/sessions", "/v1/audit-events"):
        assert_problem(api.get(url, params={"limit": 101}), 422, "query.limit")
        assert_problem(api.get(url, params={"offset": 10**7}), 422, "query.offset")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"X-API-Key": ""}],
    ids=["no-key", "bad-key", "empty-key"],
)
def test_a_bad_key_is_401_and_stores_nothing(
    app: FastAPI, api: TestClient, headers: dict[str, str]
) -> None:
    anonymous = TestClient(app, headers=headers)
    made = anonymous.post("/v1/users", json={"external_id": "x", "profile": {"age": 40}})
    assert_problem(made, 401)
    assert api.get("/v1/users").json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [RECOMMENDATION_REQUEST_EXAMPLE, {"profile": {"age": "forty"}}],
    ids=["valid", "invalid"],
)
def test_the_key_is_checked_before_the_body_of_a_stateless_request(
    app: FastAPI, body: dict[str, Any]
) -> None:
    # Bodies of this route are validated in one pass from the bytes; a caller without a
    # valid key still learns nothing about its body's fields.
    anonymous = TestClient(app, headers={"Authorization": "Bearer nope"})
    assert_problem(anonymous.post("/v1/recommendations", json=body), 401)


def test_a_stateless_body_validated_in_one_pass_answers_as_before(api: TestClient) -> None:
    good = api.post("/v1/recommendations", json=RECOMMENDATION_REQUEST_EXAMPLE)
    assert good.status_code == 200
    bad = {**RECOMMENDATION_REQUEST_EXAMPLE, "history": [{"date": "2026-02-30"}]}
    problem = assert_problem(api.post("/v1/recommendations", json=bad), 422)
    assert [e["field"] for e in problem["errors"]] == ["history[0].date"]
    malformed = api.post(
        "/v1/recommendations", content=b'{"profile":', headers={"Content-Type": "application/json"}
    )
    assert_problem(malformed, 400)
