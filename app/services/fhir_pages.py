"""FHIR export pages built in processes of their own, so their CPU work never holds the
worker's GIL.

A page costs some tens of milliseconds of pure Python (mapping and checking resources). In
a thread of the worker, that thread takes the GIL from the event loop and from every
other request's thread: each of their database round trips then waits up to the
interpreter's switch interval (5 ms) to run again, and one client exporting at full speed
made another client's 3 ms listing take 25 ms on PostgreSQL. In a process of its own, the
page competes only for a core, which the operating system shares fairly.

Each worker starts its export processes on the first export (``spawn``: nothing of the
worker's threads or connections is inherited) and each process opens its own database
engine. A page is read in one read transaction there, as it would be in the worker.
Errors a page may raise (``NotFound``, ``ServiceUnavailable``) pickle as they are; a
cursor is read in the worker first, so a bad one is refused without a trip here.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from app.db.session import Database
from app.errors import ServiceUnavailable
from app.services.fhir_cursor import CURSOR_PARAMETER, read_cursor

__all__ = ["ExportProcesses", "PageRequest", "page_url"]

# The database of this export process (None in a worker).
_database: Database | None = None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Everything a page needs, sent to the export process."""

    client_id: str
    user_id: str
    now: datetime
    size: int
    cursor: str | None
    path: str  # the URL path the page was asked at, any path prefix included
    query: tuple[tuple[str, str], ...]  # its query parameters, as sent


def page_url(path: str, query: tuple[tuple[str, str], ...], cursor: str | None) -> str:
    """The URL of the page at ``cursor`` (None: the first), relative to the host: the same
    path and query parameters, but for the cursor."""
    kept = [(k, v) for k, v in query if k != CURSOR_PARAMETER]
    if cursor is not None:
        kept.append((CURSOR_PARAMETER, cursor))
    return f"{path}?{urlencode(kept)}" if kept else path


def _open(url: str, lock_timeout_seconds: float) -> None:
    """Start an export process: its database, and the FHIR models (0.2 s to import)."""
    global _database
    # A group of its own: signals to the worker's group (Ctrl-C, a stop) are the worker's
    # to act on: it finishes its requests, then stops this process. The pool's own
    # terminate() of a broken pool still reaches it.
    os.setpgrp()
    # A worker killed outright cannot stop it: it stops itself when the worker is gone.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    import app.services.fhir_export  # noqa: F401

    _database = Database(url, lock_timeout_seconds=lock_timeout_seconds)


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(0)


def build_page(request: PageRequest) -> str:
    """The page as sent (FHIR JSON text). Runs in an export process."""
    from app.interop.fhir import bundle_json
    from app.services.fhir_export import export_user

    if _database is None:
        raise RuntimeError("build_page runs in an export process (ExportProcesses)")
    with _database.transaction(write=False) as session:
        page = export_user(
            session,
            request.client_id,
            request.user_id,
            request.now,
            request.size,
            cursor=request.cursor,
            page_url=lambda at: page_url(request.path, request.query, at),
        )
    return bundle_json(page.bundle)


class ExportProcesses:
    """This worker's export processes, started on first use."""

    def __init__(self, database_url: str, lock_timeout_seconds: float, processes: int) -> None:
        self._start_args = (database_url, lock_timeout_seconds)
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def _running(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_open,
                initargs=self._start_args,
            )
        return self._pool

    async def page(self, request: PageRequest) -> str:
        """The page, built in an export process; awaiting it holds no thread."""
        if request.cursor is not None:
            read_cursor(request.cursor)
        for _ in range(2):
            pool = self._running()
            try:
                future = pool.submit(build_page, request)
            except BrokenProcessPool:
                # It died while idle: no page was lost. Start afresh and ask once more.
                self._discard(pool)
                continue
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                # It died building pages (killed, out of memory): they are lost.
                self._discard(pool)
                break
        raise ServiceUnavailable(
            "The export could not be built; retry shortly.", cause="export process died"
        )

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        """Forget a broken pool, unless another failed page has replaced it already."""
        if self._pool is pool:
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def broken(self) -> bool:
        """Whether the running pool has lost a process (the next page starts another)."""
        return self._pool is not None and bool(getattr(self._pool, "_broken", False))

    def process_ids(self) -> list[int]:
        """The export processes running now (none before the first export)."""
        if self._pool is None:
            return []
        return list(self._pool._processes or {})

    def close(self) -> None:
        """Stop the export processes (at interpreter exit they are stopped anyway)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
