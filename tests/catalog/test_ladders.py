"""Ladders rise: every level is harder than the one below it, and says on what.

Each exercise on a ladder of more than one level rates itself on the axes its ladder uses
(support, lever, load, range, base of support, pace, senses; ``app.domain.movement.Axis``). Going
up a level must raise at least one of them and lower none, unless the level names the trade
and why it is still harder (``trade_offs``). A two-leg bridge with a small weight placed
above single-leg bridges, or a chin tuck with the head resting on the floor above the upright
ones, fails here.
"""

from __future__ import annotations

import itertools
import json

import pytest

from app.catalog.loader import default_catalog
from app.domain.catalog import Catalog, Exercise
from app.domain.movement import Axis
from app.domain.types import Equipment

_CATALOG = default_catalog()
LADDERS = [
    pytest.param(name, id=name) for name, steps in _CATALOG.ladders.items() if len(steps) > 1
]

# How much external resistance a piece of kit brings, for checking the load ratings.
_RESISTANCE = {
    Equipment.BAND: 1,
    Equipment.HEAVY_BAND: 2,
    Equipment.ANKLE_WEIGHT: 3,
    Equipment.DUMBBELL: 3,
    Equipment.KETTLEBELL: 3,
}


def _steps(catalog: Catalog, ladder: str) -> list[tuple[Exercise, Exercise]]:
    steps = catalog.ladders[ladder]
    return list(itertools.pairwise(steps))


@pytest.mark.parametrize("ladder", LADDERS)
def test_every_level_rises_on_some_axis(catalog: Catalog, ladder: str) -> None:
    flat = [
        f"{upper.id} is no harder than {lower.id}"
        for lower, upper in _steps(catalog, ladder)
        if not any(upper.difficulty[a] > lower.difficulty[a] for a in upper.difficulty)
    ]
    assert not flat


@pytest.mark.parametrize("ladder", LADDERS)
def test_no_level_falls_on_an_axis_without_naming_the_trade(catalog: Catalog, ladder: str) -> None:
    falls = [
        f"{upper.id} is easier than {lower.id} on {axis.value}"
        for lower, upper in _steps(catalog, ladder)
        for axis in upper.difficulty
        if upper.difficulty[axis] < lower.difficulty[axis] and axis not in upper.trade_offs
    ]
    assert not falls


@pytest.mark.parametrize("ladder", LADDERS)
def test_a_named_trade_is_a_real_one(catalog: Catalog, ladder: str) -> None:
    """A trade names an axis the level really falls on, and it still rises on another."""
    for lower, upper in _steps(catalog, ladder):
        for axis in upper.trade_offs:
            assert upper.difficulty[axis] < lower.difficulty[axis], (upper.id, axis.value)
            assert any(upper.difficulty[a] > lower.difficulty[a] for a in upper.difficulty)


def test_a_trade_is_rare(catalog: Catalog) -> None:
    """A trade is an exception a reviewer reads, not a way around the rule."""
    traded = [e.id for e in catalog.exercises if e.trade_offs]
    assert len(traded) <= 5, traded


@pytest.mark.parametrize("ladder", LADDERS)
def test_a_heavier_band_or_a_weight_never_rates_lighter(catalog: Catalog, ladder: str) -> None:
    """The load ratings agree with the kit: a level that needs a heavier band or a weight
    than another level of the ladder rates at least as high on load (where the ladder rates
    load at all)."""
    steps = catalog.ladders[ladder]
    if Axis.LOAD not in steps[0].difficulty:
        return

    def kit(e: Exercise) -> int:
        return max((_RESISTANCE.get(q, 0) for q in e.equipment), default=0)

    wrong = [
        f"{a.id} needs more than {b.id} but rates lighter"
        for a in steps
        for b in steps
        if kit(a) > kit(b) and a.difficulty[Axis.LOAD] < b.difficulty[Axis.LOAD]
    ]
    assert not wrong


def test_the_catalog_refuses_a_ladder_rated_on_different_axes(catalog: Catalog) -> None:
    data = catalog.model_dump(mode="json")
    bridge = next(e for e in data["exercises"] if e["id"] == "glute-bridge")
    bridge["difficulty"] = {"lever": 1}
    with pytest.raises(ValueError, match="same axes"):
        Catalog.model_validate_json(json.dumps(data))
