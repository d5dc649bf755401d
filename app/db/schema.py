"""The database schema's version: migrating to the newest, and checking where a database is.

The migration scripts live in ``migrations/`` beside the ``app`` package (in the container
image too). Several instances may start at once, each migrating first: they take turns (a
PostgreSQL advisory lock, SQLite's write lock), and the later ones find nothing to do.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: a worker needs it only for its first /readyz, and
# importing it up front added a tenth of a second to every worker's start.

__all__ = ["MIGRATIONS", "ROOT", "alembic_config", "current_revisions", "head_revisions", "migrate"]

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def migrate(url: str, revision: str = "head") -> None:
    """``alembic upgrade`` on ``url``, with the project's own migration scripts."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """The revisions this release's code expects (empty when the scripts are missing)."""
    from alembic.script import ScriptDirectory

    if not MIGRATIONS.is_dir():
        return frozenset()
    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def current_revisions(engine: Engine) -> frozenset[str]:
    """The revisions the database is at (empty when it was never migrated).

    Read with plain SQL: Alembic's own reader logs two lines each time, and readiness
    probes ask every few seconds."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return frozenset()
        found = connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")
        return frozenset(str(v) for v in found.scalars())
