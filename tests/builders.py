"""Typed, keyword-only builders of request bodies and stored set-ups for the API tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

DOSE = {"sets": 1, "reps": 10, "per_week": 5, "rest_seconds": 30}


def profile(
    *, age: int = 42, equipment: tuple[str, ...] = ("band",), **more: Any
) -> dict[str, Any]:
    return {"age": age, "ability": "intermediate", "equipment": list(equipment), **more}


def condition(
    *, kind: str = "strain", onset: date = date(2026, 10, 1), baseline_pain: int = 5, **more: Any
) -> dict[str, Any]:
    return {
        "kind": kind,
        "onset_date": onset.isoformat(),
        "baseline_pain": baseline_pain,
        **more,
    }


def exercise_result(
    *,
    exercise_id: str = "bridge-hold",
    dose: dict[str, Any] | None = None,
    pain_during: int = 0,
    effort: int = 4,
    slot: str | None = None,
) -> dict[str, Any]:
    dose = dose or DOSE
    return {
        "exercise_id": exercise_id,
        "prescribed": dose,
        "performed": dose,
        "pain_during": pain_during,
        "pain_after": 0,
        "effort": effort,
        "slot": slot,
    }


def session(*, day: date, exercises: list[dict[str, Any]] | None = None, **more: Any) -> dict:
    return {
        "date": day.isoformat(),
        "pain_before": 3,
        "exercises": exercises if exercises is not None else [exercise_result()],
        **more,
    }


def performed_as_prescribed(recommendation: dict[str, Any], **result: Any) -> list[dict]:
    """Each exercise of a recommendation, done exactly as prescribed, slot echoed back."""
    return [
        exercise_result(
            exercise_id=e["exercise_id"],
            dose={k: v for k, v in e["dose"].items() if v is not None},
            slot=e["slot"],
            **result,
        )
        for e in recommendation["exercises"]
    ]


def new_user(
    api: TestClient,
    *,
    external_id: str = "member-1",
    with_condition: dict[str, Any] | None = None,
    **profile_changes: Any,
) -> str:
    """Create a user (and an active episode when given); return the user's id."""
    response = api.post(
        "/v1/users", json={"external_id": external_id, "profile": profile(**profile_changes)}
    )
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    if with_condition is not None:
        made = api.post(f"/v1/users/{user_id}/conditions", json=with_condition)
        assert made.status_code == 201, made.text
    return user_id


def flag_active_episode(api: TestClient, user_id: str, *red_flags: str) -> None:
    """Record red flags on the user's (only) episode."""
    episode = api.get(f"/v1/users/{user_id}/conditions").json()["items"][0]
    flagged = api.patch(
        f"/v1/users/{user_id}/conditions/{episode['id']}", json={"red_flags": list(red_flags)}
    )
    assert flagged.status_code == 200, flagged.text
