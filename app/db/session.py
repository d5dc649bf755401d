"""One request, one transaction: the unit of work routes hand down to services.

Services and repositories never commit. ``Database.transaction`` commits when the block
ends normally and rolls back on any error, so nothing half-written survives a failure. A
lock that times out or a database that cannot be reached becomes ``ServiceUnavailable``
(503 with ``Retry-After``), never a 500.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from app.db.engine import READ_ONLY, create_db_engine
from app.db.schema import current_revisions
from app.errors import InvalidInput, ServiceUnavailable
from app.telemetry import count_database_error

__all__ = ["Database", "Session"]


class Database:
    """The engine and the transactions drawn from it."""

    def __init__(self, url: str, *, lock_timeout_seconds: float = 5.0) -> None:
        self.url = url
        self.lock_timeout_seconds = lock_timeout_seconds
        self.engine = create_db_engine(url, lock_timeout_seconds=lock_timeout_seconds)
        self._reader = self.engine.execution_options(**READ_ONLY)
        # SQLite has one writer at a time. Threads of this process queue here, woken as soon
        # as the writer before them ends, rather than in SQLite's busy handler, which polls
        # with growing sleeps: under 16 concurrent writes it let some wait past the lock
        # timeout (503s) while the file was idle. Other processes still meet at the file lock.
        self._one_writer = threading.Lock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with ExitStack() as turn:
            if write and self._one_writer is not None:
                if not self._one_writer.acquire(timeout=self.lock_timeout_seconds):
                    raise _unavailable(TimeoutError())
                turn.callback(self._one_writer.release)
            with self._session(write) as session:
                yield session

    @contextmanager
    def _session(self, write: bool) -> Iterator[Session]:
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
