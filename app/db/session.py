"""One request, one transaction: the unit of work routes hand down to services.

Services and repositories never commit. ``Database.transaction`` commits when the block
ends normally and rolls back on any error, so nothing half-written survives a failure. A
lock that times out or a database that cannot be reached becomes ``ServiceUnavailable``
(503 with ``Retry-After``), never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from app.db.engine import READ_ONLY, create_db_engine
from app.errors import InvalidInput, ServiceUnavailable

__all__ = ["Database", "Session"]


class Database:
    """The engine and the transactions drawn from it."""

    def __init__(self, url: str, *, lock_timeout_seconds: float = 5.0) -> None:
        self.url = url
        self.engine = create_db_engine(url, lock_timeout_seconds=lock_timeout_seconds)
        self._reader = self.engine.execution_options(**READ_ONLY)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with Session(self.engine if write else self._reader, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except (OperationalError, PoolTimeout) as exc:
                session.rollback()
                # The class only: driver messages can quote the statement's parameters.
                raise ServiceUnavailable(
                    "The database is busy or unreachable; retry shortly.", cause=type(exc).__name__
                ) from None
            except DataError:
                session.rollback()
                # A value the database cannot store (the API's own checks should stop these).
                raise InvalidInput("body", "holds a value the database cannot store") from None
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
