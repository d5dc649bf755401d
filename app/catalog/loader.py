"""Reads the catalog data files and validates them into one frozen ``Catalog``.

Each file is validated on its own so that an error names the file and the field. Validation
goes through JSON so that pydantic's strict mode applies exactly as it does to API bodies:
``yes`` is not a number, ``"3"`` is not an int.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from app.domain.catalog import (
    Catalog,
    ConditionProtocol,
    Exercise,
    ProfileAdvice,
    RedFlagSpec,
    Thresholds,
)
from app.domain.types import Equipment

__all__ = ["DATA_DIR", "CatalogError", "default_catalog", "load_catalog"]

DATA_DIR = Path(__file__).with_name("data")

T = TypeVar("T")
# libyaml's parser (in PyYAML's wheels) reads the catalog in a tenth of the time of the pure
# Python one, which made up most of a worker's start-up.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CatalogError(Exception):
    """A catalog file is missing, unreadable or invalid; the message names file and field."""


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path.name}: cannot read: {exc}") from exc


def _validate(path: Path, adapter: TypeAdapter[T], data: Any, where: str = "") -> T:
    try:
        return adapter.validate_json(json.dumps(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{where}{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CatalogError(f"{path.name}: {problems}") from exc


def _section(path: Path, data: Any, key: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise CatalogError(f"{path.name}: missing top-level field {key!r}")
    return data[key]


def load_exercises(path: Path) -> list[Exercise]:
    """Validate one exercises file, naming the exercise id in any error."""
    data = _section(path, _read_yaml(path), "exercises")
    if not isinstance(data, list):
        raise CatalogError(f"{path.name}: exercises: must be a list")
    adapter = TypeAdapter(Exercise)
    out: list[Exercise] = []
    for index, item in enumerate(data):
        label = item.get("id", f"#{index}") if isinstance(item, dict) else f"#{index}"
        out.append(_validate(path, adapter, item, where=f"exercises[{label}]."))
    return out


def load_catalog(data_dir: Path = DATA_DIR) -> Catalog:
    """Read and validate every catalog file under ``data_dir``."""
    thresholds_path = data_dir / "thresholds.yaml"
    thresholds_doc = _read_yaml(thresholds_path)
    rules_version = _section(thresholds_path, thresholds_doc, "rules_version")
    thresholds = _validate(
        thresholds_path,
        TypeAdapter(Thresholds),
        _section(thresholds_path, thresholds_doc, "thresholds"),
        where="thresholds.",
    )

    protocols_path = data_dir / "protocols.yaml"
    protocols_doc = _read_yaml(protocols_path)
    shared_education = _section(protocols_path, protocols_doc, "shared_education")
    raw_protocols = _section(protocols_path, protocols_doc, "protocols")
    if not isinstance(raw_protocols, list) or not isinstance(shared_education, list):
        raise CatalogError(f"{protocols_path.name}: protocols and shared_education must be lists")
    for raw in raw_protocols:
        # Holistic advice (sleep, diet, staying active ...) applies to every condition.
        if isinstance(raw, dict):
            raw["education"] = [*raw.get("education", []), *shared_education]
    protocols = _validate(
        protocols_path,
        TypeAdapter(tuple[ConditionProtocol, ...]),
        raw_protocols,
        where="protocols.",
    )

    triage_path = data_dir / "triage.yaml"
    triage_doc = _read_yaml(triage_path)
    red_flags = _validate(
        triage_path,
        TypeAdapter(tuple[RedFlagSpec, ...]),
        _section(triage_path, triage_doc, "red_flags"),
        where="red_flags.",
    )
    advice = _validate(
        triage_path,
        TypeAdapter(tuple[ProfileAdvice, ...]),
        _section(triage_path, triage_doc, "profile_advice"),
        where="profile_advice.",
    )
    household = _validate(
        triage_path,
        TypeAdapter(tuple[Equipment, ...]),
        _section(triage_path, triage_doc, "household_equipment"),
        where="household_equipment.",
    )

    exercise_files = sorted((data_dir / "exercises").glob("*.yaml"))
    if not exercise_files:
        raise CatalogError(f"{data_dir / 'exercises'}: no exercise files")
    exercises = [e for path in exercise_files for e in load_exercises(path)]

    try:
        return Catalog(
            rules_version=rules_version,
            exercises=tuple(exercises),
            protocols=protocols,
            red_flags=red_flags,
            profile_advice=advice,
            household_equipment=tuple(sorted(set(household))),
            thresholds=thresholds,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'catalog'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CatalogError(f"{data_dir.name}: {problems}") from exc


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The packaged catalog, read once per process."""
    return load_catalog()


def _check_files(paths: list[str]) -> int:
    """Validate exercise files given on the command line (used while writing the catalog)."""
    status = 0
    for name in paths:
        try:
            found = load_exercises(Path(name))
        except CatalogError as exc:
            print(f"INVALID {exc}")  # noqa: T201
            status = 1
        else:
            print(f"ok {name}: {len(found)} exercises")  # noqa: T201
    return status


if __name__ == "__main__":
    import sys

    raise SystemExit(_check_files(sys.argv[1:]))
