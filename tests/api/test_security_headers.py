"""Every answer carries the security headers a clinic's scanner looks for.

``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options:
DENY`` and a Content-Security-Policy that forbids framing, on successes and on every kind
of refusal; outside the docs pages the policy lets an answer load nothing at all.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Headers

from app.main import create_app
from app.settings import Settings
from tests.api.test_api import crashed_response

_API_ONLY = "default-src 'none'"


def _assert_secure(headers: Headers, *, page: bool) -> None:
    got = {k.lower(): v for k, v in headers.items()}
    assert got["x-content-type-options"] == "nosniff"
    assert got["referrer-policy"] == "no-referrer"
    assert got["x-frame-options"] == "DENY"
    csp = got["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert csp.startswith("default-src 'self'" if page else _API_ONLY)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/v1/exercises", 200),
        ("GET", "/v1/users/00000000-0000-4000-8000-000000000000", 404),
        ("GET", "/v1/users/not-a-user", 422),
        ("POST", "/v1/recommendations", 422),
        ("GET", "/v1/nowhere", 404),
        ("DELETE", "/v1/exercises", 405),
        ("GET", "/openapi.json", 200),
    ],
)
def test_every_answer_carries_the_security_headers(
    api: TestClient, method: str, path: str, status: int
) -> None:
    response = api.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == status, response.text
    _assert_secure(response.headers, page=False)


def test_a_refused_key_carries_them_too(app: FastAPI) -> None:
    response = TestClient(app).get("/v1/users")
    assert response.status_code == 401
    _assert_secure(response.headers, page=False)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_keep_to_this_origin_and_are_never_framed(
    api: TestClient, path: str
) -> None:
    response = api.get(path)
    assert response.status_code == 200
    _assert_secure(response.headers, page=True)


def test_an_unexpected_failure_carries_them(database_url: str, api_key: str) -> None:
    response = crashed_response(database_url, api_key)
    assert response.status_code == 500
    _assert_secure(response.headers, page=False)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"]


def test_behind_a_path_prefix_the_docs_keep_their_own_policy(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url))
    with TestClient(app, root_path="/lb") as behind:
        page = behind.get("/lb/docs")
        assert page.status_code == 200
        _assert_secure(page.headers, page=True)
        _assert_secure(behind.get("/lb/healthz").headers, page=False)
