"""README's settings table lists every setting the service reads, with its real default."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from app.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _rows() -> dict[str, str]:
    """The settings table: each row's first variable name → its default cell."""
    text = README.read_text(encoding="utf-8")
    table = text.split("### Settings", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = re.findall(r"`([A-Z_]+)`", cells[0]) if len(cells) == 3 else []
        for name in names:
            rows[name] = cells[1]
    return rows


def _names(field: str) -> list[str]:
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"LADDERBACK_{field.upper()}"]


def test_every_setting_is_in_the_readme_table_with_its_default() -> None:
    rows = _rows()
    for field, info in Settings.model_fields.items():
        names = _names(field)
        assert all(n in rows for n in names), f"README settings table lacks {names}"
        shown = rows[names[0]]
        default = info.default
        if default is None:
            continue  # shown in words ("unset", "the packaged catalog")
        expected = (
            str(default).lower()
            if isinstance(default, bool)
            else f"{default:g}"
            if isinstance(default, float)
            else str(default)
        )
        assert f"`{expected}`" in shown, f"{names[0]}: README says {shown}, default {default}"
