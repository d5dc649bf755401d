"""A client generated from the committed contract runs a whole user's story against the app.

openapi-python-client writes a Python package from ``openapi/openapi.json``, as an integrator
would. The flow below then uses only that package: its API functions
(``<package>.api.<tag>.<operation_id>.sync_detailed``) and its model classes, so a request
model the server refuses, or a response the generated parser cannot read, fails here. The app
runs in-process: Starlette's test client is an ``httpx.Client``, which the generated client
accepts in place of its own, so no network is used.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Clock

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
VENV_BIN = Path(sys.executable).parent
GENERATOR = VENV_BIN / "openapi-python-client"
DAY0 = date(2026, 11, 2)


@dataclass
class Generated:
    """The imported package and what the generator said while writing it."""

    name: str
    package: ModuleType
    models: ModuleType
    warnings: str
    warnings_shown: bool = False

    def operation(self, tag: str, operation_id: str) -> Any:
        return importlib.import_module(f"{self.name}.api.{tag}.{operation_id}")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    if not GENERATOR.exists():
        pytest.fail(f"{GENERATOR} is missing: install the dev extras (openapi-python-client)")
    folder = tmp_path_factory.mktemp("generated_client")
    name = f"ladderback_client_{uuid.uuid4().hex[:12]}"
    # The generator formats its output with ruff, which it looks up on the PATH.
    env = {**os.environ, "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])}
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(SPEC),
            "--meta",
            "none",
            "--output-path",
            str(folder / name),
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if run.returncode != 0 or not (folder / name / "__init__.py").exists():
        pytest.fail(
            f"openapi-python-client failed (exit {run.returncode}):\n"
            f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}",
            pytrace=False,
        )
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        package = importlib.import_module(name)
        models = importlib.import_module(f"{name}.models")
        yield Generated(name, package, models, run.stderr.strip())
    finally:
        sys.path.remove(str(folder))
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


def _report_warnings(generated: Generated, capsys: pytest.CaptureFixture[str]) -> None:
    """Generator warnings about the spec show once in the test output, passing or not."""
    if generated.warnings and not generated.warnings_shown:
        generated.warnings_shown = True
        with capsys.disabled():
            sys.stdout.write(f"\nopenapi-python-client warnings:\n{generated.warnings}\n")


def _expect(response: Any, status: HTTPStatus, model: type) -> Any:
    """The response has this status and parsed into this generated model, with no field the
    contract does not declare."""
    assert response.status_code == status, response.content.decode()
    assert isinstance(response.parsed, model), (type(response.parsed), response.content)
    _assert_documented(response.parsed, model.__name__)
    return response.parsed


def _assert_documented(value: Any, path: str) -> None:
    """Walk a parsed response: a declared object must not carry fields the contract lacks
    (they land in ``additional_properties``); a map-typed object may."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            _assert_documented(item, f"{path}[{i}]")
        return
    if not attrs.has(type(value)):
        return
    declared = [f.name for f in attrs.fields(type(value)) if f.name != "additional_properties"]
    extra = getattr(value, "additional_properties", {})
    if declared:
        assert extra == {}, f"{path} has fields the contract does not declare: {sorted(extra)}"
    for name in declared:
        _assert_documented(getattr(value, name), f"{path}.{name}")
    for key, item in extra.items():
        _assert_documented(item, f"{path}[{key!r}]")


def test_every_operation_in_the_contract_is_generated(
    generated: Generated, capsys: pytest.CaptureFixture[str]
) -> None:
    _report_warnings(generated, capsys)
    document = json.loads(SPEC.read_text(encoding="utf-8"))
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{generated.name}.api.{operation['tags'][0]}.{operation['operationId']}"
            try:
                module = importlib.import_module(where)
            except ImportError:
                missing.append(f"{method.upper()} {path} ({where})")
                continue
            if not callable(getattr(module, "sync_detailed", None)):
                missing.append(f"{method.upper()} {path} ({where}.sync_detailed)")
    assert not missing, "the generator left out:\n" + "\n".join(missing)


