"""Time POST /v1/users/{id}/recommendations for a user with 10 and with 10,000 stored sessions.

A decision reads a bounded window of the newest sessions (an index range scan) plus the
episode's history summary, so its cost should not grow with the stored history. This seeds
one user per size in a fresh, migrated database (sessions inserted directly, three a week
going back from yesterday), lets the first call of each build its summary, then times the
calls interleaved (A, B, A, B ...) so machine noise hits both alike, and prints the medians
and their ratio. Goal: ratio <= 1.2. It prints figures; it is not a test (exit 0).

Usage: python bench/history_growth.py [--database sqlite|postgresql] [--sessions 10 10000]
                                      [--requests 200]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from app.api.deps import get_now
from app.catalog.loader import default_catalog
from app.cli import migrate
from app.db.codec import exercise_result_json
from app.db.models import ExerciseSession
from app.db.session import Database
from app.domain.catalog import Catalog, Exercise
from app.domain.types import ConditionKind, Dose, Equipment, ExerciseResult
from app.main import create_app
from app.services.clients import create_client
from app.settings import Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
ONSET = date(1950, 1, 1)  # before every seeded session, for every size alike
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EQUIPMENT = ("band",)
WEEK_DAYS = (0, 2, 4)  # three sessions a week, two days apart, counted back from yesterday
INSERT_CHUNK = 1_000


@contextmanager
def fresh_database(kind: str, admin_url: str) -> Iterator[str]:
    """A new, empty database: a temporary SQLite file, or a PostgreSQL database dropped after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ladderback-bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    admin_url = Settings(database_url=admin_url).database_url
    name = f"ladderback_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _ladders(catalog: Catalog) -> dict[str, list[Exercise]]:
    """Exercises a strain programme could hold for someone with a band, by ladder (slot)."""
    kit = {Equipment(e) for e in EQUIPMENT}
    ladders: dict[str, list[Exercise]] = {}
    for e in catalog.exercises:
        if e.conditions.get(ConditionKind.STRAIN) == "suitable" and set(e.equipment) <= kit:
            ladders.setdefault(e.ladder, []).append(e)
    return ladders


def _start_dose(exercise: Exercise) -> Dose:
    t = exercise.dose

    def start(bound: Any) -> Any:
        return None if bound is None else int(bound.start)

    return Dose(
        sets=int(t.sets.start),
        reps=start(t.reps),
        hold_seconds=start(t.hold_seconds),
        duration_seconds=start(t.duration_seconds),
        load_kg=None if t.load_kg is None else float(t.load_kg.start),
        per_side=t.per_side,
        rest_seconds=t.rest_seconds,
        per_week=int(t.per_week.start),
        per_day=1 if t.per_day is None else int(t.per_day.start),
    )


def session_dates(count: int, yesterday: date) -> list[date]:
    """``count`` dates, three a week, newest first from ``yesterday``."""
    return [
        yesterday - timedelta(days=7 * (i // len(WEEK_DAYS)) + WEEK_DAYS[i % len(WEEK_DAYS)])
        for i in range(count)
    ]


def seed_sessions(
    database: Database, user_id: str, condition_id: str, count: int, catalog: Catalog
) -> None:
    """Insert ``count`` realistic sessions straight into the table (the API would take ages)."""
    rng = random.Random(count)
    ladders = _ladders(catalog)
    slots = sorted(ladders)
    doses = {e.id: _start_dose(e) for rungs in ladders.values() for e in rungs}
    rows: list[dict[str, Any]] = []
    for day in session_dates(count, NOW.date() - timedelta(days=1)):
        # 3-6 exercises, one per slot, each at some rung of its ladder.
        chosen = [rng.choice(ladders[slot]) for slot in rng.sample(slots, rng.randint(3, 6))]
        results = [
            exercise_result_json(
                ExerciseResult(
                    exercise_id=e.id,
                    prescribed=doses[e.id],
                    performed=doses[e.id],
                    pain_during=rng.randint(0, 3),
                    pain_after=rng.randint(0, 3),
                    effort=rng.randint(3, 6),
                    slot=e.ladder,
                )
            )
            for e in chosen
        ]
        stamp = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=18)
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "user_id": user_id,
                "condition_id": condition_id,
                "recommendation_id": None,
                "date": day,
                "completed": True,
                "exercises": results,
                "pain_before": rng.randint(0, 3),
                "pain_after": rng.randint(0, 3),
                "next_day_pain": rng.randint(0, 3),
                "symptom_change": "stable",
                "new_numbness_or_tingling": False,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
    with database.transaction() as session:
        for start in range(0, len(rows), INSERT_CHUNK):
            session.execute(sa.insert(ExerciseSession), rows[start : start + INSERT_CHUNK])


def _created(response: Any) -> dict[str, Any]:
    if response.status_code != 201:
        raise SystemExit(
            f"{response.request.method} {response.request.url}: "
            f"{response.status_code} {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


def new_user(client: TestClient, label: str) -> tuple[str, str]:
    """A user with an active strain episode; returns (user id, condition id)."""
    user = _created(
        client.post(
            "/v1/users",
            json={
                "external_id": f"bench-{label}-{uuid.uuid4().hex[:8]}",
                "profile": {"age": 40, "ability": "intermediate", "equipment": list(EQUIPMENT)},
            },
        )
    )
    condition = _created(
        client.post(
            f"/v1/users/{user['id']}/conditions",
            json={"kind": "strain", "onset_date": ONSET.isoformat(), "baseline_pain": 5},
        )
    )
    return user["id"], condition["id"]


def _p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.9 + 0.5) - 1)]


