"""The ruleset version guards itself: every scenario's output is pinned to it.

``outputs_digest`` hashes the recommendation of every scenario under ``cases/``. The pin in
``ruleset_pin.json`` names the ruleset version those outputs belong to. Changing a rule's
code so that any output moves, without a new ``rules_version`` in ``thresholds.yaml``, fails
``test_ruleset_pin``. After a deliberate change: bump ``rules_version``, then run
``.venv/bin/python -m tests.domain.ruleset_pin`` to write the new pin.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from app.catalog.loader import default_catalog
from app.domain.catalog import Catalog
from tests.domain.scenario import CASES_DIR, load_case, run_case

PIN = Path(__file__).with_name("ruleset_pin.json")


def outputs_digest(catalog: Catalog) -> str:
    """A hash of every scenario's whole recommendation, in file-name order."""
    digest = hashlib.sha256()
    for path in sorted(CASES_DIR.glob("*.yaml")):
        rec = run_case(load_case(path), catalog)
        text = json.dumps(asdict(rec), sort_keys=True, default=str, separators=(",", ":"))
        digest.update(path.name.encode())
        digest.update(text.encode())
    return digest.hexdigest()


def main() -> None:
    catalog = default_catalog()
    digest = outputs_digest(catalog)
    if PIN.exists():
        pinned = json.loads(PIN.read_text(encoding="utf-8"))
        if pinned["rules_version"] == catalog.rules_version and pinned["outputs_digest"] != digest:
            raise SystemExit(
                f"the scenario outputs changed under rules_version {catalog.rules_version}: "
                "bump rules_version in app/catalog/data/thresholds.yaml first"
            )
    pin = {
        "rules_version": catalog.rules_version,
        "ruleset_version": catalog.ruleset_version,
        "outputs_digest": digest,
    }
    PIN.write_text(json.dumps(pin, indent=2) + "\n", encoding="utf-8")
    print(f"pinned {pin['ruleset_version']}: {pin['outputs_digest'][:16]}")  # noqa: T201


if __name__ == "__main__":
    main()
