"""One request, one transaction: the unit of work routes hand down to services.

Services and repositories never commit. ``Database.transaction`` commits when the block
ends normally and rolls back on any error, so nothing half-written survives a failure. A
lock that times out or a database that cannot be reached becomes ``ServiceUnavailable``
(503 with ``Retry-After``), never a 500.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass

from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from app.db.engine import POOL_CONNECTIONS, READ_ONLY, create_db_engine
from app.db.schema import current_revisions
from app.errors import InvalidInput, ServiceUnavailable
from app.telemetry import count_database_error

__all__ = ["Database", "Session"]


@dataclass(frozen=True, slots=True)
class _Turns:
    connection: asyncio.Semaphore
    writer: asyncio.Lock | None


class Database:
    """The engine and the transactions drawn from it."""

    def __init__(self, url: str, *, lock_timeout_seconds: float = 5.0) -> None:
        self.url = url
        self.lock_timeout_seconds = lock_timeout_seconds
        self.engine = create_db_engine(url, lock_timeout_seconds=lock_timeout_seconds)
        self._reader = self.engine.execution_options(**READ_ONLY)
        # Requests wait their turn for the database on the event loop, holding no worker
        # thread. A request's transaction moves between threads (opened in one, used in
        # the route's, committed in a third); when waiters sat in threads instead, enough
        # of them (40 on a worker) left the transaction whose turn it was no thread to
        # finish in, and all timed out. Two turns are kept per event loop:
        # - one per pooled connection, for every request's transaction;
        # - on SQLite, one writer at a time, woken as soon as the writer before ends. In
        #   SQLite's busy handler, which polls with growing sleeps, some of 16 concurrent
        #   writers waited past the lock timeout while the file was idle. Other processes
        #   still meet at the file lock.
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns]
        self._turns = weakref.WeakKeyDictionary()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def turn(self, *, write: bool) -> AsyncIterator[None]:
        """This request's turn to use the database (and, on SQLite, to write);
        ``ServiceUnavailable`` when it does not come within the lock timeout."""
        turns = self._turns.get(asyncio.get_running_loop())
        if turns is None:
            one_writer = asyncio.Lock() if self.dialect == "sqlite" else None
            turns = _Turns(asyncio.Semaphore(POOL_CONNECTIONS), one_writer)
            self._turns[asyncio.get_running_loop()] = turns
        gates = [turns.connection] + ([turns.writer] if write and turns.writer else [])
        async with AsyncExitStack() as held:
            for gate in gates:
                try:
                    async with asyncio.timeout(self.lock_timeout_seconds):
                        await held.enter_async_context(gate)
                except TimeoutError:
                    raise _unavailable(TimeoutError()) from None
            yield

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with Session(self.engine if write else self._reader, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except (OperationalError, PoolTimeout) as exc:
                session.rollback()
                raise _unavailable(exc) from None
            except DataError:
                session.rollback()
                count_database_error("invalid_value")
                # A value the database cannot store (the API's own checks should stop these).
                raise InvalidInput("body", "holds a value the database cannot store") from None
            except BaseException:
                session.rollback()
                raise

    def schema_revisions(self) -> frozenset[str]:
        """The migration revisions the database is at; ``ServiceUnavailable`` if it cannot
        be reached."""
        try:
            return current_revisions(self._reader)
        except (OperationalError, PoolTimeout) as exc:
            raise _unavailable(exc) from None

    def dispose(self) -> None:
        self.engine.dispose()


def _unavailable(exc: Exception) -> ServiceUnavailable:
    count_database_error("unavailable")
    # The class only: driver messages can quote the statement's parameters.
    return ServiceUnavailable(
        "The database is busy or unreachable; retry shortly.", cause=type(exc).__name__
    )
