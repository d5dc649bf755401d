"""Throughput of the real service against a bare FastAPI app, under the same load, in one run.

What runs: the service (``app.main:app``, migrated first with ``ladderback db upgrade``)
and the bare app (bench/bare_app.py), each as ONE uvicorn worker process with uvloop and
httptools, pinned with ``taskset`` to one core while Debian's ``wrk`` (one thread, 16
connections) runs on another. PostgreSQL, when used, is not pinned: its backends share the
cores with both. Each target gets a warm-up run, then a measured run of ``--duration``
seconds. Every request is first sent once and must answer 200/201, and a measured run with
any non-2xx answer is reported as INVALID (exit status 1), so error responses are never
benchmarked.

The targets, per database kind (SQLite in a temporary directory, WAL; a fresh PostgreSQL
database, dropped at the end):

- bare ``GET /ping``: the stack alone, for reference (first database only);
- bare ``POST /echo``: validates a body of the exact shape and bytes of the stateless
  recommendation request with plain pydantic models and sends the same bytes back;
- service ``POST /v1/recommendations``, stateless, with a 20-session history (the body
  echoed above): goal req/s >= 0.80 x echo;
- bare ``POST /insert``: one row into one table and a commit, a plain sync SQLModel
  endpoint (thread pool);
- service ``POST /v1/users/{id}/recommendations``, stateful, for a user with an episode and
  the same 20 sessions stored through the API: goal req/s >= 0.80 x insert, same database.

Each service target runs right after its baseline, against processes that are both up, so
machine noise (the machine is shared) hits a pair alike. Read the ratios, not the absolute
figures. It also prints each process's resident memory after its load (VmRSS of the
uvicorn worker; one worker means one process; goal <= 150 MB for the service) and its cold
start, spawn to the first 200 on ``/healthz`` (``/ping`` for the bare app), best of 3
(goal <= 1.5 s for the service). It prints figures; it is not a test (exit 0, or 1 when a
measured run was INVALID).

Both apps run as ``python -m uvicorn ... --workers 1 --no-access-log`` (``--access-log``
keeps uvicorn's access log), the service with ``LADDERBACK_LOG_LEVEL=WARNING``: neither
writes a line per request, so the request work alone is compared. ``ladderback serve`` at
its default ``INFO`` adds one JSON access line per request. The service runs on the HTTP
protocol ``ladderback serve`` gives it (``--http app.edge:EdgeProtocol``, with its limits);
the bare app on uvicorn's own httptools protocol, so the edge's cost counts against the
service.

Usage: python bench/throughput.py [--duration 8] [--connections 16]
                                  [--databases sqlite,postgresql] [--skip-cold-start]
                                  [--profile stateless|stateful]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the virtualenv's bin: python, ladderback, py-spy
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
DATABASES = ("sqlite", "postgresql")
HISTORY_SESSIONS = 20
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
GOAL_RATIO = 0.80
GOAL_RSS_MB = 150.0
GOAL_COLD_START_S = 1.5

# The fields of each object of a recommendation request, in the order bench/bare_app.py
# declares them: a complete, compact body in this order is echoed byte for byte.
DOSE_FIELDS = (
    "sets",
    "reps",
    "hold_seconds",
    "duration_seconds",
    "load_kg",
    "per_side",
    "rest_seconds",
    "per_week",
    "per_day",
)


# ---------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Pinning:
    """Which core the servers and the load generator get (``None``: not pinned)."""

    server: int | None
    load: int | None
    note: str

    def wrap(self, command: list[str], cpu: int | None) -> list[str]:
        return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def choose_pinning(wanted: bool) -> Pinning:
    cpus = sorted(os.sched_getaffinity(0))
    if not wanted:
        return Pinning(None, None, "not pinned (--no-pin)")
    if shutil.which("taskset") is None:
        return Pinning(None, None, "not pinned: taskset not found (Debian package util-linux)")
    if len(cpus) < 2:
        return Pinning(None, None, f"not pinned: only {len(cpus)} core available")
    return Pinning(cpus[0], cpus[1], f"server on core {cpus[0]}, wrk on core {cpus[1]}")


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without the service's own settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LADDERBACK_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    return {**env, **extra}


@dataclass
class Server:
    """One uvicorn process: the service or the bare app."""

    name: str  # "service" or "bare"
    database: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready_path(self) -> str:
        return "/healthz" if self.name == "service" else "/ping"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def worker_pid(self) -> int:
        """The uvicorn worker: the process itself with one worker (else its first child)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        found = children.read_text().split() if children.exists() else []
        return int(found[0]) if found else pid


