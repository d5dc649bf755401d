"""The schema is the migrations' work: upgrade, downgrade and agreement with the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.util.exc import CommandError
from sqlmodel import SQLModel

from app.db.engine import create_db_engine
from app.db.schema import alembic_config, migrate
from tests.conftest import fresh_database_url

TABLES = {
    "api_client",
    "app_user",
    "condition_episode",
    "exercise_session",
    "recommendation",
    "history_summary",
    "idempotency_key",
    "audit_event",
    "cds_issuer",
    "cds_token_use",
    "cds_card",
    "cds_feedback",
}


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(tmp_path)


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_builds_every_table_and_downgrade_removes_them(empty_url: str) -> None:
    migrate(empty_url)
    assert _tables(empty_url) == TABLES
    command.downgrade(alembic_config(empty_url), "base")
    assert _tables(empty_url) == set()
    migrate(empty_url)  # and back up again, cleanly
    assert _tables(empty_url) == TABLES


def test_alembic_check_finds_the_models_and_migrations_in_agreement(empty_url: str) -> None:
    migrate(empty_url)
    command.check(alembic_config(empty_url))  # raises when autogenerate would write anything


def test_alembic_check_fails_when_a_model_changes_without_a_migration(empty_url: str) -> None:
    migrate(empty_url)
    table = SQLModel.metadata.tables["app_user"]
    extra = sa.Column("shoe_size", sa.Integer, nullable=True)
    table.append_column(extra)
    try:
        engine = create_db_engine(empty_url)
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        engine.dispose()
        assert [d[0] for d in diff] == ["add_column"]
        with pytest.raises(CommandError, match="New upgrade operations detected"):
            command.check(alembic_config(empty_url))
    finally:
        table._columns.remove(extra)  # restore the shared metadata for the other tests
    command.check(alembic_config(empty_url))
