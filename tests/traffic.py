"""Traffic for real servers (``tests.service``): users, session logs, calls released together.

The servers run with their real clock, so every session is dated before today (UTC), and a
user gets at most 12 sessions a date (the service's default limit).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.service import Server

THREADS = 16
DOSE = {"sets": 1, "reps": 10, "per_week": 5, "rest_seconds": 30}
# Distinct session bodies per user: ``session_body(i)`` for i below this (reps stay ≤ 200).
SESSIONS_PER_USER = 190


def api_client(server: Server, *, connections: int = THREADS * 2) -> httpx.Client:
    """An HTTP client of ``server``, authenticated with its key, pooling ``connections``."""
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=30.0,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def check(server: Server, response: httpx.Response, status: int = 201) -> dict[str, Any]:
    """The response's JSON, once its status is ``status``; else fail with the server's log."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url} -> {response.status_code}: "
        f"{response.text}\n--- server log (tail) ---\n{server.log_tail()}"
    )
    body: dict[str, Any] = response.json()
    return body


def yesterday() -> date:
    # Before the server's today (UTC) even if the date turns while the test runs.
    return datetime.now(UTC).date() - timedelta(days=1)


def new_user(server: Server, client: httpx.Client) -> str:
    """A new user with an active strain episode, ready to log sessions."""
    user = check(
        server,
        client.post(
            "/v1/users",
            json={"external_id": f"member-{uuid.uuid4().hex}", "profile": {"age": 40}},
        ),
    )
    onset = yesterday() - timedelta(days=365)
    check(
        server,
        client.post(
            f"/v1/users/{user['id']}/conditions",
            json={"kind": "strain", "onset_date": onset.isoformat(), "baseline_pain": 5},
        ),
    )
    return str(user["id"])


def session_body(i: int, *, days: int = 20, calm: bool = False) -> dict[str, Any]:
    """Session ``i``: a distinct body, its date one of ``days`` past days (≤ 12 per date).

    ``calm``: the next morning's pain never rises above the pain before, so the sessions
    flare nowhere (otherwise their next mornings vary, and some days flare)."""
    dose = {**DOSE, "reps": 5 + i}
    return {
        "date": (yesterday() - timedelta(days=i % days)).isoformat(),
        "pain_before": i % 4,
        "next_day_pain": i % 4 if calm else (i // 4) % 4,
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


def all_at_once(
    calls: list[Callable[[], httpx.Response]], *, threads: int = THREADS
) -> list[httpx.Response]:
    """Run the calls from ``threads`` threads, released together; results in call order."""
    go = threading.Event()

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        go.wait()
        return call()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(run, call) for call in calls]
        go.set()
        return [f.result() for f in futures]


def listed_ids(server: Server, client: httpx.Client, path: str) -> tuple[int, list[str]]:
    """The page's total and every id on all its pages."""
    ids: list[str] = []
    offset = 0
    while True:
        page = check(server, client.get(path, params={"limit": 100, "offset": offset}), 200)
        ids.extend(item["id"] for item in page["items"])
        offset += 100
        if offset >= page["total"]:
            return int(page["total"]), ids


def replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("Idempotent-Replayed") == "true")
