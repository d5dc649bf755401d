"""Concurrent writes against a real server: two uvicorn worker processes on one database.

Many session logs and idempotent retries for one user, sent at once from many threads,
must lose no write and store no duplicate, on SQLite (two processes writing one file) and
on PostgreSQL alike. The server runs with its real clock, so every session is dated before
today (UTC).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.service import Server, running_service

THREADS = 16
DOSE = {"sets": 1, "reps": 10, "per_week": 5, "rest_seconds": 30}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service with two worker processes on one database."""
    with running_service(tmp_path_factory.mktemp("concurrency"), workers=2) as service:
        yield service


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=THREADS * 2, max_keepalive_connections=THREADS * 2)
    with httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=30.0,
        limits=limits,
    ) as http:
        yield http


# ---------------------------------------------------------------------------------------------
# Helpers


def _check(server: Server, response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url} -> {response.status_code}: "
        f"{response.text}\n--- server log (tail) ---\n{server.log_tail()}"
    )
    body: dict[str, Any] = response.json()
    return body


def _yesterday() -> date:
    # Before the server's today (UTC) even if the date turns while the test runs.
    return datetime.now(UTC).date() - timedelta(days=1)


def _new_user(server: Server, client: httpx.Client) -> str:
    user = _check(
        server,
        client.post(
            "/v1/users",
            json={"external_id": f"member-{uuid.uuid4().hex}", "profile": {"age": 40}},
        ),
    )
    onset = _yesterday() - timedelta(days=365)
    _check(
        server,
        client.post(
            f"/v1/users/{user['id']}/conditions",
            json={"kind": "strain", "onset_date": onset.isoformat(), "baseline_pain": 5},
        ),
    )
    return str(user["id"])