def run(kind: str, sizes: list[int], requests: int, admin_url: str) -> None:
    with warnings.catch_warnings():  # Starlette's nudge towards httpx2; plain httpx works
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    # Quiet: a log line per request (httpx logs each at INFO) would be timed with it.
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    catalog = default_catalog()
    with fresh_database(kind, admin_url) as url:
        migrate(url)
        database = Database(url)
        try:
            with database.transaction() as session:
                _, key = create_client(session, "history growth bench", NOW)
            app = create_app(Settings(database_url=url, log_level="WARNING"))
            app.dependency_overrides[get_now] = lambda: NOW
            with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
                users: list[str] = []
                for size in sizes:
                    user_id, condition_id = new_user(client, str(size))
                    started = time.perf_counter()
                    seed_sessions(database, user_id, condition_id, size, catalog)
                    print(f"seeded {size:>6} sessions in {time.perf_counter() - started:6.2f} s")
                    users.append(user_id)

                first: dict[str, float] = {}
                for user_id in users:
                    started = time.perf_counter()
                    _created(client.post(f"/v1/users/{user_id}/recommendations"))
                    first[user_id] = (time.perf_counter() - started) * 1000

                samples: dict[str, list[float]] = {u: [] for u in users}
                last: dict[str, str] = {}
                for _ in range(requests):
                    for user_id in users:  # interleaved: A, B, A, B ...
                        started = time.perf_counter()
                        response = client.post(f"/v1/users/{user_id}/recommendations")
                        samples[user_id].append((time.perf_counter() - started) * 1000)
                        last[user_id] = _created(response)["id"]

                print()
                print(f"database: {kind}   requests per user: {requests}   today: {NOW.date()}")
                header = (
                    f"{'sessions stored':>15}  {'in window':>9}  {'summarised':>10}  "
                    f"{'first call ms':>13}  {'median ms':>9}  {'p90 ms':>7}"
                )
                print(header)
                print("-" * len(header))
                medians: list[float] = []
                for size, user_id in zip(sizes, users, strict=True):
                    detail = client.get(f"/v1/users/{user_id}/recommendations/{last[user_id]}")
                    inputs = detail.json()["inputs"]
                    summary = inputs["summary"]
                    median = statistics.median(samples[user_id])
                    medians.append(median)
                    print(
                        f"{size:>15}  {len(inputs['history']):>9}  "
                        f"{0 if summary is None else summary['sessions']:>10}  "
                        f"{first[user_id]:>13.2f}  {median:>9.2f}  {_p90(samples[user_id]):>7.2f}"
                    )
                print("(first call = the first POST, which builds the summary of older sessions)")
                print()
                print(
                    f"ratio ({sizes[-1]}/{sizes[0]} medians): {medians[-1] / medians[0]:.2f}  "
                    "goal ≤ 1.2"
                )
        finally:
            database.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--sessions", type=int, nargs="+", default=[10, 10_000], help="history sizes to compare"
    )
    parser.add_argument("--requests", type=int, default=200, help="timed calls per user")
    parser.add_argument(
        "--postgres-admin-url",
        default=POSTGRES_ADMIN_URL,
        help="where the throw-away PostgreSQL database is created (--database postgresql)",
    )
    args = parser.parse_args()
    if len(args.sessions) < 2 or min(args.sessions) < 1 or args.requests < 1:
        parser.error("give two or more history sizes of at least 1, and --requests >= 1")
    run(args.database, args.sessions, args.requests, args.postgres_admin_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
