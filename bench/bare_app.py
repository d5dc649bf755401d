"""A bare FastAPI app: the reference the service is measured against in bench/throughput.py.

It is what one writes with FastAPI, pydantic and SQLModel and nothing else: no
middleware, no authentication, no rate limit, no audit trail. Run it as the service runs,
one uvicorn worker with uvloop and httptools:

    BARE_DATABASE_URL=sqlite:////tmp/bare.db \\
        .venv/bin/python -m uvicorn bare_app:app --app-dir bench --workers 1

- ``GET /ping`` answers ``{"ok":true}``: the cost of the stack alone (reference only).
- ``POST /echo`` validates a body with the exact shape of a stateless recommendation
  request (``EchoRequest``, plain pydantic models that mirror its nesting field for field,
  every field required and in the request's order) and returns it. Given a complete,
  compact JSON body it answers with the same bytes, so request and response sizes match
  the service's request. The validation is plain typing (``int``, ``str``, ``date``,
  ``extra="forbid"``), without the contract's bounds, strictness and enums: the baseline
  is what FastAPI costs for a body of that size and nesting, not a second copy of the
  service's contract.
- ``POST /insert`` inserts one row into one table and commits, as a plain synchronous
  SQLModel endpoint (a ``def``, so FastAPI runs it in its thread pool), written the way the
  SQLModel tutorial writes one: add, commit, refresh, return the row. It needs
  ``BARE_DATABASE_URL``: a SQLite file (WAL, ``synchronous=NORMAL``, as the service sets
  them in app/db/engine.py) or ``postgresql+psycopg://`` (psycopg 3). The table is created
  at start-up.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine

# ---------------------------------------------------------------------------------------------
# POST /echo: the nesting of a stateless recommendation request, field for field.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EchoDose(_Strict):
    sets: int
    reps: int | None
    hold_seconds: int | None
    duration_seconds: int | None
    load_kg: float | None
    per_side: bool
    rest_seconds: int
    per_week: int
    per_day: int


class EchoExerciseResult(_Strict):
    exercise_id: str
    prescribed: EchoDose
    performed: EchoDose | None
    completed: bool
    pain_during: int | None
    pain_after: int | None
    effort: int | None
    symptom_change: str
    slot: str | None


class EchoSession(_Strict):
    date: date
    completed: bool
    exercises: list[EchoExerciseResult]
    pain_before: int | None
    pain_after: int | None
    next_day_pain: int | None
    symptom_change: str
    new_numbness_or_tingling: bool


class EchoProfile(_Strict):
    age: int
    ability: str
    equipment: list[str]
    contraindications: list[str]
    minutes_available: int


class EchoCondition(_Strict):
    kind: str
    onset_date: date
    baseline_pain: int
    red_flags: list[str]
    side: str
    directional_preference: str
    stenosis_like_symptoms: bool


class EchoRequest(_Strict):
    profile: EchoProfile
    condition: EchoCondition
    history: list[EchoSession]
    today: date | None


# ---------------------------------------------------------------------------------------------
# POST /insert: one table, one row a request.


class BareEvent(SQLModel, table=True):
    __tablename__ = "bare_event"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime
    note: str


def _engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: sqlite3.Connection, _: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


DATABASE_URL = os.environ.get("BARE_DATABASE_URL")
engine = _engine(DATABASE_URL) if DATABASE_URL else None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    if engine is not None:
        SQLModel.metadata.create_all(engine)
    yield
    if engine is not None:
        engine.dispose()


app = FastAPI(title="bare", lifespan=lifespan)


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


@app.post("/echo")
async def echo(body: EchoRequest) -> EchoRequest:
    return body


@app.post("/insert", status_code=201)
def insert() -> BareEvent:
    if engine is None:
        raise RuntimeError("set BARE_DATABASE_URL to use /insert")
    with Session(engine) as session:
        row = BareEvent(created_at=datetime.now(UTC), note="bench")
        session.add(row)
        session.commit()
        session.refresh(row)
        return row
