"""Tenants, API keys and users: who may see what, and the right to erasure."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.db.session import Database
from app.settings import Settings
from tests.api.test_api import assert_problem
from tests.builders import condition, new_user, performed_as_prescribed, session
from tests.conftest import TODAY, Clock, new_key

# ---------------------------------------------------------------------------------------------
# API keys


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer lb_000000000000_" + "A" * 43},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "lb_000000000000_" + "A" * 43},
    ],
    ids=["missing", "unknown", "malformed", "basic-auth", "unknown-x-api-key"],
)
@pytest.mark.parametrize("path", ["/v1/users", "/v1/exercises", "/v1/ruleset"])
def test_every_v1_route_needs_a_valid_key(app: FastAPI, headers: dict[str, str], path: str) -> None:
    response = TestClient(app).get(path, headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_stateless_decision_needs_a_key_too(app: FastAPI) -> None:
    assert_problem(TestClient(app).post("/v1/recommendations", json={}), 401)


def test_health_needs_no_key(app: FastAPI) -> None:
    assert TestClient(app).get("/healthz").status_code == 200


def test_a_key_works_as_bearer_or_x_api_key(app: FastAPI, api_key: str) -> None:
    client = TestClient(app)
    assert client.get("/v1/users", headers={"Authorization": f"Bearer {api_key}"}).is_success
    assert client.get("/v1/users", headers={"X-API-Key": api_key}).is_success


def test_credentials_that_disagree_are_refused_never_one_of_them_chosen(
    app: FastAPI, database: Database, api_key: str
) -> None:
    """Every arrangement of up to two Authorization and two X-API-Key headers, drawn from
    two tenants' keys, a garbage one and an empty one: served only when every credential is
    the same key, and then as that key's tenant; otherwise a 401 problem, whichever header
    comes first."""
    other = new_key(database, "the other tenant")
    client = TestClient(app)
    mine = new_user(TestClient(app, headers={"X-API-Key": api_key}))
    pool = {"mine": api_key, "other": other, "garbage": "lb_000000000000_" + "A" * 43, "empty": ""}
    choices = [(), *((k,) for k in pool), *((a, b) for a in pool for b in pool)]
    for bearers in choices:
        for x_keys in choices:
            headers = [("Authorization", f"Bearer {pool[k]}") for k in bearers]
            headers += [("X-API-Key", pool[k]) for k in x_keys]
            presented = set(bearers) | set(x_keys)
            response = client.get("/v1/users", headers=headers)
            if presented == {"mine"}:
                assert response.status_code == 200, headers
                assert mine in [u["id"] for u in response.json()["items"]]
            elif presented == {"other"}:
                assert response.status_code == 200, headers
                assert mine not in [u["id"] for u in response.json()["items"]]
            else:
                assert_problem(response, 401)
                if len(presented) > 1:
                    assert "more than one credential" in response.json()["detail"]


def test_a_key_with_one_character_changed_is_refused(app: FastAPI, api_key: str) -> None:
    forged = api_key[:-1] + ("A" if api_key[-1] != "A" else "B")
    assert_problem(TestClient(app).get("/v1/users", headers={"X-API-Key": forged}), 401)


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_creates_lists_and_revokes_clients(
    app: FastAPI, database_url: str, database: Database, clock: Clock
) -> None:
    made = _cli(database_url, "clients", "create", "Clinic Nord")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    client_id = made.stdout.split()[1]
    assert key.startswith("lb_")

    listed = _cli(database_url, "clients", "list")
    assert client_id in listed.stdout
    assert "Clinic Nord" in listed.stdout
    assert key not in listed.stdout  # the key is shown once, at creation

    with database.engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT key_hash FROM api_client WHERE id = :id"), {"id": client_id}
        ).scalar_one()
    assert key not in stored  # only a hash is kept
    assert len(stored) == 64

    http = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    assert http.get("/v1/users").status_code == 200
    revoked = _cli(database_url, "clients", "revoke", client_id)
    assert revoked.returncode == 0, revoked.stderr
    # A key checked moments ago is trusted a few seconds more (LADDERBACK_KEY_CACHE_SECONDS),
    # then no longer.
    assert http.get("/v1/users").status_code == 200
    clock.now += timedelta(seconds=Settings().key_cache_seconds)
    problem = assert_problem(http.get("/v1/users"), 401)
    assert "revoked" in problem["detail"]
    assert _cli(database_url, "clients", "revoke", "no-such-client").returncode == 1


# ---------------------------------------------------------------------------------------------
# Users


def test_a_user_is_created_read_listed_updated_and_deleted(api: TestClient) -> None:
    made = api.post(
        "/v1/users",
        json={"external_id": "member-7", "profile": {"age": 51, "equipment": ["mat", "band"]}},
    )
    assert made.status_code == 201, made.text
    user = made.json()
    assert made.headers["location"] == f"/v1/users/{user['id']}"
    assert user["profile"] == {
        "age": 51,
        "ability": "beginner",
        "equipment": ["band", "mat"],
        "contraindications": [],
        "minutes_available": 30,
    }
    assert api.get(f"/v1/users/{user['id']}").json() == user

    patched = api.patch(f"/v1/users/{user['id']}", json={"profile": {"minutes_available": 45}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["profile"]["minutes_available"] == 45
    assert patched.json()["profile"]["age"] == 51  # left out, so kept

    assert api.delete(f"/v1/users/{user['id']}").status_code == 204
    assert_problem(api.get(f"/v1/users/{user['id']}"), 404)
    assert_problem(api.delete(f"/v1/users/{user['id']}"), 404)


def test_users_are_listed_a_page_at_a_time(api: TestClient) -> None:
    ids = [new_user(api, external_id=f"member-{i}") for i in range(5)]
    first = api.get("/v1/users", params={"limit": 2}).json()
    rest = api.get("/v1/users", params={"limit": 10, "offset": 2}).json()
    assert first["total"] == rest["total"] == 5
    listed = [u["id"] for u in first["items"] + rest["items"]]
    assert sorted(listed) == sorted(ids)  # every user once, none on two pages
    again = api.get("/v1/users", params={"limit": 10}).json()
    assert [u["id"] for u in again["items"]] == listed  # a stable order
    assert_problem(api.get("/v1/users", params={"limit": 0}), 422, "query.limit")
    assert_problem(api.get("/v1/users", params={"offset": -1}), 422, "query.offset")


def test_an_external_id_is_unique_within_a_tenant_only(app: FastAPI, api: TestClient) -> None:
    new_user(api, external_id="member-1")
    again = api.post("/v1/users", json={"external_id": "member-1", "profile": {"age": 30}})
    assert_problem(again, 409, "external_id")
    other = new_user(api, external_id="member-2")
    clash = api.patch(f"/v1/users/{other}", json={"external_id": "member-1"})
    assert_problem(clash, 409, "external_id")
    assert api.get(f"/v1/users/{other}").json()["external_id"] == "member-2"
    # Another tenant may use the same external id for its own person.
    second = TestClient(app, headers={"X-API-Key": new_key(app.state.database)})
    assert new_user(second, external_id="member-1")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"profile": {"age": None}}, "profile"),
        ({"profile": {"age": 5}}, "profile.age"),
        ({"profile": {"age": "40"}}, "profile.age"),
        ({"external_id": None}, "body"),
        ({"external_id": " padded "}, "external_id"),
        ({"nickname": "x"}, "nickname"),
    ],
)
def test_a_bad_patch_is_refused_and_changes_nothing(
    api: TestClient, patch: dict[str, Any], field: str
) -> None:
    user_id = new_user(api)
    before = api.get(f"/v1/users/{user_id}").json()
    assert_problem(api.patch(f"/v1/users/{user_id}", json=patch), 422, field)
    assert api.get(f"/v1/users/{user_id}").json() == before


# ---------------------------------------------------------------------------------------------
# Tenancy


def _seed_everything(api: TestClient) -> dict[str, str]:
    """A user with an episode, a session and a recommendation: every kind of child id."""
    user_id = new_user(api, with_condition=condition())
    rec = api.post(f"/v1/users/{user_id}/recommendations").json()
    done = performed_as_prescribed(rec["recommendation"])
    logged = api.post(f"/v1/users/{user_id}/sessions", json=session(day=TODAY, exercises=done))
    episode = api.get(f"/v1/users/{user_id}/conditions").json()["items"][0]
    return {
        "user_id": user_id,
        "condition_id": episode["id"],
        "session_id": logged.json()["id"],
        "recommendation_id": rec["id"],
    }


_BODIES: dict[str, dict[str, Any]] = {
    "update_user": {"profile": {"age": 60}},
    "create_condition": condition(),
    "update_user_condition": {"baseline_pain": 2},
    "log_session": session(day=TODAY),
    "update_session": {"next_day_pain": 1},
}


def test_another_tenants_ids_answer_404_on_every_user_route(app: FastAPI, api: TestClient) -> None:
    ids = _seed_everything(api)
    owner_view = {
        path: api.get(path.format(**ids)).json()
        for path in (
            "/v1/users/{user_id}",
            "/v1/users/{user_id}/conditions",
            "/v1/users/{user_id}/sessions",
            "/v1/users/{user_id}/recommendations",
        )
    }
    intruder = TestClient(app, headers={"Authorization": f"Bearer {new_key(app.state.database)}"})
    tried = 0
    for path, operations in app.openapi()["paths"].items():
        if "{user_id}" not in path:
            continue
        for method, operation in operations.items():
            url = path.format(**ids)
            body = _BODIES.get(operation["operationId"])
            response = intruder.request(method.upper(), url, json=body)
            problem = assert_problem(response, 404)
            # Exactly the answer a missing user gets: nothing tells the two apart.
            missing = intruder.request(
                method.upper(),
                path.format(**{**ids, "user_id": "00000000-0000-4000-8000-000000000000"}),
                json=body,
            )
            assert missing.status_code == 404
            assert problem["title"] == missing.json()["title"]
            tried += 1
    assert tried >= 14
    # None of those reads, writes or deletes touched the owner's data.
    for path, seen in owner_view.items():
        assert api.get(path.format(**ids)).json() == seen


def test_a_tenant_lists_only_its_own_users(app: FastAPI, api: TestClient) -> None:
    mine = new_user(api, external_id="mine")
    other = TestClient(app, headers={"X-API-Key": new_key(app.state.database)})
    theirs = new_user(other, external_id="theirs")
    assert [u["id"] for u in api.get("/v1/users").json()["items"]] == [mine]
    assert [u["id"] for u in other.get("/v1/users").json()["items"]] == [theirs]


# ---------------------------------------------------------------------------------------------
# Erasure

_USER_TABLES = {
    "app_user": "id",
    "condition_episode": "user_id",
    "exercise_session": "user_id",
    "recommendation": "user_id",
    "idempotency_key": "user_id",
}


def _rows_about(database: Database, user_id: str, condition_id: str) -> dict[str, int]:
    counts = {}
    with database.engine.connect() as connection:
        for table, column in _USER_TABLES.items():
            counts[table] = connection.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :id"), {"id": user_id}
            ).scalar_one()
        counts["history_summary"] = connection.execute(
            sa.text("SELECT count(*) FROM history_summary WHERE condition_id = :id"),
            {"id": condition_id},
        ).scalar_one()
    return counts


def test_deleting_a_user_erases_everything_about_them(api: TestClient, database: Database) -> None:
    ids = _seed_everything(api)
    user = ids["user_id"]
    api.post(
        f"/v1/users/{user}/sessions", json=session(day=TODAY), headers={"Idempotency-Key": "k1"}
    )
    # A session far back, so a recommendation folds it into the episode's history summary.
    api.post(f"/v1/users/{user}/sessions", json=session(day=TODAY - timedelta(days=50)))
    api.post(f"/v1/users/{user}/recommendations")
    kept = new_user(api, external_id="someone-else", with_condition=condition())
    before = _rows_about(database, user, ids["condition_id"])
    assert all(before.values()), before  # every table holds something about the user

    assert api.delete(f"/v1/users/{user}").status_code == 204
    assert not any(_rows_about(database, user, ids["condition_id"]).values())
    assert api.get(f"/v1/users/{kept}").status_code == 200


@pytest.mark.parametrize(
    "given",
    [
        "----",
        "0",
        "-" * 36,
        "f" * 36,
        "00000000-0000-4000-8000-00000000000G",
        "00000000000040008000000000000000",
    ],
)
def test_an_id_that_is_not_the_services_uuid_is_a_422_naming_it(
    api: TestClient, given: str
) -> None:
    """Ids are the service's own UUIDs (README): anything else names nothing and says so,
    in the path and in the query, rather than looking like a missing user (404)."""
    assert_problem(api.get(f"/v1/users/{given}"), 422, "path.user_id")
    user_id = new_user(api)
    assert_problem(api.get(f"/v1/users/{user_id}/sessions/{given}"), 422)
    assert_problem(api.get("/v1/audit-events", params={"user_id": given}), 422, "query.user_id")


def test_a_well_formed_id_of_nobody_is_a_404(api: TestClient) -> None:
    assert_problem(api.get("/v1/users/00000000-0000-4000-8000-000000000000"), 404)
