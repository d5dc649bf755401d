"""One tenant exporting FHIR as hard as it can does not starve another tenant.

Against a real server (one uvicorn worker, as ``ladderback serve`` runs by default): tenant
A runs 8 loops, in a process of its own, each exporting its 500-session user page after
page, as fast as the server answers (a 429 is retried after a short pause, as an impatient
client would); tenant B
lists its users, one request after another, first alone and then under A's load. A stays
within its rate limit (set far above this traffic): what protects B is the bounded cost
of a page, the cap of one page in progress per client and worker, and the export process
that builds pages away from the worker's GIL.

The bound on B's median under load: at most 5 times its median alone, or 20 ms,
whichever is larger. Measured on a 2-core machine running the load, the server and this
measurement together: B's median went from 2-8 ms alone to 2-11 ms under the load; before
exports were paged, capped and built in a process of their own, it went to 29-201 ms on
SQLite and 0.6-1.5 s on PostgreSQL (8 exports of 500 sessions at once). The bound
leaves room for a noisier machine and still fails the old behaviour.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import statistics
import threading
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import httpx

from app.catalog.loader import default_catalog
from app.db.session import Database
from app.services.clients import authenticate
from tests.conftest import new_key
from tests.long_record import seed_long_record
from tests.service import Server, serve, service_database

LOOPS = 8
SESSIONS = 500
LOAD_SECONDS = 4.0
ALONE_REQUESTS = 40
BUSY_WAIT = 0.05  # A's pause after a 429 before it tries again
ENV = {"LADDERBACK_RATE_LIMIT_PER_MINUTE": "1000000"}
BOUND_FLOOR_MS = 20.0
BOUND_TIMES_ALONE = 5
# The next page's link, near the start of a page ("link" follows "timestamp").
NEXT_LINK = re.compile(rb'"relation":"next","url":"([^"]+)"')


def _client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
    )


def _median_ms(client: httpx.Client, path: str, *, count: int | None, until: float = 0) -> float:
    """B's median time to list its users over ``count`` calls, or until ``until``."""
    samples: list[float] = []
    while (count is not None and len(samples) < count) or (
        count is None and time.monotonic() < until
    ):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(samples)


def _export_flat_out(
    base_url: str,
    key: str,
    user_id: str,
    started: EventType,
    stop: EventType,
    tally: Any,
    failures: Any,
) -> None:
    """Tenant A's load, in a process of its own (so that its threads never hold the GIL of
    the process that times B): LOOPS loops, each following an export's ``next`` links, then
    starting again, until ``stop``. ``tally`` counts pages and 429s."""

    def loop() -> None:
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        ) as client:
            url: str | None = None
            while not stop.is_set():
                try:
                    response = client.get(url or f"/v1/users/{user_id}/fhir")
                except httpx.HTTPError as exc:
                    failures.put(repr(exc))
                    return
                if response.status_code == 429:
                    with tally.get_lock():
                        tally[1] += 1
                    time.sleep(BUSY_WAIT)
                    continue
                if response.status_code != 200:
                    failures.put(f"{response.status_code}: {response.text[:300]}")
                    return
                with tally.get_lock():
                    tally[0] += 1
                found = NEXT_LINK.search(response.content, 0, 4_000)
                url = found and found.group(1).decode()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(LOOPS)]
    for thread in threads:
        thread.start()
    started.set()
    for thread in threads:
        thread.join(timeout=60)


def test_one_tenant_exporting_flat_out_leaves_another_tenants_listing_fast(
    tmp_path: Path,
) -> None:
    with service_database(tmp_path) as database:
        store = Database(database.url)
        try:
            exporter_key = new_key(store, "exporter")
            with store.transaction(write=False) as db:
                exporter = authenticate(db, exporter_key).client_id
            user_id = seed_long_record(
                store, exporter, default_catalog(), sessions=SESSIONS, until=datetime.now(UTC)
            )
        finally:
            store.dispose()

        with (
            serve(database, tmp_path / "server.log", env=ENV) as server,
            _client(server, server.key) as lister,
        ):
            # Warm: the first export starts the export process; the first listing, its queries.
            with _client(server, exporter_key) as warm:
                assert warm.get(f"/v1/users/{user_id}/fhir").status_code == 200
            _median_ms(lister, "/v1/users", count=5)
            alone = _median_ms(lister, "/v1/users", count=ALONE_REQUESTS)

            spawn = multiprocessing.get_context("spawn")
            started, stop = spawn.Event(), spawn.Event()
            tally, failures = spawn.Array("i", 2), spawn.Queue()
            load = spawn.Process(
                target=_export_flat_out,
                args=(server.base_url, exporter_key, user_id, started, stop, tally, failures),
                daemon=True,
            )
            load.start()
            try:
                assert started.wait(timeout=60), "A's load did not start"
                time.sleep(0.5)  # the loops are under way
                loaded = _median_ms(
                    lister, "/v1/users", count=None, until=time.monotonic() + LOAD_SECONDS
                )
            finally:
                stop.set()
                load.join(timeout=60)
                if load.is_alive():
                    load.kill()
            pages, refused = tally[0], tally[1]
            failed = [failures.get() for _ in range(failures.qsize())]

            bound = max(BOUND_FLOOR_MS, BOUND_TIMES_ALONE * alone)
            figures = (
                f"B's median listing: {alone:.1f} ms alone, {loaded:.1f} ms under A's load "
                f"(bound {bound:.0f} ms); A exported {pages} pages, {refused} refused with 429"
            )
            print(figures)  # noqa: T201 - the figures, for `pytest -s`
            assert loaded <= bound, figures
            assert not failed, failed[:3]
            assert pages >= 20, f"A's load hardly ran: {figures}\n{server.log_tail()}"


def test_an_export_process_ends_when_its_worker_is_killed_outright(tmp_path: Path) -> None:
    """A worker killed with SIGKILL (out of memory, or by a supervisor) cannot stop its
    export process: the process notices and ends, rather than holding memory and a
    database connection for good."""
    with (
        service_database(tmp_path) as database,
        serve(database, tmp_path / "server.log", env=ENV) as server,
        _client(server, server.key) as client,
    ):
        created = client.post("/v1/users", json={"external_id": "orphan", "profile": {"age": 40}})
        assert created.status_code == 201, created.text
        assert client.get(f"/v1/users/{created.json()['id']}/fhir").status_code == 200
        worker = server.process.pid
        exporters = [
            pid
            for pid in Path(f"/proc/{worker}/task/{worker}/children").read_text().split()
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert exporters, "no export process was started"
        # Out of the worker's process group: a stop signal to the group is the worker's.
        assert all(os.getpgid(int(pid)) != os.getpgid(worker) for pid in exporters)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_running(pid) for pid in exporters):
            time.sleep(0.1)
        assert not any(_running(pid) for pid in exporters)


def _running(pid: str) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False
