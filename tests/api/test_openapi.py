"""The committed OpenAPI document is the published contract: the app must not drift from it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from app.api import resources, schemas
from app.interop import cds_hooks

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
            assert operation.get("summary"), f"{method} {path}"
            assert operation.get("description"), f"{method} {path}"
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


# ---------------------------------------------------------------------------------------------
# Examples: every body an operation sends or answers shows one, and each one is valid

MODELS: dict[str, type[BaseModel]] = {
    name: model
    for module in (schemas, resources, cds_hooks)
    for name, model in vars(module).items()
    if not name.startswith("_")
    and isinstance(model, type)
    and issubclass(model, BaseModel)
    and model is not BaseModel
}


@dataclass(frozen=True)
class Body:
    where: str  # e.g. "POST /v1/users 201 application/json"
    request: bool
    name: str | None  # the component schema's name; None for an inline schema
    schema: dict[str, Any]  # resolved: never a bare $ref


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> tuple[str | None, dict]:
    ref = schema.get("$ref")
    if ref is None:
        return None, schema
    name = ref.removeprefix("#/components/schemas/")
    return name, document["components"]["schemas"][name]


def _body_schemas(
    document: dict[str, Any], where: str, request: bool, schema: dict[str, Any]
) -> Iterator[Body]:
    """The body's schema (its items', for an array) and, for a page, its items' schema."""
    if schema.get("type") == "array":
        schema = schema["items"]
    name, resolved = _resolve(document, schema)
    yield Body(where, request, name, resolved)
    items = resolved.get("properties", {}).get("items", {})
    if items.get("type") == "array":
        name, resolved = _resolve(document, items["items"])
        yield Body(f"{where} items", request, name, resolved)


def bodies(document: dict[str, Any]) -> list[Body]:
    """Every request body and response body (success and problem) of every operation."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            operation_name = f"{method.upper()} {path}"
            request_body = operation.get("requestBody", {})
            for media, content in request_body.get("content", {}).items():
                where = f"{operation_name} request {media}"
                found += _body_schemas(document, where, True, content["schema"])
            for status, response in operation["responses"].items():
                for media, content in response.get("content", {}).items():
                    where = f"{operation_name} {status} {media}"
                    found += _body_schemas(document, where, False, content["schema"])
    assert found, "no operation has a body"
    return found


def model_of(body: Body) -> type[BaseModel]:
    assert body.name in MODELS, f"{body.where}: no model named {body.name} in the API schemas"
    return MODELS[body.name]


def own_examples(model: type[BaseModel]) -> list[Any]:
    """The model's examples as written, nulls included (the published copy loses them)."""
    examples = model.model_json_schema().get("examples", [])
    assert examples, f"{model.__name__} has no examples"
    return list(examples)


def test_every_request_and_response_body_schema_has_an_example(app: FastAPI) -> None:
    missing = sorted(
        f"{body.name or 'inline schema'} ({body.where})"
        for body in bodies(app.openapi())
        if not body.schema.get("examples")
    )
    assert not missing, "schemas without examples:\n" + "\n".join(missing)


def test_every_request_example_is_a_valid_request(app: FastAPI) -> None:
    """Strict, as a client's body is: the published copy (what "Try it out" sends) and the
    model's own."""
    request_bodies = [b for b in bodies(app.openapi()) if b.request and b.name is not None]
    assert request_bodies
    for body in request_bodies:
        model = model_of(body)
        for example in [*body.schema.get("examples", []), *own_examples(model)]:
            try:
                model.model_validate(example)
            except ValidationError as error:
                pytest.fail(f"{body.where}: an example of {body.name} is invalid:\n{error}")


def test_every_response_example_is_a_valid_response(app: FastAPI) -> None:
    response_bodies = [b for b in bodies(app.openapi()) if not b.request and b.name is not None]
    assert response_bodies
    for body in response_bodies:
        model = model_of(body)
        for example in own_examples(model):
            try:
                model.model_validate(example)
            except ValidationError as error:
                pytest.fail(f"{body.where}: an example of {body.name} is invalid:\n{error}")


def test_published_examples_keep_their_nulls(app: FastAPI) -> None:
    for body in bodies(app.openapi()):
        if body.name is not None:
            assert body.schema.get("examples") == own_examples(model_of(body)), body.where
