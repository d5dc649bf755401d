"""The real service, run as ``ladderback serve`` subprocesses on databases of the kind
under test.

- ``service_database(folder)`` makes a fresh database (``fresh_database_url``), migrates it
  and makes an API key; on the way out it drops the database (PostgreSQL).
- ``serve(database, log)`` starts the service on that database, on a free local port, in a
  process group of its own; it yields a ``Server`` once ``/healthz`` answers and stops the
  whole group on the way out, whatever happened in between. Several servers may serve one
  database, side by side or one after another; ``Server.kill`` crashes one (SIGKILL).
- ``running_service(folder)`` is both at once: the service on a fresh database of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from app.cli import migrate
from app.db.session import Database
from tests.conftest import fresh_database_url, new_key

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ServiceDatabase:
    """A migrated database for servers to share, and an API key of its own tenant."""

    url: str
    key: str


@dataclass(frozen=True)
class Server:
    """A running service: its address, an API key of its own tenant, and its log file."""

    base_url: str
    key: str
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)

    @property
    def origin(self) -> str:
        """The scheme, host and port the service answers on (its base URL)."""
        return self.base_url

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def kill(self) -> None:
        """Crash the server: SIGKILL to its whole process group at once, no graceful stop."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)


def free_port() -> int:
    """A local TCP port nothing listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_process_group(process: subprocess.Popen[Any]) -> None:
    """Stop a process and every process of its group (started with ``start_new_session``)."""
    group = process.pid  # a new session: the process leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    # Anything left of the group (a worker that ignored SIGTERM) is killed outright.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait(timeout=STOP_TIMEOUT)


def _wait_until_healthy(server: Server) -> None:
    """Return once ``/healthz`` answers 200; fail with the log if the server exits or stalls."""
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(
                    f"the server exited ({server.process.returncode}):\n{server.log_text()}"
                )
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(
        f"the server did not answer /healthz in {START_TIMEOUT:.0f} s:\n{server.log_text()}"
    )


def _command() -> list[str]:
    # What the container runs: the HTTP edge, its limits and the proxy rules included.
    return [sys.executable, "-m", "app.cli", "serve"]


@contextlib.contextmanager
def service_database(folder: Path) -> Iterator[ServiceDatabase]:
    """A fresh, migrated database of the kind under test (a SQLite file lives in ``folder``)."""
    # A generator: closing it drops the PostgreSQL database.
    databases = cast(Generator[str, None, None], fresh_database_url(folder))
    url = next(databases)
    try:
        migrate(url)
        database = Database(url)
        try:
            key = new_key(database, "service tests")
        finally:
            database.dispose()
        yield ServiceDatabase(url, key)
    finally:
        databases.close()  # drops the PostgreSQL database


@contextlib.contextmanager
def serve(
    database: ServiceDatabase,
    log: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[Server]:
    """The service on ``database``, logging to ``log``; ``env`` adds to its environment and
    ``preexec_fn`` runs in the child before the service starts (to lower its limits, say)."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database.url,
        "LADDERBACK_HOST": "127.0.0.1",
        "LADDERBACK_PORT": str(port),
        "LADDERBACK_WORKERS": str(workers),
        "LADDERBACK_MIGRATE_ON_START": "false",  # service_database migrated it
        "LADDERBACK_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            _command(),
            preexec_fn=preexec_fn,
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the supervisor and its workers
        )
    try:
        server = Server(f"http://127.0.0.1:{port}", database.key, log, process)
        _wait_until_healthy(server)
        yield server
    finally:
        stop_process_group(process)


@contextlib.contextmanager
def running_service(
    folder: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[Server]:
    """The service on a fresh database in ``folder`` (its log: ``folder / "server.log"``)."""
    with (
        service_database(folder) as database,
        serve(
            database, folder / "server.log", workers=workers, env=env, preexec_fn=preexec_fn
        ) as server,
    ):
        yield server