def spawn(
    name: str,
    database: str,
    url: str,
    folder: Path,
    pinning: Pinning,
    *,
    access_log: bool,
    started: list[Server],
) -> Server:
    """Start the service or the bare app on a free port (not waiting for it)."""
    port = free_port()
    # No access log: aligned with `ladderback serve` at WARNING (see the docstring).
    logging = [] if access_log else ["--no-access-log"]
    serve = ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", *logging]
    if name == "service":
        edge = ["--http", "app.edge:EdgeProtocol"]  # as `ladderback serve` runs it
        command = [str(BIN / "python"), "-m", "uvicorn", "app.main:app", *serve, *edge]
        env = _clean_env(
            DATABASE_URL=url,
            LADDERBACK_RATE_LIMIT_PER_MINUTE="1000000",  # the default 600 would throttle
            LADDERBACK_LOG_LEVEL="WARNING",
        )
    else:
        app_dir = ["--app-dir", str(ROOT / "bench")]
        command = [str(BIN / "python"), "-m", "uvicorn", "bare_app:app", *app_dir, *serve]
        env = _clean_env(BARE_DATABASE_URL=url)
    log = folder / f"{name}-{database}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinning.wrap(command, pinning.server),  # taskset execs: same pid
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as one
        )
    server = Server(name, database, process, port, log)
    started.append(server)
    return server


