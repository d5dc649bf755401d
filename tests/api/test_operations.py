"""Operations endpoints: readiness follows the database, metrics count what happened.

``/readyz`` is checked against a database that goes away and comes back (PostgreSQL behind
a TCP relay the test cuts), and against a schema that is not at the migrations' head.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.api.schemas import RECOMMENDATION_REQUEST_EXAMPLE
from app.db.schema import head_revisions, migrate
from app.main import create_app
from app.settings import Settings
from tests.conftest import database_kind, fresh_database_url

# ---------------------------------------------------------------------------------------------
# Metrics


def _samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``, keyed by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_by_route_and_recommendations_by_status_and_change(
    api: TestClient,
) -> None:
    before = _samples(api)
    answered = api.post("/v1/recommendations", json=RECOMMENDATION_REQUEST_EXAMPLE)
    assert answered.status_code == 200
    decision = answered.json()
    missing = str(uuid.uuid4())
    assert api.get(f"/v1/users/{missing}").status_code == 404
    assert api.get("/no/such/route").status_code == 404
    after = _samples(api)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    requests = "ladderback_http_requests_total"
    assert grew(requests, method="POST", route="/v1/recommendations", status="200") == 1
    # Routes are templates: one series per route, whatever ids the paths carry.
    assert grew(requests, method="GET", route="/v1/users/{user_id}", status="404") == 1
    assert grew(requests, method="GET", route="unmatched", status="404") == 1
    assert not any(missing in str(labels) for _, labels in after)
    latency = "ladderback_http_request_duration_seconds_count"
    assert grew(latency, method="POST", route="/v1/recommendations", status="200") == 1

    status = decision["status"]
    assert grew("ladderback_recommendations_total", source="stateless", status=status) == 1
    changes: dict[str, int] = {}
    for exercise in decision["exercises"]:
        changes[exercise["change"]] = changes.get(exercise["change"], 0) + 1
    assert changes, "the example should give exercises"
    for change, count in changes.items():
        name = "ladderback_recommended_exercises_total"
        assert grew(name, source="stateless", change=change) == count


def test_a_body_refused_before_routing_is_counted_under_its_route(
    app: FastAPI, api_key: str
) -> None:
    client = TestClient(app, headers={"Authorization": f"Bearer {api_key}"})
    before = _samples(client)
    huge = {**RECOMMENDATION_REQUEST_EXAMPLE, "padding": "x" * 300_000}
    assert client.post("/v1/recommendations", json=huge).status_code == 413
    after = _samples(client)
    labels = {"method": "POST", "route": "/v1/recommendations", "status": "413"}
    name = "ladderback_http_requests_total"
    assert _value(after, name, **labels) - _value(before, name, **labels) == 1


def test_operations_routes_need_no_key(app: FastAPI) -> None:
    anonymous = TestClient(app)
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/readyz").status_code == 200
    assert anonymous.get("/metrics").status_code == 200


# ---------------------------------------------------------------------------------------------
# Readiness


def test_ready_names_the_database_and_its_schema_revision(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        ready = TestClient(app).get("/readyz")
    # Probes come every few seconds: they must not fill the log.
    assert not [r for r in caplog.records if r.name.startswith(("alembic", "ladderback"))]
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "database": database_kind(),
        "schema_revision": ", ".join(sorted(head_revisions())),
    }


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(tmp_path)


def test_not_ready_until_the_schema_is_migrated_to_head(fresh_url: str) -> None:
    (head,) = head_revisions()
    migrate(fresh_url, "75502ca8b60f")  # a release behind
    app = create_app(Settings(database_url=fresh_url))
    with TestClient(app) as client:
        behind = client.get("/readyz")
        assert behind.status_code == 503
        assert behind.headers["content-type"] == "application/problem+json"
        assert "Retry-After" in behind.headers
        assert "75502ca8b60f" in behind.json()["detail"]
        assert head in behind.json()["detail"]
        assert "ladderback db upgrade" in behind.json()["detail"]
        # Liveness does not depend on the database: the process is fine.
        assert client.get("/healthz").status_code == 200
        migrate(fresh_url)
        assert client.get("/readyz").status_code == 200
    app.state.database.dispose()


def test_a_database_never_migrated_is_not_ready(fresh_url: str) -> None:
    app = create_app(Settings(database_url=fresh_url))
    with TestClient(app) as client:
        response = client.get("/readyz")
    app.state.database.dispose()
    assert response.status_code == 503
    assert "not migrated" in response.json()["detail"]


class Relay:
    """A TCP relay to PostgreSQL that the test can cut (the database "goes down": every
    connection dropped, new ones refused) and restore on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                # shutdown wakes the accepting thread; a bare close would leave it listening
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.mark.skipif(
    database_kind() != "postgresql", reason="a database server that can go away: PostgreSQL"
)
def test_not_ready_while_the_database_is_down_and_ready_when_it_is_back(fresh_url: str) -> None:
    migrate(fresh_url)
    found = re.match(r"^(.*)@([^:/]+):(\d+)/(.*)$", fresh_url)
    assert found, fresh_url
    prefix, host, port, name = found.groups()
    relay = Relay((host, int(port)))
    relay.start()
    settings = Settings(database_url=f"{prefix}@127.0.0.1:{relay.port}/{name}")
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            assert client.get("/readyz").status_code == 200
            errors_before = _value(
                _samples(client), "ladderback_database_errors_total", kind="unavailable"
            )

            relay.cut()
            down = client.get("/readyz")
            assert down.status_code == 503, down.text
            assert down.headers["content-type"] == "application/problem+json"
            assert down.headers["Retry-After"] == "1"
            assert "unreachable" in down.json()["detail"]
            assert client.get("/healthz").status_code == 200  # alive, only not ready
            errors = _value(
                _samples(client), "ladderback_database_errors_total", kind="unavailable"
            )
            assert errors > errors_before

            relay.start()  # the same port again
            back = client.get("/readyz")
            assert back.status_code == 200, back.text
            assert back.json()["database"] == "postgresql"
    finally:
        relay.cut()
        app.state.database.dispose()