def _session_body(i: int, *, days: int = 20) -> dict[str, Any]:
    """Session ``i``: a distinct body, its date one of ``days`` past days (≤ 12 per date)."""
    dose = {**DOSE, "reps": 5 + i}
    return {
        "date": (_yesterday() - timedelta(days=i % days)).isoformat(),
        "pain_before": i % 4,
        "next_day_pain": (i // 4) % 4,
        "exercises": [
            {
                "exercise_id": "bridge-hold",
                "prescribed": dose,
                "performed": dose,
                "pain_during": i % 3,
                "pain_after": 0,
                "effort": 3 + i % 4,
            }
        ],
    }


def _all_at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run the calls from ``THREADS`` threads, released together; results in call order."""
    go = threading.Event()

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        go.wait()
        return call()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(run, call) for call in calls]
        go.set()
        return [f.result() for f in futures]


def _listed(server: Server, client: httpx.Client, path: str) -> tuple[int, list[str]]:
    """The page's total and every id on all its pages."""
    ids: list[str] = []
    offset = 0
    while True:
        page = _check(server, client.get(path, params={"limit": 100, "offset": offset}), 200)
        ids.extend(item["id"] for item in page["items"])
        offset += 100
        if offset >= page["total"]:
            return int(page["total"]), ids


def _replayed(response: httpx.Response) -> bool:
    return response.headers.get("Idempotent-Replayed") == "true"


# ---------------------------------------------------------------------------------------------
# Tests


def test_concurrent_session_logs_lose_nothing_and_duplicate_nothing(
    server: Server, client: httpx.Client
) -> None:
    uid = _new_user(server, client)
    bodies = [_session_body(i) for i in range(60)]

    def log(body: dict[str, Any]) -> Callable[[], httpx.Response]:
        return lambda: client.post(f"/v1/users/{uid}/sessions", json=body)

    responses = _all_at_once([log(b) for b in bodies])

    created = [_check(server, r) for r in responses]
    ids = [c["id"] for c in created]
    assert len(set(ids)) == 60
    # Each response is the session it was sent for.
    assert [(c["date"], c["exercises"][0]["prescribed"]["reps"]) for c in created] == [
        (b["date"], b["exercises"][0]["prescribed"]["reps"]) for b in bodies
    ]
    total, listed = _listed(server, client, f"/v1/users/{uid}/sessions")
    assert total == 60
    assert len(listed) == 60
    assert sorted(listed) == sorted(ids)


def test_concurrent_retries_with_one_key_store_one_session(
    server: Server, client: httpx.Client
) -> None:
    uid = _new_user(server, client)
    body = _session_body(7)
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    def retry() -> httpx.Response:
        return client.post(f"/v1/users/{uid}/sessions", json=body, headers=headers)

    responses = _all_at_once([retry] * 30)

    ids = {_check(server, r)["id"] for r in responses}
    assert len(ids) == 1
    assert sum(_replayed(r) for r in responses) == 29
    assert {r.headers["Location"] for r in responses} == {f"/v1/users/{uid}/sessions/{ids.pop()}"}
    total, listed = _listed(server, client, f"/v1/users/{uid}/sessions")
    assert total == 1
    assert listed == [responses[0].json()["id"]]


def test_one_key_with_two_bodies_at_once_stores_one_and_refuses_the_other(
    server: Server, client: httpx.Client
) -> None:
    uid = _new_user(server, client)
    first, second = _session_body(1), _session_body(2)
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    def send(body: dict[str, Any]) -> Callable[[], httpx.Response]:
        return lambda: client.post(f"/v1/users/{uid}/sessions", json=body, headers=headers)

    calls = [send(first), send(second)] * 10
    responses = _all_at_once(calls)

    statuses = [r.status_code for r in responses]
    assert set(statuses) == {201, 422}, [
        r.text for r in responses if r.status_code not in (201, 422)
    ]
    # One body won the key: all its requests got the stored session, the other's got 422.
    winners = {i % 2 for i, s in enumerate(statuses) if s == 201}
    assert len(winners) == 1
    assert statuses.count(201) == 10
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    total, _ = _listed(server, client, f"/v1/users/{uid}/sessions")
    assert total == 1


def test_concurrent_idempotent_recommendations_among_session_logs(
    server: Server, client: httpx.Client
) -> None:
    uid = _new_user(server, client)
    for i in range(5):  # some history to decide from
        _check(server, client.post(f"/v1/users/{uid}/sessions", json=_session_body(i, days=5)))
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    def recommend() -> httpx.Response:
        return client.post(f"/v1/users/{uid}/recommendations", headers=headers)

    def log(body: dict[str, Any]) -> Callable[[], httpx.Response]:
        return lambda: client.post(f"/v1/users/{uid}/sessions", json=body)

    session_bodies = [_session_body(i, days=20) for i in range(100, 120)]
    calls: list[Callable[[], httpx.Response]] = []
    for body in session_bodies:  # R, S, R, S ...: 20 of each
        calls += [recommend, log(body)]
    responses = _all_at_once(calls)

    assert [r.status_code for r in responses if r.status_code >= 500] == [], server.log_tail()
    recommendations = responses[0::2]
    logged = responses[1::2]
    ids = {_check(server, r)["id"] for r in recommendations}
    assert len(ids) == 1
    assert sum(_replayed(r) for r in recommendations) == 19
    session_ids = {_check(server, r)["id"] for r in logged}
    assert len(session_ids) == 20

    total, listed = _listed(server, client, f"/v1/users/{uid}/recommendations")
    assert total == 1
    assert listed == list(ids)
    total, listed = _listed(server, client, f"/v1/users/{uid}/sessions")
    assert total == 25
    assert session_ids <= set(listed)
    assert len(set(listed)) == 25


def test_many_keys_retried_concurrently_store_one_row_each(
    server: Server, client: httpx.Client
) -> None:
    uid = _new_user(server, client)
    keys = [str(uuid.uuid4()) for _ in range(40)]
    bodies = {key: _session_body(i) for i, key in enumerate(keys)}
    sends = [key for key in keys for _ in range(2)]
    random.Random(40).shuffle(sends)

    def send(key: str) -> Callable[[], httpx.Response]:
        return lambda: client.post(
            f"/v1/users/{uid}/sessions", json=bodies[key], headers={"Idempotency-Key": key}
        )

    responses = _all_at_once([send(key) for key in sends])

    by_key: dict[str, list[httpx.Response]] = {}
    for key, response in zip(sends, responses, strict=True):
        _check(server, response)
        by_key.setdefault(key, []).append(response)
    for key, pair in by_key.items():
        assert len({r.json()["id"] for r in pair}) == 1, key
        assert sorted(_replayed(r) for r in pair) == [False, True], key
    ids = {pair[0].json()["id"] for pair in by_key.values()}
    assert len(ids) == 40
    total, listed = _listed(server, client, f"/v1/users/{uid}/sessions")
    assert total == 40
    assert sorted(listed) == sorted(ids)
