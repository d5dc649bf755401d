"""Application logs carry no health data and no keys, whatever happens in a full flow."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.deps import get_catalog
from tests.builders import condition, exercise_result, new_user, session
from tests.conftest import TODAY, Clock

MARKER = "member-PRIVATE-4242"


def test_a_full_flow_logs_no_health_data_and_no_key(
    app: FastAPI, api: TestClient, api_key: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.set_day(TODAY - timedelta(days=3))
    with caplog.at_level(logging.DEBUG):
        user_id = new_user(
            api,
            external_id=MARKER,
            with_condition=condition(red_flags=[], side="left", kind="sciatica"),
        )
        rec = api.post(f"/v1/users/{user_id}/recommendations").json()
        done = [exercise_result(exercise_id="sciatic-slider-supine", pain_during=4)]
        logged = api.post(
            f"/v1/users/{user_id}/sessions",
            json=session(day=clock.now.date(), exercises=done, pain_before=6),
        ).json()
        api.patch(f"/v1/users/{user_id}/sessions/{logged['id']}", json={"next_day_pain": 7})
        api.post(f"/v1/users/{user_id}/recommendations/{rec['id']}/replay")
        api.post(f"/v1/users/{user_id}/sessions", json={"date": "2026-13-45", "pain": True})
        api.patch(
            f"/v1/users/{user_id}/conditions/00000000-0000-4000-8000-000000000000",
            json={"red_flags": ["saddle_numbness"]},
        )
        api.delete(f"/v1/users/{user_id}")
        # A crash inside a route, with health data in the exception's message.
        app.dependency_overrides[get_catalog] = _crash
        try:
            crashing = TestClient(app, raise_server_exceptions=False, headers=api.headers)
            crashing.post("/v1/recommendations", json={"profile": {"age": 40}})
        finally:
            del app.dependency_overrides[get_catalog]
    # Only the service's own loggers: the test client's request log is not the service's.
    ours = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "unhandled error" in ours  # the crash was logged ...
    for secret in (api_key, api_key.split("_")[-1], MARKER, "saddle_numbness", "sciatic-slider"):
        assert secret not in ours  # ... without anything from the request or the key
    assert "pain" not in ours.lower()


def _crash() -> None:
    raise RuntimeError("pain_before=6 for member-PRIVATE-4242 with saddle_numbness")
