"""The committed OpenAPI document is the published contract: the app must not drift from it."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_the_app_matches_the_committed_contract(app: FastAPI) -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert app.openapi() == committed, (
        "openapi/openapi.json is stale: run `.venv/bin/python scripts/export_openapi.py`"
    )


def test_every_operation_has_a_stable_id_tag_and_documented_problems(app: FastAPI) -> None:
    document = app.openapi()
    seen = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("operationId"), f"{method} {path}"
            assert operation["operationId"] not in seen
            seen.add(operation["operationId"])
            assert operation.get("tags"), f"{method} {path}"
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )


def test_request_and_response_schemas_carry_examples(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    for name in (
        "RecommendationRequest",
        "RecommendationOut",
        "ExerciseOut",
        "ConditionProtocolOut",
        "RulesetOut",
        "Problem",
        "Health",
    ):
        assert schemas[name].get("examples"), name
