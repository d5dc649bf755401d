"""Every YAML case under cases/ must produce the recommendation it describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.domain.catalog import Catalog
from tests.domain.scenario import CASES_DIR, check, load_case, run_case_in_full

CASES = sorted(CASES_DIR.glob("*.yaml"))


def test_there_are_enough_scenarios() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_scenario(path: Path, catalog: Catalog) -> None:
    case = load_case(path)
    run = run_case_in_full(case, catalog)
    problems = check(run.recommendation, case["expect"], run)
    assert not problems, f"{case['description']}\n  " + "\n  ".join(problems)