def _status(port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_ready(server: Server, since: float) -> float:
    """Seconds from ``since`` (a ``perf_counter``) to the first 200 on the readiness URL."""
    deadline = since + READY_TIMEOUT
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(
                f"{server.name} ({server.database}) exited ({server.process.returncode}):\n"
                f"{server.log_tail()}"
            )
        if _status(server.port, server.ready_path) == 200:
            return time.perf_counter() - since
        time.sleep(0.005)
    raise SystemExit(
        f"{server.name} ({server.database}) did not answer {server.ready_path} within "
        f"{READY_TIMEOUT:.0f} s:\n{server.log_tail()}"
    )


def stop(server: Server) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL for what is left."""
    process = server.process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=STOP_TIMEOUT)


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory now and its peak (VmRSS, VmHWM), in MB (10^6 bytes)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )

    def mb(name: str) -> float:
        return int(fields[name].split()[0]) * 1024 / 1e6  # the kernel's "kB" are KiB

    return mb("VmRSS"), mb("VmHWM")


# ---------------------------------------------------------------------------------------------
# Databases and the service's set-up, the way an operator does it


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database (``postgresql+psycopg://``), dropped afterwards."""
    admin_url = re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql+psycopg://", admin_url)
    name = f"ladderback_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except sa.exc.OperationalError as exc:
            raise SystemExit(
                f"PostgreSQL is not reachable at {admin_url} ({type(exc).__name__}); "
                "pass --postgres-admin-url, or --databases sqlite"
            ) from None
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def ladderback(url: str, *args: str) -> str:
    """Run the ``ladderback`` command on ``url``; its standard output."""
    done = subprocess.run(
        [str(BIN / "ladderback"), *args],
        cwd=ROOT,
        env=_clean_env(DATABASE_URL=url),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ladderback {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def new_api_key(url: str) -> str:
    """``ladderback clients create`` prints the key on the line after "API key (...)"."""
    lines = ladderback(url, "clients", "create", "throughput bench").splitlines()
    for index, line in enumerate(lines[:-1]):
        if line.startswith("API key"):
            return lines[index + 1].strip()
    raise SystemExit("ladderback clients create printed no key:\n" + "\n".join(lines))


def expect(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise SystemExit(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}, not {status}:\n{response.text}"
        )
    return response.json()


def compact(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def recommendation_body(service: httpx.Client, today: date) -> dict[str, Any]:
    """A stateless request with a realistic 20-session history, every field given.

    The programme is the one the service itself prescribes to a new strain patient with a
    band (real catalog ids, doses and slots). Each session, every other day up to
    yesterday, does 3 to 5 of its exercises as prescribed; pain alternates between calm
    and sorer sessions, each with its next-morning report.
    """
    profile = {
        "age": 45,
        "ability": "intermediate",
        "equipment": ["band"],
        "contraindications": [],
        "minutes_available": 40,
    }
    condition = {
        "kind": "strain",
        "onset_date": (today - timedelta(days=70)).isoformat(),
        "baseline_pain": 5,
        "red_flags": [],
        "side": "none",
        "directional_preference": "unknown",
        "stenosis_like_symptoms": False,
    }
    first = expect(
        service.post(
            "/v1/recommendations",
            json={"profile": profile, "condition": condition, "today": today.isoformat()},
        ),
        200,
    )
    programme = [e for e in first["exercises"] if e["dose"] is not None]
    if len(programme) < 3:
        raise SystemExit(f"the first prescription has only {len(programme)} dosed exercises")
    history = []
    for i in range(HISTORY_SESSIONS):
        calm = i % 2 == 0
        count = min(3 + i % 3, len(programme))
        picked = sorted((i + k) % len(programme) for k in range(count))
        exercises = []
        for index in picked:
            e = programme[index]
            dose = {k: e["dose"][k] for k in DOSE_FIELDS}
            exercises.append(
                {
                    "exercise_id": e["exercise_id"],
                    "prescribed": dose,
                    "performed": dose,
                    "completed": True,
                    "pain_during": 1 if calm else 3,
                    "pain_after": 1 if calm else 3,
                    "effort": 4 if calm else 6,
                    "symptom_change": "stable",
                    "slot": e["slot"],
                }
            )
        day = today - timedelta(days=2 * (HISTORY_SESSIONS - 1 - i) + 1)
        history.append(
            {
                "date": day.isoformat(),
                "completed": True,
                "exercises": exercises,
                "pain_before": 2 if calm else 4,
                "pain_after": 2 if calm else 4,
                "next_day_pain": 2 if calm else 4,
                "symptom_change": "stable",
                "new_numbness_or_tingling": False,
            }
        )
    return {
        "profile": profile,
        "condition": condition,
        "history": history,
        "today": today.isoformat(),
    }


def seed_user(service: httpx.Client, body: dict[str, Any]) -> str:
    """A user with the body's profile, episode and 20 sessions, stored through the API."""
    user = expect(
        service.post(
            "/v1/users",
            json={"external_id": f"bench-{uuid.uuid4().hex[:12]}", "profile": body["profile"]},
        ),
        201,
    )
    expect(service.post(f"/v1/users/{user['id']}/conditions", json=body["condition"]), 201)
    for session in body["history"]:
        expect(service.post(f"/v1/users/{user['id']}/sessions", json=session), 201)
    user_id: str = user["id"]
    return user_id


# ---------------------------------------------------------------------------------------------
# Load


@dataclass(frozen=True)
class Target:
    """One request, as wrk sends it."""

    label: str
    server: Server
    method: str
    path: str
    status: int
    body: Path | None = None
    key: str | None = None
    baseline: str | None = None  # the label of the target it is compared with
    profile_name: str | None = None  # its name for --profile

    def lua(self, folder: Path) -> Path:
        lines = [f'wrk.method = "{self.method}"']
        if self.body is not None:
            lines += [
                f'local file = assert(io.open("{self.body}", "rb"))',
                'wrk.body = file:read("*a")',
                "file:close()",
                'wrk.headers["Content-Type"] = "application/json"',
            ]
        if self.key is not None:
            lines.append(f'wrk.headers["Authorization"] = "Bearer {self.key}"')
        lines.append(_LUA_DONE)
        script = folder / f"{re.sub(r'[^a-z0-9]+', '-', self.label.lower())}.lua"
        script.write_text("\n".join(lines) + "\n")
        return script

    def check(self) -> bytes:
        """Send the request once; it must answer ``status``. Returns the answer."""
        content = self.body.read_bytes() if self.body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        if self.key is not None:
            headers["Authorization"] = f"Bearer {self.key}"
        with httpx.Client(base_url=self.server.base_url, timeout=30.0) as client:
            response = client.request(self.method, self.path, content=content, headers=headers)
        if response.status_code != self.status:
            raise SystemExit(
                f"{self.label} ({self.server.database}) answered {response.status_code}, "
                f"not {self.status}:\n{response.text}"
            )
        return response.content


# wrk's own summary, in exact units (latencies in microseconds), and the status of each
# answer that was not 2xx, counted per thread and summed.
_LUA_DONE = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  if status > 299 then statuses[status] = (statuses[status] or 0) + 1 end
end
function done(summary, latency, requests)
  local e = summary.errors
  local codes = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses") or {}) do
      table.insert(codes, code .. ":" .. n)
    end
  end
  io.write(string.format("WRK_SUMMARY %d %d %d %d %d %d %d %.1f %.1f %s\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99),
    #codes > 0 and table.concat(codes, ",") or "-"))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: dict[str, int]
    statuses: str  # the non-2xx answers, "status:count,..." ("-": none)
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class LoadGenerator:
    wrk: str
    threads: int
    connections: int
    pinning: Pinning
    folder: Path

    def run(self, target: Target, seconds: float) -> Load:
        script = target.lua(self.folder)
        command = [self.wrk, "-t", str(self.threads), "-c", str(self.connections)]
        command += ["-d", f"{seconds:g}s", "--latency", "--timeout", "10s", "-s", str(script)]
        command.append(target.server.base_url + target.path)
        done = subprocess.run(
            self.pinning.wrap(command, self.pinning.load),
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        summary = re.search(r"^WRK_SUMMARY (.*)$", done.stdout, re.MULTILINE)
        if done.returncode != 0 or summary is None:
            raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        values = summary.group(1).split()
        requests, micros, status, connect, read, write, timeout = map(int, values[:7])
        # wrk's text report says the same; read it too, as a cross-check.
        printed = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
        non_2xx = max(status, int(printed.group(1)) if printed else 0)
        errors = {"connect": connect, "read": read, "write": write, "timeout": timeout}
        return Load(
            requests=requests,
            seconds=micros / 1e6,
            non_2xx=non_2xx,
            socket_errors={k: v for k, v in errors.items() if v},
            statuses=values[9],
            p50_ms=float(values[7]) / 1000,
            p99_ms=float(values[8]) / 1000,
        )


@dataclass
class Row:
    target: Target
    load: Load
    warm_up_non_2xx: int
    profile: Path | None = None

    @property
    def valid(self) -> bool:
        return self.load.non_2xx == 0 and self.warm_up_non_2xx == 0


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # label: (in, out) bytes
    memory: list[tuple[Server, float, float, int]] = field(default_factory=list)
    cold_starts: dict[str, list[float]] = field(default_factory=dict)


def measure(
    target: Target,
    load: LoadGenerator,
    warm_up: float,
    duration: float,
    profile: str | None,
) -> Row:
    print(f"  {target.server.database:<10} {target.label:<42}", end="", flush=True)
    warm = load.run(target, warm_up) if warm_up > 0 else None
    spy = None
    output = None
    if profile is not None and profile == target.profile_name:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        output = Path(tempfile.gettempdir()) / (
            f"ladderback-{profile}-{target.server.database}-{stamp}.txt"
        )
        spy = subprocess.Popen(
            load.pinning.wrap(
                [
                    _py_spy(),
                    "record",
                    "--pid",
                    str(target.server.worker_pid()),
                    "--duration",
                    f"{int(duration)}",
                    "--rate",
                    "200",
                    "--nonblocking",
                    "--format",
                    "raw",  # collapsed stacks: summarised below, or fed to flamegraph.pl
                    "--output",
                    str(output),
                ],
                load.pinning.load,
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    try:
        result = load.run(target, duration)
    finally:
        if spy is not None:
            try:
                spy.wait(timeout=duration + 30)
            except subprocess.TimeoutExpired:
                os.killpg(spy.pid, signal.SIGKILL)
                spy.wait()
    row = Row(target, result, warm.non_2xx if warm else 0, output)
    note = "" if row.valid else f"   INVALID: {result.non_2xx + row.warm_up_non_2xx} non-2xx"
    print(f"{result.per_second:9.0f} req/s  p50 {result.p50_ms:6.2f} ms{note}", flush=True)
    if target.server.process.poll() is not None:
        raise SystemExit(f"{target.server.name} died under load:\n{target.server.log_tail()}")
    return row


def _py_spy() -> str:
    found = BIN / "py-spy"
    return str(found) if found.exists() else (shutil.which("py-spy") or "py-spy")


# ---------------------------------------------------------------------------------------------
# The run


def cold_starts(
    url: str, database: str, folder: Path, pinning: Pinning, runs: int
) -> dict[str, list[float]]:
    """Spawn to first 200 on the readiness URL, ``runs`` times each, alternating."""
    timings: dict[str, list[float]] = {"service": [], "bare": []}
    for _ in range(runs):
        for name in timings:
            started: list[Server] = []
            since = time.perf_counter()
            server = spawn(name, database, url, folder, pinning, access_log=False, started=started)
            try:
                timings[name].append(wait_ready(server, since))
            finally:
                stop(server)
    return timings


def run_database(
    kind: str,
    service_url: str,
    bare_url: str,
    args: argparse.Namespace,
    load: LoadGenerator,
    report: Report,
    started: list[Server],
    first: bool,
) -> None:
    folder = load.folder
    ladderback(service_url, "db", "upgrade")
    key = new_api_key(service_url)
    if first and not args.skip_cold_start:
        print(f"  {kind:<10} cold starts (best of {args.cold_starts}) ...", flush=True)
        report.cold_starts = cold_starts(service_url, kind, folder, load.pinning, args.cold_starts)

    options: dict[str, Any] = {"access_log": args.access_log, "started": started}
    service = spawn("service", kind, service_url, folder, load.pinning, **options)
    bare = spawn("bare", kind, bare_url, folder, load.pinning, **options)
    now = time.perf_counter()
    wait_ready(service, now)
    wait_ready(bare, now)

    today = datetime.now(UTC).date()
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=service.base_url, headers=auth, timeout=30.0) as api:
        body = recommendation_body(api, today)
        user_id = seed_user(api, body) if not args.skip_stateful else None
    body_file = folder / f"recommendation-{kind}.json"
    body_file.write_bytes(compact(body))

    echo = Target("bare POST /echo", bare, "POST", "/echo", 200, body=body_file)
    targets = [Target("bare GET /ping", bare, "GET", "/ping", 200)] if first else []
    if not args.skip_stateless:
        targets += [
            echo,
            Target(
                "service POST /v1/recommendations",
                service,
                "POST",
                "/v1/recommendations",
                200,
                body=body_file,
                key=key,
                baseline=echo.label,
                profile_name="stateless",
            ),
        ]
    if user_id is not None:
        insert = Target("bare POST /insert", bare, "POST", "/insert", 201)
        targets += [
            insert,
            Target(
                "service POST /v1/users/{id}/recommendations",
                service,
                "POST",
                f"/v1/users/{user_id}/recommendations",
                201,
                key=key,
                baseline=insert.label,
                profile_name="stateful",
            ),
        ]

    for target in targets:
        answer = target.check()
        sent = target.body.read_bytes() if target.body is not None else b""
        if target is echo and answer != sent:  # the echo must answer with the very bytes sent
            raise SystemExit(f"/echo changed the body:\nsent {sent!r}\ngot  {answer!r}")
        report.sizes.setdefault(target.label, (len(sent), len(answer)))

    for target in targets:
        report.rows.append(measure(target, load, args.warmup, args.duration, args.profile))

    for server in (service, bare):
        rss, peak = memory_mb(server.worker_pid())
        report.memory.append((server, rss, peak, server.worker_pid()))
    for server in (service, bare):
        stop(server)
        started.remove(server)


# ---------------------------------------------------------------------------------------------
# Output


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "| " + " | ".join(padded) + " |"

    dashes = ("-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths))
    rule = "|" + "|".join(dashes) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def print_profile(path: Path, top: int = 25) -> None:
    """The functions most often on the stack (inclusive) and on top of it (self), as shares
    of all samples, from py-spy's collapsed stacks ("frame;frame;... count" lines)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    if not total:
        return
    for title, counts in (("inclusive", inclusive), ("self", own)):
        print(f"  top {top} by {title} share of {total} samples:")
        for frame, count in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
            print(f"    {100 * count / total:5.1f} %  {frame}")


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def print_report(report: Report) -> None:
    by_label = {(r.target.server.database, r.target.label): r for r in report.rows}
    rows = []
    for row in report.rows:
        load = row.load
        baseline = ratio = result = "—"
        goal = "reference"
        if row.target.baseline is not None:
            base = by_label.get((row.target.server.database, row.target.baseline))
            baseline = row.target.baseline.removeprefix("bare ")
            goal = f"≥ {GOAL_RATIO:.2f}"
            if base is not None and base.load.per_second:
                value = load.per_second / base.load.per_second
                ratio = f"{value:.2f}"
                result = verdict(value >= GOAL_RATIO)
                if not (row.valid and base.valid):
                    result = "INVALID"
        elif not row.valid:
            result = "INVALID"
        rows.append(
            [
                row.target.label,
                row.target.server.database,
                f"{load.per_second:.0f}",
                f"{load.p50_ms:.2f}",
                f"{load.p99_ms:.2f}",
                baseline,
                ratio,
                goal,
                result,
            ]
        )
    headers = ["target", "database", "req/s", "p50 ms", "p99 ms", "baseline", "ratio", "goal"]
    headers.append("result")
    print(table(headers, rows, right={2, 3, 4, 6}))

    problems = [
        f"- {r.target.label} ({r.target.server.database}): "
        f"{r.load.non_2xx} non-2xx in the measured run (status:count {r.load.statuses}), "
        f"{r.warm_up_non_2xx} in the warm-up"
        for r in report.rows
        if not r.valid
    ] + [
        f"- {r.target.label} ({r.target.server.database}): socket errors {r.load.socket_errors}"
        for r in report.rows
        if r.load.socket_errors
    ]
    if problems:
        print()
        print("\n".join(problems))

    print()
    sizes = [[label, f"{sent}", f"{answer}"] for label, (sent, answer) in report.sizes.items()]
    print(table(["request", "body bytes", "answer bytes"], sizes, right={1, 2}))

    print()
    memory = []
    for server, rss, peak, pid in report.memory:
        service = server.name == "service"
        goal = f"≤ {GOAL_RSS_MB:.0f} MB" if service else "reference"
        memory.append(
            [
                "service" if service else "bare app",
                server.database,
                str(pid),
                f"{rss:.1f}",
                f"{peak:.1f}",
                goal,
                verdict(rss <= GOAL_RSS_MB) if service else "—",
            ]
        )
    headers = ["worker after its load", "database", "pid", "RSS MB", "peak MB", "goal", "result"]
    print(table(headers, memory, right={2, 3, 4}))

    if report.cold_starts:
        print()
        starts = []
        for name, timings in report.cold_starts.items():
            service = name == "service"
            best = min(timings)
            starts.append(
                [
                    "service (/healthz)" if service else "bare app (/ping)",
                    f"{best:.2f}",
                    ", ".join(f"{t:.2f}" for t in timings),
                    f"≤ {GOAL_COLD_START_S} s" if service else "reference",
                    verdict(best <= GOAL_COLD_START_S) if service else "—",
                ]
            )
        headers = ["cold start: spawn to first 200", "best s", "runs s", "goal", "result"]
        print(table(headers, starts, right={1}))

    profiles = [r for r in report.rows if r.profile is not None]
    for r in profiles:
        print(f"\nprofile of {r.target.label} ({r.target.server.database}): {r.profile}")
        if r.profile.exists():
            print_profile(r.profile)


# ---------------------------------------------------------------------------------------------


def find_wrk() -> str:
    """Debian's wrk; installed by scripts/install-wrk (apt-get) when missing."""
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk not found; installing it with scripts/install-wrk ...", flush=True)
        if subprocess.run([str(ROOT / "scripts" / "install-wrk")], check=False).returncode:
            raise SystemExit("wrk is needed: apt-get install wrk (Debian's package)")
        wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install wrk (Debian's package)")
    return wrk


def _databases(value: str) -> list[str]:
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in DATABASES]
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(f"choose from {','.join(DATABASES)}")
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up first")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--databases",
        type=_databases,
        default=list(DATABASES),
        help="comma-separated: sqlite,postgresql (default both)",
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=POSTGRES_ADMIN_URL,
        help="where the throw-away PostgreSQL database is created",
    )
    parser.add_argument("--cold-starts", type=int, default=3, help="cold starts per process")
    parser.add_argument("--skip-cold-start", action="store_true")
    parser.add_argument("--skip-stateless", action="store_true", help="no echo / stateless")
    parser.add_argument("--skip-stateful", action="store_true", help="no insert / stateful")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--access-log", action="store_true", help="keep uvicorn's access log (off by default)"
    )
    parser.add_argument(
        "--profile",
        choices=("stateless", "stateful"),
        help="record a py-spy flame graph of the service during that measured run "
        "(its figures are then perturbed)",
    )
    args = parser.parse_args()
    if args.duration <= 0 or args.warmup < 0 or args.connections < 1 or args.threads < 1:
        parser.error("--duration > 0, --warmup >= 0, --connections and --threads >= 1")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    if args.cold_starts < 1:
        parser.error("--cold-starts >= 1")
    if args.profile and not (BIN / "py-spy").exists() and shutil.which("py-spy") is None:
        parser.error("--profile needs py-spy (it is not in the virtualenv or on the PATH)")

    if not (BIN / "ladderback").exists():
        parser.error(f"run it with the project's virtualenv: .venv/bin/python {sys.argv[0]}")
    missing = [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m) is None]
    if missing:
        parser.error(f"{', '.join(missing)} missing: uvicorn[standard] is not installed")
    wrk = find_wrk()
    pinning = choose_pinning(not args.no_pin)
    version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    print(f"python {platform.python_version()}, {os.cpu_count()} cores; {pinning.note}")
    print(f"wrk: {(version.stdout + version.stderr).splitlines()[0].strip()}")
    print(
        f"load: wrk -t{args.threads} -c{args.connections}, {args.warmup:g} s warm-up, "
        f"{args.duration:g} s measured; uvicorn --workers 1 (uvloop, httptools)"
        f"{'' if args.access_log else ', --no-access-log'}"
    )
    print()

    report = Report()
    started: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="ladderback-throughput-") as name:
        folder = Path(name)
        try:
            load = LoadGenerator(wrk, args.threads, args.connections, pinning, folder)
            for index, kind in enumerate(args.databases):
                if kind == "sqlite":
                    urls = (f"sqlite:///{folder / 'service.db'}", f"sqlite:///{folder / 'bare.db'}")
                    run_database(kind, *urls, args, load, report, started, index == 0)
                    continue
                with postgres_database(args.postgres_admin_url) as url:
                    try:  # both apps in the one fresh database: the bare app's table is its own
                        run_database(kind, url, url, args, load, report, started, index == 0)
                    finally:
                        for server in list(started):  # before the database is dropped
                            stop(server)
                            started.remove(server)
            print()
            print_report(report)
        finally:  # every process started, before their folder goes
            for server in started:
                stop(server)
    return 0 if all(r.valid for r in report.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
