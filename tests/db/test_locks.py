"""A write that cannot get its lock in time is a 503 with Retry-After, never a 500, and
leaves nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.deps import get_now
from app.db.engine import create_db_engine
from app.main import create_app
from app.settings import Settings
from tests.api.test_api import assert_problem
from tests.builders import condition, new_user, session
from tests.conftest import TODAY, Clock


@pytest.fixture
def impatient_app(database_url: str, service_clock: Clock) -> Iterator[FastAPI]:
    app = create_app(Settings(database_url=database_url, db_lock_timeout_seconds=0.3))
    app.dependency_overrides[get_now] = lambda: service_clock.now
    with TestClient(app):
        yield app


def test_a_lock_timeout_is_a_503_with_retry_after(
    impatient_app: FastAPI, api: TestClient, api_key: str, database_url: str
) -> None:
    user_id = new_user(api, with_condition=condition())
    impatient = TestClient(impatient_app, headers={"X-API-Key": api_key})
    url = f"/v1/users/{user_id}/sessions"

    holder = create_db_engine(database_url)
    with holder.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: holds the write lock
        else:
            connection.execute(
                sa.text("SELECT id FROM app_user WHERE id = :id FOR UPDATE"), {"id": user_id}
            )
        blocked = impatient.post(url, json=session(day=TODAY))
        problem = assert_problem(blocked, 503)
        assert blocked.headers["retry-after"].isdigit()
        assert "retry" in problem["detail"]
        connection.rollback()
    holder.dispose()

    assert impatient.get(url).json()["total"] == 0  # nothing half-written
    assert impatient.post(url, json=session(day=TODAY)).status_code == 201


def test_more_concurrent_writes_than_worker_threads_all_succeed(app: FastAPI, api_key: str) -> None:
    """A worker has 40 threads. Writers that wait their turn must not hold them all while
    the writer whose turn it is needs one to finish (which made every waiter time out)."""
    writers = 100

    async def write_all() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers, timeout=60
        ) as client:

            async def one(i: int) -> int:
                body = {"external_id": f"crowd-{i}", "profile": {"age": 30}}
                return (await client.post("/v1/users", json=body)).status_code

            return list(await asyncio.gather(*(one(i) for i in range(writers))))

    assert asyncio.run(write_all()) == [201] * writers
    listed = TestClient(app, headers={"Authorization": f"Bearer {api_key}"}).get("/v1/users")
    assert listed.json()["total"] == writers
