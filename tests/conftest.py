"""Shared fixtures.

The database under test is chosen by ``LADDERBACK_TEST_DATABASE``: ``sqlite`` (default, a
file in a temporary folder) or ``postgresql`` (a fresh database created on the server at
``LADDERBACK_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``,
and dropped at the end). Either way the schema is built by the Alembic migrations, never
by ``create_all``.

Tests do not clean tables between them: each test works as its own new tenant (client),
so the data of one test is invisible to the next exactly as a tenant's is to another.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.deps import get_now
from app.catalog.loader import default_catalog
from app.cli import migrate
from app.db.session import Database
from app.domain.catalog import Catalog
from app.main import create_app
from app.services.clients import create_client
from app.settings import Settings

TODAY = date(2026, 11, 24)
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()


def database_kind() -> str:
    kind = os.environ.get("LADDERBACK_TEST_DATABASE", "sqlite")
    if kind not in ("sqlite", "postgresql"):
        raise pytest.UsageError("LADDERBACK_TEST_DATABASE must be sqlite or postgresql")
    return kind


def fresh_database_url(folder: Path) -> Iterator[str]:
    """A new, empty database of the kind under test; dropped afterwards (PostgreSQL)."""
    if database_kind() == "sqlite":
        yield f"sqlite:///{folder / 'ladderback.db'}"
        return
    admin_url = Settings(
        database_url=os.environ.get("LADDERBACK_TEST_POSTGRES_URL", POSTGRES_ADMIN_URL)
    ).database_url
    name = f"ladderback_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The suite's database, migrated to head."""
    for url in fresh_database_url(tmp_path_factory.mktemp("db")):
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


@dataclass
class Clock:
    """The service clock, settable by tests (the domain reads no clock; the service does)."""

    now: datetime

    def set_day(self, day: date, hour: int = 12) -> None:
        self.now = datetime.combine(day, time(hour), tzinfo=UTC)


@pytest.fixture(scope="session")
def service_clock() -> Clock:
    return Clock(datetime.combine(TODAY, time(12), tzinfo=UTC))


@pytest.fixture(autouse=True)
def _fresh_clock(service_clock: Clock) -> None:
    """Every test starts on TODAY, whatever the one before did to the clock."""
    service_clock.set_day(TODAY)


@pytest.fixture
def clock(service_clock: Clock) -> Clock:
    return service_clock


@pytest.fixture(scope="session")
def app(database_url: str, service_clock: Clock) -> Iterator[FastAPI]:
    application = create_app(Settings(database_url=database_url, public_url="http://testserver"))
    application.dependency_overrides[get_now] = lambda: service_clock.now
    with TestClient(application):  # runs the lifespan once: loads the catalog
        yield application


def new_key(database: Database, name: str = "test client") -> str:
    with database.transaction() as session:
        _, key = create_client(session, name, datetime.now(UTC))
    return key


@pytest.fixture
def api_key(database: Database) -> str:
    """A new tenant for this test."""
    return new_key(database)


@pytest.fixture
def api(app: FastAPI, api_key: str) -> TestClient:
    """An HTTP client of the service, authenticated as this test's own tenant."""
    return TestClient(app, headers={"Authorization": f"Bearer {api_key}"})
