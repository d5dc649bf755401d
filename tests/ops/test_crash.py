"""Crash safety: a server killed in the middle of a write load loses nothing it acknowledged.

A 201 is a promise that the session is stored. Each round starts the service on the same
database, runs a load of session logs (each with an ``Idempotency-Key``) for a few users
from many threads, and SIGKILLs the server's whole process group at a random moment after
some acknowledgements: no graceful stop, no shutdown hook, requests cut off mid-flight. The
next start must show every acknowledged session exactly as acknowledged. Writes whose answer
never came may or may not be stored; retried with the same key after the restart, each must
end up stored exactly once (replayed if it was, created if not). On SQLite the file must
also pass ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check`` after each crash.
"""

from __future__ import annotations

import contextlib
import functools
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests import traffic
from tests.conftest import database_kind
from tests.service import Server, ServiceDatabase, serve, service_database

ROUNDS = 3  # kill and restart this many times
USERS = 4
THREADS = 8
WORKERS = 1  # one process: a restart costs ~3 s here; the load still runs in parallel
ACKNOWLEDGED_BEFORE_KILL = (20, 60)  # the kill comes after a random number of 201s in this range
LOAD_TIMEOUT = 30.0
# Well above the load: the default budget (600 a minute per client) would answer 429.
ENV = {"LADDERBACK_RATE_LIMIT_PER_MINUTE": "1000000"}


@dataclass
class Write:
    """One session log: who for, its key and body, and the 201 body once the client saw one."""

    user: str
    key: str
    body: dict[str, Any]
    stored: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        return f"/v1/users/{self.user}/sessions"

    @property
    def location(self) -> str:
        assert self.stored is not None
        return f"{self.path}/{self.stored['id']}"

    def send(self, client: httpx.Client) -> Callable[[], httpx.Response]:
        """The call that logs it; a retry is the very same call (same key, same body)."""
        headers = {"Idempotency-Key": self.key}
        return functools.partial(client.post, self.path, json=self.body, headers=headers)


@dataclass
class Crash:
    """What the load saw of one kill."""

    kill_after: int  # acknowledged writes this round before the kill
    acknowledged: int = 0
    cut_off: int = 0  # requests on an open connection that the kill left unanswered
    refused: int = 0  # requests that found the server gone (connection refused)
    failures: list[str] = field(default_factory=list)  # anything else that went wrong


def _plan(users: list[str]) -> Iterator[Write]:
    """Distinct session logs, round-robin over the users, within the per-date limit."""
    for i in range(traffic.SESSIONS_PER_USER):
        for user in users:
            yield Write(user, str(uuid.uuid4()), traffic.session_body(i))


