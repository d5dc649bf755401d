"""Database engines, set up so concurrent writers neither lose updates nor hang.

SQLite (the embedded default) runs in WAL mode with foreign keys on, and every write
transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock before it reads, so two
read-then-write requests cannot interleave and silently lose one update (SQLite's default
deferred transactions do exactly that). Read-only transactions start deferred and never
wait for a writer. PostgreSQL gets a lock timeout, so a wait ends in a clear error (served
as 503) rather than a hung request.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from pydantic_core import from_json
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

__all__ = ["POOL_CONNECTIONS", "READ_ONLY", "create_db_engine"]

# Connections one process keeps (and may add) per engine.
POOL_SIZE = 10
POOL_OVERFLOW = 10
POOL_CONNECTIONS = POOL_SIZE + POOL_OVERFLOW

# Execution options for a transaction that only reads (``engine.execution_options(**...)``).
READ_ONLY: dict[str, Any] = {"sqlite_begin": "DEFERRED"}


def _json_value(text: str | bytes) -> Any:
    try:
        return from_json(text)
    except ValueError:  # JSON pydantic-core refuses but the standard library wrote (a lone
        return json.loads(text)  # surrogate, escaped): read it as before


# JSON columns (a recommendation's inputs and output, a session's exercises) are read with
# pydantic-core's parser, which is several times faster than the standard library's:
# decoding them was a large part of a stored recommendation's time. They are written with
# the standard library, which refuses anything that is not plain JSON.
JSON_CODEC: dict[str, Any] = {"json_deserializer": _json_value}


def create_db_engine(url: str, *, lock_timeout_seconds: float = 5.0) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, lock_timeout_seconds)
    return create_engine(
        url,
        **JSON_CODEC,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_timeout=lock_timeout_seconds,
        connect_args={
            "options": f"-c lock_timeout={int(lock_timeout_seconds * 1000)}",
            # A server that does not answer at all fails a request (and /readyz) in
            # seconds, not after the operating system's connect timeout of minutes.
            "connect_timeout": max(1, round(lock_timeout_seconds)),
        },
    )


def _sqlite_engine(url: str, lock_timeout_seconds: float) -> Engine:
    engine = create_engine(
        url,
        **JSON_CODEC,
        connect_args={"check_same_thread": False, "timeout": lock_timeout_seconds},
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_timeout=lock_timeout_seconds,
    )
    busy_ms = int(lock_timeout_seconds * 1000)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _: object) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN; pysqlite's own would be DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
