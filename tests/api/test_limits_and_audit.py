"""Per-client rate limits, the audit trail, request ids and cache headers."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from app.api.deps import get_now
from app.main import create_app
from app.settings import Settings
from tests.api.test_api import assert_problem
from tests.builders import condition, new_user, session
from tests.conftest import TODAY, Clock, new_key

REDIS_URL = "redis://127.0.0.1:6379/0"


def _app(database_url: str, clock: Clock, **settings: object) -> Iterator[FastAPI]:
    app = create_app(Settings(database_url=database_url, **settings))  # type: ignore[arg-type]
    app.dependency_overrides[get_now] = lambda: clock.now
    with TestClient(app):
        yield app


@pytest.fixture
def limited_app(database_url: str, service_clock: Clock) -> Iterator[FastAPI]:
    yield from _app(database_url, service_clock, rate_limit_per_minute=3)


# ---------------------------------------------------------------------------------------------
# Rate limits


def test_a_client_over_its_budget_gets_429_with_retry_after_and_nothing_is_stored(
    limited_app: FastAPI, clock: Clock
) -> None:
    key = new_key(limited_app.state.database)
    client = TestClient(limited_app, headers={"X-API-Key": key})
    clock.now = clock.now.replace(second=30)
    for _ in range(3):
        assert client.get("/v1/users").status_code == 200
    refused = client.post("/v1/users", json={"external_id": "late", "profile": {"age": 40}})
    problem = assert_problem(refused, 429)
    assert refused.headers["retry-after"] == "30"  # seconds left in this minute
    assert "3 requests" in problem["detail"]
    # Another client has its own budget; the refused create stored nothing.
    other = TestClient(limited_app, headers={"X-API-Key": new_key(limited_app.state.database)})
    assert other.get("/v1/users").status_code == 200
    clock.now += timedelta(seconds=31)  # the next minute: a fresh budget
    assert client.get("/v1/users").json()["total"] == 0


def test_the_budget_is_shared_through_redis_by_several_instances(
    database_url: str, service_clock: Clock
) -> None:
    service_clock.now = service_clock.now.replace(second=5)
    first, second = (
        _app(database_url, service_clock, rate_limit_per_minute=5, redis_url=REDIS_URL)
        for _ in range(2)
    )
    one, two = next(first), next(second)
    key = new_key(one.state.database)
    a = TestClient(one, headers={"X-API-Key": key})
    b = TestClient(two, headers={"X-API-Key": key})
    assert [a.get("/v1/ruleset").status_code for _ in range(3)] == [200] * 3
    assert [b.get("/v1/ruleset").status_code for _ in range(2)] == [200] * 2
    assert_problem(a.get("/v1/ruleset"), 429)
    assert_problem(b.get("/v1/ruleset"), 429)
    for app in (first, second):
        next(app, None)


def test_an_unreachable_redis_lets_requests_through_and_says_so_in_the_log(
    database_url: str, service_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    apps = _app(
        database_url, service_clock, rate_limit_per_minute=1, redis_url="redis://127.0.0.1:1/0"
    )
    app = next(apps)
    client = TestClient(app, headers={"X-API-Key": new_key(app.state.database)})
    with caplog.at_level(logging.WARNING, logger="ladderback.ratelimit"):
        assert [client.get("/v1/ruleset").status_code for _ in range(3)] == [200] * 3
    assert "Redis unavailable" in caplog.text
    next(apps, None)


def test_redis_is_reachable_here() -> None:
    """The shared-budget test needs the Redis this machine runs; fail loudly if it is gone."""
    assert redis.Redis.from_url(REDIS_URL).ping()


# ---------------------------------------------------------------------------------------------
# Audit trail


def test_each_access_to_a_users_data_leaves_an_audit_event(api: TestClient) -> None:
    rid = f"req-{uuid.uuid4().hex[:12]}"
    user_id = new_user(api, with_condition=condition())
    api.get(f"/v1/users/{user_id}", headers={"X-Request-ID": rid})
    api.post(f"/v1/users/{user_id}/recommendations")
    api.post(f"/v1/users/{user_id}/sessions", json=session(day=TODAY))
    assert_problem(
        api.get(f"/v1/users/{user_id}/sessions/00000000-0000-4000-8000-000000000000"), 404
    )  # not an access
    api.delete(f"/v1/users/{user_id}")

    events = api.get("/v1/audit-events", params={"limit": 100}).json()
    actions = [e["action"] for e in reversed(events["items"])]
    assert actions == [
        "create_user",
        "create_condition",
        "get_user",
        "create_user_recommendation",
        "log_session",
        "delete_user",
    ]
    assert {e["user_id"] for e in events["items"]} == {user_id}  # kept after the erasure
    read = next(e for e in events["items"] if e["action"] == "get_user")
    assert read["request_id"] == rid
    only = api.get("/v1/audit-events", params={"user_id": user_id}).json()
    assert only["total"] == 6


def test_a_client_sees_only_its_own_audit_trail(app: FastAPI, api: TestClient) -> None:
    new_user(api)
    other = TestClient(app, headers={"X-API-Key": new_key(app.state.database)})
    assert other.get("/v1/audit-events").json()["total"] == 0
    assert api.get("/v1/audit-events").json()["total"] == 1


def test_responses_with_user_data_are_never_cached(api: TestClient) -> None:
    user_id = new_user(api)
    for response in (
        api.get(f"/v1/users/{user_id}"),
        api.get("/v1/users/" + "00000000-0000-4000-8000-000000000000"),  # errors too
        api.get("/v1/audit-events"),
        api.post("/v1/recommendations", json={}),
    ):
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-request-id"]
    assert "cache-control" not in api.get("/v1/ruleset").headers


def test_a_request_id_that_is_not_a_plain_token_is_replaced(api: TestClient) -> None:
    response = api.get("/v1/users", headers={"X-Request-ID": "evil\tvalue with spaces"})
    assert response.headers["x-request-id"] != "evil\tvalue with spaces"
    assert len(response.headers["x-request-id"]) == 32


def test_failed_key_attempts_spend_a_budget_of_their_own(limited_app: FastAPI) -> None:
    guesser = TestClient(limited_app, headers={"Authorization": "Bearer lb_000000000000_x"})
    statuses = [guesser.get("/v1/users").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_a_write_whose_audit_event_fails_is_rolled_back_with_it(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = new_user(api, with_condition=condition())

    def broken(*_: object) -> None:
        raise OperationalError("INSERT INTO audit_event", {}, Exception("disk full"))

    monkeypatch.setattr("app.api.deps.record", broken)
    url = f"/v1/users/{user_id}/sessions"
    assert_problem(api.post(url, json=session(day=TODAY)), 503)
    monkeypatch.undo()
    assert api.get(url).json()["total"] == 0  # the session went with its audit event


def test_a_hanging_redis_costs_one_slow_request_not_every_request(
    database_url: str, service_clock: Clock
) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        apps = _app(database_url, service_clock, rate_limit_per_minute=1, redis_url=url)
        app = next(apps)
        client = TestClient(app, headers={"X-API-Key": new_key(app.state.database)})
        started = time.perf_counter()
        assert [client.get("/v1/ruleset").status_code for _ in range(10)] == [200] * 10
        assert time.perf_counter() - started < 3  # one 0.5 s timeout, then Redis rests
        next(apps, None)
