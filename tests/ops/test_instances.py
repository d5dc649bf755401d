"""Several instances: two separate service processes on one PostgreSQL database.

Load balancers send a client's requests (and its retries) to any instance, so what one
instance wrote, the other must honour: an idempotent retry landing on the other instance
replays rather than stores again, concurrent writes from both lose nothing, and both
decide the same from the same stored state. The instances share nothing but the database.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import traffic
from tests.conftest import database_kind
from tests.service import Server, serve, service_database

pytestmark = pytest.mark.skipif(
    database_kind() == "sqlite",
    reason="several instances share PostgreSQL; SQLite is for one host (the PostgreSQL run)",
)

# Well above this module's traffic: the default budget (600 a minute) is per process.
ENV = {"LADDERBACK_RATE_LIMIT_PER_MINUTE": "1000000"}


class Instance:
    """One server, a client of it, and the checks the tests make through it."""

    def __init__(self, server: Server, client: httpx.Client) -> None:
        self.server = server
        self.client = client

    def post(self, path: str, **kwargs: Any) -> Callable[[], httpx.Response]:
        """A call that posts to this instance, to run later (``traffic.all_at_once``)."""
        return lambda: self.client.post(path, **kwargs)

    def check(self, response: httpx.Response, status: int = 201) -> dict[str, Any]:
        return traffic.check(self.server, response, status)

    def sessions(self, uid: str) -> tuple[int, list[str]]:
        """The total and the sorted ids of the user's sessions, as this instance lists them."""
        total, ids = traffic.listed_ids(self.server, self.client, f"/v1/users/{uid}/sessions")
        return total, sorted(ids)


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Instance]]:
    """Two single-worker servers, separate processes on separate ports, on one database."""
    folder: Path = tmp_path_factory.mktemp("instances")
    with (
        service_database(folder) as database,
        serve(database, folder / "a.log", env=ENV) as a,
        serve(database, folder / "b.log", env=ENV) as b,
        traffic.api_client(a) as client_a,
        traffic.api_client(b) as client_b,
    ):
        assert a.base_url != b.base_url
        yield Instance(a, client_a), Instance(b, client_b)


def _logs(*instances: Instance) -> str:
    return "\n".join(
        f"--- {i.server.base_url} log (tail) ---\n{i.server.log_tail()}" for i in instances
    )


def test_retries_across_instances_store_one_session_per_key(
    instances: tuple[Instance, Instance],
) -> None:
    """30 keys, each sent 4 times (twice to each instance) at once: one row and one id each."""
    a, b = instances
    uid = traffic.new_user(a.server, a.client)
    keys = [str(uuid.uuid4()) for _ in range(30)]
    # Each key goes to A, B, A, B; the order of all sends is shuffled.
    sends = [(key, i, instance) for i, key in enumerate(keys) for instance in (a, b, a, b)]
    random.Random(30).shuffle(sends)
    path = f"/v1/users/{uid}/sessions"
    calls = [
        instance.post(path, json=traffic.session_body(i), headers={"Idempotency-Key": key})
        for key, i, instance in sends
    ]

    responses = traffic.all_at_once(calls)

    by_key: dict[str, list[httpx.Response]] = {}
    for (key, _, instance), response in zip(sends, responses, strict=True):
        instance.check(response)
        by_key.setdefault(key, []).append(response)
    for key, answers in by_key.items():
        assert len({r.json()["id"] for r in answers}) == 1, (key, _logs(a, b))
        assert len({r.headers["Location"] for r in answers}) == 1, key
        # One request stored it; the three others, on either instance, replayed it.
        assert sorted(traffic.replayed(r) for r in answers) == [False, True, True, True], key
    ids = sorted(answers[0].json()["id"] for answers in by_key.values())
    assert a.sessions(uid) == b.sessions(uid) == (30, ids), _logs(a, b)


def test_concurrent_writes_from_both_instances_lose_nothing(
    instances: tuple[Instance, Instance],
) -> None:
    """60 session logs for one user at once, half to each instance: all 60 are stored."""
    a, b = instances
    uid = traffic.new_user(b.server, b.client)
    targets = list(itertools.islice(itertools.cycle((a, b)), 60))
    path = f"/v1/users/{uid}/sessions"
    calls = [t.post(path, json=traffic.session_body(i)) for i, t in enumerate(targets)]

    responses = traffic.all_at_once(calls)

    created = [t.check(r) for t, r in zip(targets, responses, strict=True)]
    # Each instance answered with the session it was sent.
    assert [c["exercises"][0]["prescribed"]["reps"] for c in created] == [5 + i for i in range(60)]
    ids = sorted(c["id"] for c in created)
    assert len(set(ids)) == 60
    assert a.sessions(uid) == b.sessions(uid) == (60, ids), _logs(a, b)


def _without_issue_fields(issued: dict[str, Any]) -> dict[str, Any]:
    # ``id`` and ``created_at`` belong to each issue (StoredRecommendationOut, app/api/
    # resources.py); the rest (user, condition episode, ruleset version and the decision
    # itself, ``recommendation``) depends on the stored state only.
    return {k: v for k, v in issued.items() if k not in ("id", "created_at")}


def test_both_instances_recommend_the_same_from_the_same_state(
    instances: tuple[Instance, Instance],
) -> None:
    """A user's recommendation from A and from B, nothing written between, is the same."""
    a, b = instances
    uid = traffic.new_user(a.server, a.client)
    # Half the history is written through each instance: each must read the other's writes.
    for i, instance in zip(range(10), itertools.cycle((a, b))):
        # Calm days: repeated flares would rightly hold back every exercise.
        body = traffic.session_body(i, days=10, calm=True)
        instance.check(instance.client.post(f"/v1/users/{uid}/sessions", json=body))

    from_a = a.check(a.client.post(f"/v1/users/{uid}/recommendations"))
    from_b = b.check(b.client.post(f"/v1/users/{uid}/recommendations"))

    assert from_a["id"] != from_b["id"]  # two issues, each stored
    assert _without_issue_fields(from_a) == _without_issue_fields(from_b), _logs(a, b)
    assert from_a["recommendation"]["exercises"], from_a  # a real decision, not an empty one
    # What each instance decided from (the stored inputs) is the same too, read crosswise.
    inputs = [
        other.check(other.client.get(f"/v1/users/{uid}/recommendations/{rid}"), 200)
        for other, rid in ((b, from_a["id"]), (a, from_b["id"]))
    ]
    assert inputs[0]["inputs"] == inputs[1]["inputs"]
    assert len(inputs[0]["inputs"]["history"]) == 10


def test_both_instances_answer_a_stateless_request_byte_for_byte_alike(
    instances: tuple[Instance, Instance],
) -> None:
    """``POST /v1/recommendations`` with one body gives the same bytes from either instance."""
    a, b = instances
    today = traffic.yesterday() + timedelta(days=1)
    onset = today - timedelta(days=90)
    body = {
        "profile": {"age": 40, "equipment": ["band"]},
        "condition": {"kind": "strain", "onset_date": onset.isoformat(), "baseline_pain": 5},
        "history": [traffic.session_body(i, days=8) for i in range(8)],
        "today": today.isoformat(),  # fixed, so neither instance reads its own clock
    }

    from_a = a.client.post("/v1/recommendations", json=body)
    from_b = b.client.post("/v1/recommendations", json=body)

    a.check(from_a, 200)
    b.check(from_b, 200)
    assert from_a.content == from_b.content
    assert from_a.headers["Content-Type"] == from_b.headers["Content-Type"]
