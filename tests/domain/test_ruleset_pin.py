"""A rule change that moves any scenario's output must come with a new ruleset version."""

from __future__ import annotations

import json

from app.domain.catalog import Catalog
from tests.domain.ruleset_pin import PIN, outputs_digest


def test_scenario_outputs_match_the_pinned_ruleset_version(catalog: Catalog) -> None:
    pin = json.loads(PIN.read_text(encoding="utf-8"))
    digest = outputs_digest(catalog)
    if digest != pin["outputs_digest"]:
        assert catalog.rules_version != pin["rules_version"], (
            "scenario outputs changed but rules_version did not: bump rules_version in "
            "app/catalog/data/thresholds.yaml, then run "
            "`.venv/bin/python -m tests.domain.ruleset_pin`"
        )
    assert pin["ruleset_version"] == catalog.ruleset_version, (
        "the pin is for another ruleset version: run `.venv/bin/python -m tests.domain.ruleset_pin`"
    )
    assert pin["outputs_digest"] == digest


def test_the_digest_sees_a_changed_output(catalog: Catalog) -> None:
    """Not vacuous: a changed threshold changes the outputs the digest covers."""
    th = catalog.thresholds
    changed = th.model_copy(
        update={"pain_safe_max": th.pain_safe_max.model_copy(update={"value": 1})}
    )
    fields = {name: getattr(catalog, name) for name in Catalog.model_fields}
    other = Catalog.model_validate({**fields, "thresholds": changed})
    assert outputs_digest(other) != outputs_digest(catalog)