def _holds(stored: Any, sent: Any) -> bool:
    """Whether ``stored`` has every field of ``sent`` with its value (it adds its defaults)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(
            name in stored and _holds(stored[name], value) for name, value in sent.items()
        )
    if isinstance(sent, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(sent)
            and all(_holds(s, v) for s, v in zip(stored, sent, strict=True))
        )
    return bool(stored == sent)


def _crash_under_load(
    server: Server, plan: Iterator[Write], writes: list[Write], rng: random.Random
) -> Crash:
    """Log sessions from ``THREADS`` threads; SIGKILL the server once enough are acknowledged."""
    crash = Crash(kill_after=rng.randint(*ACKNOWLEDGED_BEFORE_KILL))
    lock = threading.Lock()
    enough = threading.Event()
    killed = threading.Event()

    def load(client: httpx.Client) -> None:
        while not killed.is_set():
            with lock:
                write = next(plan, None)
                if write is None:
                    crash.failures.append("ran out of planned writes before the kill")
                    enough.set()
                    return
                writes.append(write)
            try:
                response = write.send(client)()
            except httpx.TransportError as error:
                with lock:
                    if not killed.is_set():
                        crash.failures.append(f"{error!r} before the kill")
                    elif isinstance(error, httpx.ConnectError):
                        crash.refused += 1
                    else:
                        crash.cut_off += 1
                return
            if response.status_code != 201:
                with lock:
                    crash.failures.append(f"{response.status_code}: {response.text}")
                return
            write.stored = response.json()
            with lock:
                crash.acknowledged += 1
                if crash.acknowledged >= crash.kill_after:
                    enough.set()

    with (
        traffic.api_client(server, connections=THREADS) as client,
        ThreadPoolExecutor(max_workers=THREADS) as pool,
    ):
        loads = [pool.submit(load, client) for _ in range(THREADS)]
        try:
            reached = enough.wait(LOAD_TIMEOUT)
            time.sleep(rng.uniform(0.0, 0.05))  # anywhere between two acknowledgements
        finally:
            killed.set()
            server.kill()
        for running in loads:
            running.result()
    if not reached:
        crash.failures.append(f"fewer than {crash.kill_after} writes acknowledged in time")
    return crash


def _recover(
    server: Server, before: Server, users: list[str], writes: list[Write], recent: list[Write]
) -> None:
    """After a restart: the acknowledged sessions are there as acknowledged, a retry of a
    ``recent`` one replays it, and the unanswered writes, retried, are stored once each."""
    logs = (
        f"\n--- log before the restart (tail) ---\n{before.log_tail()}"
        f"\n--- log after the restart (tail) ---\n{server.log_tail()}"
    )
    acknowledged = [w for w in writes if w.stored is not None]
    unanswered = [w for w in writes if w.stored is None]
    repeated = [w for w in recent if w.stored is not None]
    with traffic.api_client(server) as client:
        reads = traffic.all_at_once(
            [functools.partial(client.get, w.location) for w in acknowledged]
        )
        for write, read in zip(acknowledged, reads, strict=True):
            assert read.status_code == 200, f"acknowledged, then lost: {write.stored}{logs}"
            assert read.json() == write.stored, logs  # as acknowledged, field for field
            assert _holds(write.stored, write.body), write  # and as sent

        # The keys outlived the crash with the data: an acknowledged write, retried, replays.
        repeats = traffic.all_at_once([w.send(client) for w in repeated])
        for write, repeat in zip(repeated, repeats, strict=True):
            again = (traffic.check(server, repeat), traffic.replayed(repeat))
            assert again == (write.stored, True), f"retried after the restart: {write}{logs}"

        # An unanswered write may or may not be stored: its retry replays it or stores it now.
        retries = traffic.all_at_once([w.send(client) for w in unanswered])
        for write, retry in zip(unanswered, retries, strict=True):
            write.stored = traffic.check(server, retry)
            assert _holds(write.stored, write.body), write

        # Exactly the acknowledged sessions are stored: no key stored twice, nothing extra.
        for user in users:
            total, ids = traffic.listed_ids(server, client, f"/v1/users/{user}/sessions")
            expected = sorted(w.stored["id"] for w in writes if w.user == user and w.stored)
            assert (total, sorted(ids)) == (len(expected), expected), logs


def _assert_sqlite_intact(database: ServiceDatabase) -> None:
    """The SQLite file, opened afresh as after a crash, is consistent."""
    path = database.url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_acknowledged_sessions_survive_sigkill_and_retries_land_once(tmp_path: Path) -> None:
    """Kill the server mid-load ``ROUNDS`` times: no acknowledged write lost, none doubled."""
    rng = random.Random()
    writes: list[Write] = []
    crashes: list[Crash] = []
    with service_database(tmp_path) as database:
        users: list[str] = []
        plan: Iterator[Write] = iter(())
        before: Server | None = None
        recent: list[Write] = []  # the writes of the load before the restart
        for run in range(ROUNDS + 1):
            log = tmp_path / f"run-{run}.log"
            with serve(database, log, workers=WORKERS, env=ENV) as server:
                if before is None:
                    with traffic.api_client(server) as client:
                        users = [traffic.new_user(server, client) for _ in range(USERS)]
                    plan = _plan(users)
                else:
                    _recover(server, before, users, writes, recent)
                if run < ROUNDS:
                    first = len(writes)
                    crash = _crash_under_load(server, plan, writes, rng)
                    recent = writes[first:]
                    crashes.append(crash)
                    assert not crash.failures, f"{crash}\n{server.log_tail()}"
                    # It really was mid-load: the kill cut requests off unanswered.
                    assert crash.cut_off > 0, f"the kill cut off no request: {crash}"
                before = server
            if database_kind() == "sqlite":
                _assert_sqlite_intact(database)
    assert len(crashes) == ROUNDS