def test_a_generated_client_runs_the_whole_flow(
    generated: Generated,
    app: FastAPI,
    api_key: str,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _report_warnings(generated, capsys)
    m = generated.models
    create_user = generated.operation("users", "create_user")
    get_user = generated.operation("users", "get_user")
    delete_user = generated.operation("users", "delete_user")
    create_condition = generated.operation("conditions", "create_condition")
    recommend = generated.operation("recommendations", "create_user_recommendation")
    log_session = generated.operation("sessions", "log_session")
    update_session = generated.operation("sessions", "update_session")

    http = TestClient(app, headers={"Authorization": f"Bearer {api_key}"})
    client = generated.package.AuthenticatedClient(
        base_url=str(http.base_url), token=api_key, raise_on_unexpected_status=True
    ).set_httpx_client(http)
    clock.set_day(DAY0)

    # A user, with a strain that began a month ago.
    user = _expect(
        create_user.sync_detailed(
            client=client,
            body=m.UserCreate(
                external_id="generated-client-member",
                profile=m.ProfileIn(
                    age=42,
                    ability=m.AbilityLevel.INTERMEDIATE,
                    equipment=[m.Equipment.BAND],
                    minutes_available=30,
                ),
            ),
        ),
        HTTPStatus.CREATED,
        m.UserOut,
    )
    assert user.external_id == "generated-client-member"
    episode = _expect(
        create_condition.sync_detailed(
            user.id,
            client=client,
            body=m.ConditionCreate(
                kind=m.ConditionKind.STRAIN,
                onset_date=DAY0 - timedelta(days=30),
                baseline_pain=5,
            ),
        ),
        HTTPStatus.CREATED,
        m.ConditionOut,
    )
    assert episode.kind == m.ConditionKind.STRAIN

    # The first recommendation: every exercise is new.
    first = _expect(
        recommend.sync_detailed(user.id, client=client),
        HTTPStatus.CREATED,
        m.StoredRecommendationOut,
    )
    assert first.recommendation.status == m.RecommendationStatus.OK
    assert first.recommendation.exercises
    assert {e.change for e in first.recommendation.exercises} == {m.Change.NEW}

    # The session, done exactly as prescribed and pain-free, on the day.
    results = []
    for exercise in first.recommendation.exercises:
        assert exercise.dose is not None, exercise.exercise_id
        dose = m.DoseIn(
            sets=exercise.dose.sets,
            reps=exercise.dose.reps,
            hold_seconds=exercise.dose.hold_seconds,
            duration_seconds=exercise.dose.duration_seconds,
            load_kg=exercise.dose.load_kg,
            per_side=exercise.dose.per_side,
            per_day=exercise.dose.per_day,
            per_week=exercise.dose.per_week,
            rest_seconds=exercise.dose.rest_seconds,
        )
        results.append(
            m.ExerciseResultIn(
                exercise_id=exercise.exercise_id,
                prescribed=dose,
                performed=dose,
                pain_during=0,
                pain_after=0,
                effort=4,
                slot=exercise.slot,
            )
        )
    logged = _expect(
        log_session.sync_detailed(
            user.id,
            client=client,
            body=m.SessionCreate(
                date=DAY0, pain_before=2, exercises=results, recommendation_id=first.id
            ),
        ),
        HTTPStatus.CREATED,
        m.SessionOut,
    )
    assert logged.recommendation_id == first.id
    assert logged.next_day_pain is None

    # The next morning's report.
    clock.set_day(DAY0 + timedelta(days=1), hour=7)
    morning = _expect(
        update_session.sync_detailed(
            user.id, logged.id, client=client, body=m.SessionPatch(next_day_pain=2)
        ),
        HTTPStatus.OK,
        m.SessionOut,
    )
    assert morning.next_day_pain == 2

    # The next recommendation changes, and says why: one green session is not yet enough.
    clock.set_day(DAY0 + timedelta(days=2))
    second = _expect(
        recommend.sync_detailed(user.id, client=client),
        HTTPStatus.CREATED,
        m.StoredRecommendationOut,
    )
    assert second.id != first.id
    changes = {
        e.exercise_id: (e.change, [r.code for r in e.reasons])
        for e in second.recommendation.exercises
    }
    # Each exercise is one of the first session's (a loading one may rest today), now held.
    assert changes
    assert set(changes) <= {e.exercise_id for e in first.recommendation.exercises}
    assert {change for change, _ in changes.values()} == {m.Change.MAINTAINED}, changes
    assert all(codes == ["green_streak_too_short"] for _, codes in changes.values()), changes

    # Erasure: the user is gone.
    erased = delete_user.sync_detailed(user.id, client=client)
    assert erased.status_code == HTTPStatus.NO_CONTENT, erased.content.decode()
    gone = _expect(get_user.sync_detailed(user.id, client=client), HTTPStatus.NOT_FOUND, m.Problem)
    assert gone.status == HTTPStatus.NOT_FOUND
