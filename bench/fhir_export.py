"""Time and weigh the FHIR export of a user with 500 sessions; prints figures (exit 0).

The user is seeded as the API would store them (``tests.long_record``): one session a
day, each logged after its own recommendation, so every session cites a stored
recommendation (about 120 KB of stored JSON each, mostly its inputs). Timed in process,
from the read transaction to the JSON text sent, without HTTP:

- a page of ``--page`` sessions (the route's largest): first page, and one further on;
- every page of the record, one after another (what a client following `next` costs);
- all 500 sessions in one call, as the export did before it was paged.

Peak memory is Python's own allocations (tracemalloc) during one call.

Before this change one call exporting 500 sessions took 3.7 s, allocated a 177 MB peak and
sent 4.8 MB on the machine this was written on (2 cores): it decoded each cited
recommendation whole (inputs and all) and built, then serialised twice, ~5,000
``fhir.resources`` models.

Usage: python bench/fhir_export.py [--database sqlite|postgresql] [--sessions 500]
                                   [--page 50] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.api.routes.fhir import MAX_PAGE_SESSIONS
from app.catalog.loader import default_catalog
from app.cli import migrate
from app.db.session import Database
from app.interop.fhir import bundle_json
from app.services.clients import create_client
from app.services.fhir_export import export_user
from bench.history_growth import POSTGRES_ADMIN_URL, fresh_database
from tests.long_record import seed_long_record

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _median_ms(call: Callable[[], object], runs: int) -> float:
    call()  # warm: first use imports nothing more, caches the statements
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _peak_mb(call: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--page", type=int, default=MAX_PAGE_SESSIONS)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    with fresh_database(args.database, args.postgres_url) as url:
        migrate(url)
        database = Database(url)
        with database.transaction() as db:
            client, _ = create_client(db, "bench", NOW)
        start = time.perf_counter()
        user_id = seed_long_record(
            database, client.id, default_catalog(), sessions=args.sessions, until=NOW
        )
        print(
            f"seeded {args.sessions} sessions, each after its own recommendation "
            f"({args.database}, {time.perf_counter() - start:.1f} s)"
        )

        def page(size: int, cursor: str | None = None) -> tuple[str, str | None]:
            with database.transaction(write=False) as db:
                found = export_user(db, client.id, user_id, NOW, size, cursor=cursor)
                return bundle_json(found.bundle), found.next_cursor

        def every_page() -> int:
            pages, cursor = 0, None
            while True:
                _, cursor = page(args.page, cursor)
                pages += 1
                if cursor is None:
                    return pages

        _, second = page(args.page)
        for label, cursor in (("first page", None), ("second page", second)):
            text, _ = page(args.page, cursor)
            ms = _median_ms(lambda c=cursor: page(args.page, c), args.runs)  # type: ignore[misc]
            peak = _peak_mb(lambda c=cursor: page(args.page, c))  # type: ignore[misc]
            print(
                f"{label} ({args.page} sessions): median {ms:6.1f} ms, "
                f"peak {peak:5.1f} MB, {len(text) / 1e6:.2f} MB sent"
            )
        pages = every_page()
        whole = _median_ms(every_page, max(3, args.runs // 5))
        print(f"all {pages} pages, one after another: {whole:6.0f} ms in all")
        text, _ = page(args.sessions)
        one_call = _median_ms(lambda: page(args.sessions), 3)
        peak = _peak_mb(lambda: page(args.sessions))
        print(
            f"{args.sessions} sessions in one call (no longer allowed): {one_call:6.0f} ms, "
            f"peak {peak:5.1f} MB, {len(text) / 1e6:.2f} MB sent"
        )
        print("before this change, one call of 500: 3,700 ms, peak 177 MB, 4.8 MB sent")
        database.dispose()


if __name__ == "__main__":
    main()
