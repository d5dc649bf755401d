"""Condition episodes, logged sessions and stored recommendations, on the database under test
(SQLite or PostgreSQL: see tests/conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.deps import get_now
from app.main import create_app
from app.settings import Settings
from tests.api.test_api import assert_problem
from tests.builders import (
    condition,
    exercise_result,
    flag_active_episode,
    new_user,
    performed_as_prescribed,
    session,
)
from tests.conftest import TODAY, Clock

DAY0 = date(2026, 11, 2)


def _recommend(api: TestClient, user_id: str) -> dict[str, Any]:
    response = api.post(f"/v1/users/{user_id}/recommendations")
    assert response.status_code == 201, response.text
    stored: dict[str, Any] = response.json()
    return stored


def _log_green_day(api: TestClient, clock: Clock, user_id: str, stored: dict[str, Any]) -> str:
    """Do the recommended session as prescribed, pain-free; report the next morning."""
    day = clock.now.date()
    done = performed_as_prescribed(stored["recommendation"])
    body = session(day=day, exercises=done, recommendation_id=stored["id"], pain_before=2)
    logged = api.post(f"/v1/users/{user_id}/sessions", json=body)
    assert logged.status_code == 201, logged.text
    clock.set_day(day + timedelta(days=1), hour=7)
    morning = api.patch(
        f"/v1/users/{user_id}/sessions/{logged.json()['id']}", json={"next_day_pain": 2}
    )
    assert morning.status_code == 200, morning.text
    assert morning.json()["next_day_pain"] == 2
    return str(logged.json()["id"])


def _changes(stored: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {
        e["exercise_id"]: (e["change"], [r["code"] for r in e["reasons"]])
        for e in stored["recommendation"]["exercises"]
    }


def test_the_stored_history_moves_the_programme_on_for_stated_reasons(
    api: TestClient, clock: Clock
) -> None:
    clock.set_day(DAY0)
    user_id = new_user(api, with_condition=condition(onset=DAY0 - timedelta(days=30)))

    first = _recommend(api, user_id)
    assert first["recommendation"]["status"] == "ok"
    assert {c for c, _ in _changes(first).values()} == {"new"}

    _log_green_day(api, clock, user_id, first)
    clock.set_day(DAY0 + timedelta(days=2))
    second = _recommend(api, user_id)
    changes = _changes(second)
    # The answer differs from the first, and says why: one green session is not yet enough.
    assert changes != _changes(first)
    assert {c for c, _ in changes.values()} == {"maintained"}
    assert all(codes == ["green_streak_too_short"] for _, codes in changes.values())

    _log_green_day(api, clock, user_id, second)
    clock.set_day(DAY0 + timedelta(days=4))
    third = _recommend(api, user_id)
    progressed = {i: codes for i, (c, codes) in _changes(third).items() if c == "progressed"}
    assert progressed, _changes(third)
    assert all("two_green_sessions" in codes for codes in progressed.values())

    listed = api.get(f"/v1/users/{user_id}/recommendations").json()
    assert [r["id"] for r in listed["items"]] == [third["id"], second["id"], first["id"]]


def _history_for_stateless(api: TestClient, user_id: str) -> list[dict[str, Any]]:
    sessions = api.get(f"/v1/users/{user_id}/sessions", params={"limit": 100}).json()["items"]
    fields = (
        "date",
        "completed",
        "exercises",
        "pain_before",
        "pain_after",
        "next_day_pain",
        "symptom_change",
        "new_numbness_or_tingling",
    )
    return [{k: s[k] for k in fields} for s in sessions]


def test_a_stored_decision_equals_the_stateless_one_on_the_same_history(
    api: TestClient, clock: Clock
) -> None:
    clock.set_day(DAY0)
    onset = DAY0 - timedelta(days=200)
    user_id = new_user(api, with_condition=condition(onset=onset, kind="sciatica", side="left"))
    # Sessions well before the decision window (folded into the summary) and inside it.
    for back in (150, 120, 90, 60, 45, 30, 9, 7, 5, 3):
        day = DAY0 - timedelta(days=back)
        results = [exercise_result(exercise_id="sciatic-slider-supine", slot="sciatic-nerve-glide")]
        body = session(day=day, exercises=results, next_day_pain=2)
        assert api.post(f"/v1/users/{user_id}/sessions", json=body).status_code == 201
    stored = _recommend(api, user_id)
    detail = api.get(f"/v1/users/{user_id}/recommendations/{stored['id']}").json()
    assert detail["inputs"]["summary"] is not None  # the old part was folded
    assert detail["inputs"]["summary"]["sessions"] + len(detail["inputs"]["history"]) == 10

    stateless = api.post(
        "/v1/recommendations",
        json={
            "profile": detail["inputs"]["profile"],
            "condition": detail["inputs"]["condition"],
            "history": _history_for_stateless(api, user_id),
            "today": DAY0.isoformat(),
        },
    )
    assert stateless.status_code == 200, stateless.text
    assert stateless.json() == stored["recommendation"]


def test_a_backfilled_old_session_is_folded_in_by_the_next_decision(
    api: TestClient, clock: Clock
) -> None:
    clock.set_day(DAY0)
    user_id = new_user(api, with_condition=condition(onset=DAY0 - timedelta(days=400)))
    for back in (300, 200, 100):
        api.post(f"/v1/users/{user_id}/sessions", json=session(day=DAY0 - timedelta(days=back)))
    first = _recommend(api, user_id)
    summary = api.get(f"/v1/users/{user_id}/recommendations/{first['id']}").json()["inputs"]
    assert summary["summary"]["sessions"] == 3
    # A session logged late for a day long past: the stored summary no longer covers it.
    late = session(day=DAY0 - timedelta(days=250))
    assert api.post(f"/v1/users/{user_id}/sessions", json=late).status_code == 201
    second = _recommend(api, user_id)
    inputs = api.get(f"/v1/users/{user_id}/recommendations/{second['id']}").json()["inputs"]
    assert inputs["summary"]["sessions"] == 4
    assert inputs["summary"]["first_date"] == (DAY0 - timedelta(days=300)).isoformat()


def test_a_new_red_flag_on_the_episode_refers_instead_of_exercising(
    api: TestClient, clock: Clock
) -> None:
    clock.set_day(DAY0)
    user_id = new_user(api, with_condition=condition())
    flag_active_episode(api, user_id, "saddle_numbness")
    decision = _recommend(api, user_id)["recommendation"]
    assert decision["status"] == "refer"
    assert decision["exercises"] == []
    assert decision["referral"]["urgency"] == "emergency"


def test_one_active_episode_at_a_time_and_a_history_of_episodes(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition(kind="strain"))
    assert_problem(
        api.post(f"/v1/users/{user_id}/conditions", json=condition(kind="sciatica")), 409, "kind"
    )
    first = api.get(f"/v1/users/{user_id}/conditions").json()["items"][0]
    resolved = api.patch(
        f"/v1/users/{user_id}/conditions/{first['id']}", json={"status": "resolved"}
    ).json()
    assert resolved["status"] == "resolved"
    assert resolved["resolved_on"] == TODAY.isoformat()
    assert_problem(api.post(f"/v1/users/{user_id}/recommendations"), 409, "condition")
    assert_problem(api.post(f"/v1/users/{user_id}/sessions", json=session(day=TODAY)), 409)

    second = api.post(f"/v1/users/{user_id}/conditions", json=condition(kind="posture"))
    assert second.status_code == 201, second.text
    episodes = api.get(f"/v1/users/{user_id}/conditions").json()
    assert episodes["total"] == 2
    assert {e["kind"] for e in episodes["items"]} == {"strain", "posture"}
    reopen = api.patch(f"/v1/users/{user_id}/conditions/{first['id']}", json={"status": "active"})
    assert_problem(reopen, 409, "status")
    logged = api.post(f"/v1/users/{user_id}/sessions", json=session(day=TODAY)).json()
    assert logged["condition_id"] == second.json()["id"]
    assert_problem(
        api.get(f"/v1/users/{user_id}/conditions/00000000-0000-4000-8000-000000000000"), 404
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"date": (TODAY + timedelta(days=1)).isoformat()}, "date"),
        (
            {"exercises": [exercise_result(), exercise_result(exercise_id="moon-walk")]},
            "exercises[1].exercise_id",
        ),
        ({"recommendation_id": "00000000-0000-4000-8000-000000000000"}, "recommendation_id"),
        ({"pain_before": 11}, "pain_before"),
        ({"completed": "yes"}, "completed"),
    ],
)
def test_a_bad_session_is_refused_and_nothing_is_stored(
    api: TestClient, changes: dict[str, Any], field: str
) -> None:
    user_id = new_user(api, with_condition=condition())
    body = {**session(day=TODAY), **changes}
    assert_problem(api.post(f"/v1/users/{user_id}/sessions", json=body), 422, field)
    assert api.get(f"/v1/users/{user_id}/sessions").json()["total"] == 0


def test_sessions_are_listed_newest_first_and_capped_per_date(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition())
    for back in (3, 1, 2):
        api.post(f"/v1/users/{user_id}/sessions", json=session(day=TODAY - timedelta(days=back)))
    page = api.get(f"/v1/users/{user_id}/sessions", params={"limit": 2}).json()
    assert page["total"] == 3
    assert [s["date"] for s in page["items"]] == [
        (TODAY - timedelta(days=1)).isoformat(),
        (TODAY - timedelta(days=2)).isoformat(),
    ]
    cap = 12
    for _ in range(cap):
        assert api.post(f"/v1/users/{user_id}/sessions", json=session(day=TODAY)).is_success
    assert_problem(api.post(f"/v1/users/{user_id}/sessions", json=session(day=TODAY)), 409, "date")


def test_next_morning_pain_is_added_later_and_can_be_cleared(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition())
    logged = api.post(f"/v1/users/{user_id}/sessions", json=session(day=TODAY)).json()
    url = f"/v1/users/{user_id}/sessions/{logged['id']}"
    assert logged["next_day_pain"] is None
    assert api.patch(url, json={"next_day_pain": 4}).json()["next_day_pain"] == 4
    assert api.get(url).json()["next_day_pain"] == 4
    assert api.patch(url, json={"next_day_pain": None}).json()["next_day_pain"] is None
    assert_problem(api.patch(url, json={"symptom_change": None}), 422)
    assert_problem(api.patch(url, json={"next_day_pain": 12}), 422, "next_day_pain")
    assert_problem(api.patch(url, json={"date": "2026-01-01"}), 422, "date")


# ---------------------------------------------------------------------------------------------
# Idempotency


def test_a_retried_session_log_returns_the_first_response_and_stores_one(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition())
    url = f"/v1/users/{user_id}/sessions"
    key = {"Idempotency-Key": "b6c1e2f0-retry-1"}
    first = api.post(url, json=session(day=TODAY), headers=key)
    retry = api.post(url, json=session(day=TODAY), headers=key)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert api.get(url).json()["total"] == 1

    other_body = api.post(url, json=session(day=TODAY, pain_before=1), headers=key)
    assert_problem(other_body, 422, "header.Idempotency-Key")
    assert api.get(url).json()["total"] == 1

    # The same key is the caller's own: another user's route with it is another request.
    elsewhere = new_user(api, external_id="member-2", with_condition=condition())
    assert_problem(
        api.post(f"/v1/users/{elsewhere}/sessions", json=session(day=TODAY), headers=key), 422
    )


def test_an_idempotency_key_expires_after_a_day(api: TestClient, clock: Clock) -> None:
    user_id = new_user(api, with_condition=condition())
    url = f"/v1/users/{user_id}/sessions"
    key = {"Idempotency-Key": "expiring"}
    assert api.post(url, json=session(day=TODAY), headers=key).status_code == 201
    clock.now += timedelta(hours=23)
    assert api.post(url, json=session(day=TODAY), headers=key).headers.get("idempotent-replayed")
    clock.now += timedelta(hours=2)
    fresh = api.post(url, json=session(day=TODAY), headers=key)
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    assert api.get(url).json()["total"] == 2


def test_a_failed_request_does_not_use_up_its_key(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition())
    url = f"/v1/users/{user_id}/sessions"
    key = {"Idempotency-Key": "first-try-fails"}
    bad = session(day=TODAY, exercises=[exercise_result(exercise_id="moon-walk")])
    assert_problem(api.post(url, json=bad, headers=key), 422)
    good = api.post(url, json=session(day=TODAY), headers=key)
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers


def test_a_retried_recommendation_is_stored_once(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition())
    url = f"/v1/users/{user_id}/recommendations"
    key = {"Idempotency-Key": "rec-1"}
    first = api.post(url, headers=key)
    retry = api.post(url, headers=key)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert api.get(url).json()["total"] == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "ünïcode"])
def test_a_malformed_idempotency_key_is_refused(api: TestClient, key: str) -> None:
    user_id = new_user(api, with_condition=condition())
    response = api.post(
        f"/v1/users/{user_id}/recommendations", headers={"Idempotency-Key": key.encode()}
    )
    assert_problem(response, 422, "header.Idempotency-Key")


# ---------------------------------------------------------------------------------------------
# Replay


def test_a_replay_under_the_same_ruleset_gives_the_same_answer(
    api: TestClient, clock: Clock
) -> None:
    clock.set_day(DAY0)
    user_id = new_user(api, with_condition=condition())
    stored = _recommend(api, user_id)
    _log_green_day(api, clock, user_id, stored)
    clock.set_day(DAY0 + timedelta(days=2))
    second = _recommend(api, user_id)
    clock.set_day(DAY0 + timedelta(days=40))  # replay later: the stored date is used
    replay = api.post(f"/v1/users/{user_id}/recommendations/{second['id']}/replay").json()
    assert replay["same"] is True
    assert replay["differences"] == []
    assert replay["stored_ruleset_version"] == replay["current_ruleset_version"]
    assert replay["replayed"] == second["recommendation"]


@pytest.fixture
def stricter_app(database_url: str, service_clock: Clock, tmp_path: Path) -> Iterator[FastAPI]:
    """The same database, served with a ruleset that asks for three green sessions."""
    source = Path(__file__).resolve().parents[2] / "app" / "catalog" / "data"
    data = tmp_path / "catalog"
    shutil.copytree(source, data)
    thresholds = yaml.safe_load((data / "thresholds.yaml").read_text())
    thresholds["thresholds"]["green_sessions_to_progress"]["value"] = 3
    (data / "thresholds.yaml").write_text(yaml.safe_dump(thresholds, sort_keys=False))
    app = create_app(Settings(database_url=database_url, catalog_dir=data))
    app.dependency_overrides[get_now] = lambda: service_clock.now
    with TestClient(app):
        yield app


def test_a_replay_under_a_new_ruleset_lists_what_changed(
    api: TestClient, clock: Clock, stricter_app: FastAPI, api_key: str
) -> None:
    clock.set_day(DAY0)
    user_id = new_user(api, with_condition=condition())
    stored = _recommend(api, user_id)
    for step in (2, 4):
        _log_green_day(api, clock, user_id, stored)
        clock.set_day(DAY0 + timedelta(days=step))
        stored = _recommend(api, user_id)
    assert any(c == "progressed" for c, _ in _changes(stored).values())

    stricter = TestClient(stricter_app, headers={"X-API-Key": api_key})
    replay = stricter.post(f"/v1/users/{user_id}/recommendations/{stored['id']}/replay").json()
    assert replay["same"] is False
    assert replay["stored_ruleset_version"] != replay["current_ruleset_version"]
    changed = {d["path"] for d in replay["differences"]}
    assert any(p.endswith(".change") for p in changed), changed
    first_change = next(d for d in replay["differences"] if d["path"].endswith(".change"))
    assert (first_change["stored"], first_change["replayed"]) == ("progressed", "maintained")


def test_an_unknown_recommendation_is_a_404(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition())
    assert_problem(
        api.get(f"/v1/users/{user_id}/recommendations/00000000-0000-4000-8000-000000000000"), 404
    )
    assert_problem(
        api.post(
            f"/v1/users/{user_id}/recommendations/00000000-0000-4000-8000-000000000000/replay"
        ),
        404,
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/%00",
        "/v1/users/{user_id}/conditions/a%00b",
        "/v1/users/{user_id}/sessions?condition_id=%00",
        "/v1/users/{user_id}/recommendations/not-an-id",
    ],
)
def test_an_id_that_is_not_one_of_ours_is_refused_before_any_query(
    api: TestClient, path: str
) -> None:
    user_id = new_user(api, with_condition=condition())
    response = api.get(path.format(user_id=user_id))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_session_before_the_episode_began_is_refused(api: TestClient) -> None:
    onset = TODAY - timedelta(days=10)
    user_id = new_user(api, with_condition=condition(onset=onset))
    early = session(day=onset - timedelta(days=1))
    assert_problem(api.post(f"/v1/users/{user_id}/sessions", json=early), 422, "date")
    on_onset = session(day=onset)
    assert api.post(f"/v1/users/{user_id}/sessions", json=on_onset).status_code == 201


def test_a_session_cannot_cite_a_recommendation_of_an_earlier_episode(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition())
    old = _recommend(api, user_id)
    episode = api.get(f"/v1/users/{user_id}/conditions").json()["items"][0]
    api.patch(f"/v1/users/{user_id}/conditions/{episode['id']}", json={"status": "resolved"})
    api.post(f"/v1/users/{user_id}/conditions", json=condition(kind="posture"))
    body = session(day=TODAY, recommendation_id=old["id"])
    assert_problem(api.post(f"/v1/users/{user_id}/sessions", json=body), 422, "recommendation_id")


def test_two_idempotency_keys_in_one_request_are_refused(api: TestClient) -> None:
    user_id = new_user(api, with_condition=condition())
    response = api.post(
        f"/v1/users/{user_id}/recommendations",
        headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    )
    assert_problem(response, 422, "header.Idempotency-Key")
    assert api.get(f"/v1/users/{user_id}/recommendations").json()["total"] == 0


def test_settings_given_to_the_app_are_the_ones_its_routes_use(
    database_url: str, service_clock: Clock, api_key: str
) -> None:
    app = create_app(Settings(database_url=database_url, max_sessions_per_day=2))
    app.dependency_overrides[get_now] = lambda: service_clock.now
    with TestClient(app, headers={"X-API-Key": api_key}) as strict:
        user_id = new_user(strict, with_condition=condition())
        url = f"/v1/users/{user_id}/sessions"
        for _ in range(2):
            assert strict.post(url, json=session(day=TODAY)).status_code == 201
        assert_problem(strict.post(url, json=session(day=TODAY)), 409, "date")
