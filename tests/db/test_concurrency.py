"""Concurrent writes against a real server: two uvicorn worker processes on one database.

Many session logs and idempotent retries for one user, sent at once from many threads,
must lose no write and store no duplicate, on SQLite (two processes writing one file) and
on PostgreSQL alike. The traffic helpers are in ``tests.traffic``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.service import Server, running_service
from tests.traffic import (
    all_at_once,
    api_client,
    check,
    listed_ids,
    new_user,
    replayed,
    session_body,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service with two worker processes on one database."""
    with running_service(tmp_path_factory.mktemp("concurrency"), workers=2) as service:
        yield service


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with api_client(server) as http:
        yield http


# ---------------------------------------------------------------------------------------------
# Tests


def test_concurrent_session_logs_lose_nothing_and_duplicate_nothing(
    server: Server, client: httpx.Client
) -> None:
    uid = new_user(server, client)
    bodies = [session_body(i) for i in range(60)]

    def log(body: dict[str, Any]) -> Callable[[], httpx.Response]:
        return lambda: client.post(f"/v1/users/{uid}/sessions", json=body)

    responses = all_at_once([log(b) for b in bodies])

    created = [check(server, r) for r in responses]
    ids = [c["id"] for c in created]
    assert len(set(ids)) == 60
    # Each response is the session it was sent for.
    assert [(c["date"], c["exercises"][0]["prescribed"]["reps"]) for c in created] == [
        (b["date"], b["exercises"][0]["prescribed"]["reps"]) for b in bodies
    ]
    total, listed = listed_ids(server, client, f"/v1/users/{uid}/sessions")
    assert total == 60
    assert len(listed) == 60
    assert sorted(listed) == sorted(ids)


def test_concurrent_retries_with_one_key_store_one_session(
    server: Server, client: httpx.Client
) -> None:
    uid = new_user(server, client)
    body = session_body(7)
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    def retry() -> httpx.Response:
        return client.post(f"/v1/users/{uid}/sessions", json=body, headers=headers)

    responses = all_at_once([retry] * 30)

    ids = {check(server, r)["id"] for r in responses}
    assert len(ids) == 1
    assert sum(replayed(r) for r in responses) == 29
    assert {r.headers["Location"] for r in responses} == {f"/v1/users/{uid}/sessions/{ids.pop()}"}
    total, listed = listed_ids(server, client, f"/v1/users/{uid}/sessions")
    assert total == 1
    assert listed == [responses[0].json()["id"]]


def test_one_key_with_two_bodies_at_once_stores_one_and_refuses_the_other(
    server: Server, client: httpx.Client
) -> None:
    uid = new_user(server, client)
    first, second = session_body(1), session_body(2)
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    def send(body: dict[str, Any]) -> Callable[[], httpx.Response]:
        return lambda: client.post(f"/v1/users/{uid}/sessions", json=body, headers=headers)

    calls = [send(first), send(second)] * 10
    responses = all_at_once(calls)

    statuses = [r.status_code for r in responses]
    assert set(statuses) == {201, 422}, [
        r.text for r in responses if r.status_code not in (201, 422)
    ]
    # One body won the key: all its requests got the stored session, the other's got 422.
    winners = {i % 2 for i, s in enumerate(statuses) if s == 201}
    assert len(winners) == 1
    assert statuses.count(201) == 10
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    total, _ = listed_ids(server, client, f"/v1/users/{uid}/sessions")
    assert total == 1


def test_concurrent_idempotent_recommendations_among_session_logs(
    server: Server, client: httpx.Client
) -> None:
    uid = new_user(server, client)
    for i in range(5):  # some history to decide from
        check(server, client.post(f"/v1/users/{uid}/sessions", json=session_body(i, days=5)))
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    def recommend() -> httpx.Response:
        return client.post(f"/v1/users/{uid}/recommendations", headers=headers)

    def log(body: dict[str, Any]) -> Callable[[], httpx.Response]:
        return lambda: client.post(f"/v1/users/{uid}/sessions", json=body)

    session_bodies = [session_body(i, days=20) for i in range(100, 120)]
    calls: list[Callable[[], httpx.Response]] = []
    for body in session_bodies:  # R, S, R, S ...: 20 of each
        calls += [recommend, log(body)]
    responses = all_at_once(calls)

    assert [r.status_code for r in responses if r.status_code >= 500] == [], server.log_tail()
    recommendations = responses[0::2]
    logged = responses[1::2]
    ids = {check(server, r)["id"] for r in recommendations}
    assert len(ids) == 1
    assert sum(replayed(r) for r in recommendations) == 19
    session_ids = {check(server, r)["id"] for r in logged}
    assert len(session_ids) == 20

    total, listed = listed_ids(server, client, f"/v1/users/{uid}/recommendations")
    assert total == 1
    assert listed == list(ids)
    total, listed = listed_ids(server, client, f"/v1/users/{uid}/sessions")
    assert total == 25
    assert session_ids <= set(listed)
    assert len(set(listed)) == 25


def test_many_keys_retried_concurrently_store_one_row_each(
    server: Server, client: httpx.Client
) -> None:
    uid = new_user(server, client)
    keys = [str(uuid.uuid4()) for _ in range(40)]
    bodies = {key: session_body(i) for i, key in enumerate(keys)}
    sends = [key for key in keys for _ in range(2)]
    random.Random(40).shuffle(sends)

    def send(key: str) -> Callable[[], httpx.Response]:
        return lambda: client.post(
            f"/v1/users/{uid}/sessions", json=bodies[key], headers={"Idempotency-Key": key}
        )

    responses = all_at_once([send(key) for key in sends])

    by_key: dict[str, list[httpx.Response]] = {}
    for key, response in zip(sends, responses, strict=True):
        check(server, response)
        by_key.setdefault(key, []).append(response)
    for key, pair in by_key.items():
        assert len({r.json()["id"] for r in pair}) == 1, key
        assert sorted(replayed(r) for r in pair) == [False, True], key
    ids = {pair[0].json()["id"] for pair in by_key.values()}
    assert len(ids) == 40
    total, listed = listed_ids(server, client, f"/v1/users/{uid}/sessions")
    assert total == 40
    assert sorted(listed) == sorted(ids)
