"""The real service, run as a subprocess on a fresh, migrated database of the kind under test.

``running_service`` starts uvicorn on a free local port, waits until ``/healthz`` answers and
yields a ``Server``; on the way out it stops the server's whole process group and drops the
database (PostgreSQL), whatever happened in between.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
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
class Server:
    """A running service: its address, an API key of its own tenant, and its log file."""

    base_url: str
    key: str
    log: Path

    @property
    def origin(self) -> str:
        """The scheme, host and port the service answers on (its base URL)."""
        return self.base_url

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


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


def _wait_until_healthy(server: Server, process: subprocess.Popen[bytes]) -> None:
    """Return once ``/healthz`` answers 200; fail with the log if the server exits or stalls."""
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the server exited ({process.returncode}):\n{server.log_text()}")
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(
        f"the server did not answer /healthz in {START_TIMEOUT:.0f} s:\n{server.log_text()}"
    )


def _command(port: int, workers: int, access_log: bool) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    return command if access_log else [*command, "--no-access-log"]


@contextlib.contextmanager
def running_service(
    folder: Path, *, workers: int = 1, access_log: bool = False
) -> Iterator[Server]:
    """The service on a fresh database in ``folder`` (its log: ``folder / "server.log"``)."""
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
        port = free_port()
        server = Server(f"http://127.0.0.1:{port}", key, folder / "server.log")
        env = {**os.environ, "DATABASE_URL": url, "LADDERBACK_LOG_LEVEL": "WARNING"}
        with server.log.open("wb") as out:
            process = subprocess.Popen(
                _command(port, workers, access_log),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the supervisor and its workers
            )
        try:
            _wait_until_healthy(server, process)
            yield server
        finally:
            stop_process_group(process)
    finally:
        databases.close()  # drops the PostgreSQL database
