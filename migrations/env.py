"""Alembic environment: migrates the database named by the settings (``DATABASE_URL``).

A caller may pass a URL instead through ``config.attributes["url"]`` (tests do, for their
own throw-away databases).
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import app.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from app.db.engine import create_db_engine
from app.settings import get_settings

config = context.config
url = config.attributes.get("url") or get_settings().database_url
# Instances starting together migrate in turn; a later one may wait this long for an earlier
# one's migration, longer than a request waits for a lock.
TURN_SECONDS = 600
# Any fixed number: the advisory lock that serialises migrations on PostgreSQL.
MIGRATION_LOCK_ID = 0x6C61646465726261


def run_migrations_online() -> None:
    sqlite = url.startswith("sqlite")
    # SQLite: the wait for the write lock (BEGIN IMMEDIATE) is the wait for the turn.
    engine = create_db_engine(url, lock_timeout_seconds=TURN_SECONDS if sqlite else 5.0)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            # SQLite cannot ALTER most things: batch mode copies the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            # Taken before Alembic reads the current version: a waiting instance then sees
            # the schema its predecessor left. SQLite's BEGIN IMMEDIATE does the same.
            # PostgreSQL: only the wait for the turn is long; the migration's own statements
            # keep the normal lock timeout, so none queues a busy table's readers for long.
            if not sqlite:
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{TURN_SECONDS}s'")
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
                connection.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=SQLModel.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
