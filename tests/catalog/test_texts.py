"""Text sanity: every exercise explains itself, and its words agree with its data.

A reviewer reads each instruction for contradictions; these tests keep what a machine can
check: every exercise has instructions, cues and a one-line purpose, and the instructions
put the body where ``position`` says (a "lying" exercise whose text says to stand is a
contradiction that would reach a patient).
"""

from __future__ import annotations

import pytest

from app.catalog.loader import default_catalog
from app.domain.catalog import Catalog
from app.domain.movement import Position

_CATALOG = default_catalog()
EXERCISES = [pytest.param(e.id, id=e.id) for e in _CATALOG.exercises]

# Words that place the body in each position; the instructions must use one of them.
_PLACED_BY: dict[Position, tuple[str, ...]] = {
    Position.SUPINE: ("on your back", "into a bridge", "upper back against", "as for the curl-up"),
    Position.PRONE: ("face down", "lying on your front"),
    Position.SIDE_LYING: ("on your side", "side plank"),
    Position.FOUR_POINT: (
        "all fours",
        "hands and knees",
        "forearms and",
        "forearms on the floor",
        "plank on your",
        "as for the bird dog",
    ),
    Position.KNEELING: ("kneel", "child's pose"),
    Position.FLOOR_SITTING: ("sit on the floor", "sit tall on the floor"),
    Position.SITTING: ("sit", "seat"),
    Position.STANDING: ("stand",),
    Position.WALKING: ("walk",),
}


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_exercise_explains_itself(catalog: Catalog, exercise_id: str) -> None:
    exercise = catalog.by_id[exercise_id]
    assert len(exercise.instructions) >= 120, "instructions too short to follow"
    assert len(exercise.cues) >= 2, "fewer than two cues"
    assert 40 <= len(exercise.purpose) <= 140, "a purpose is one line"
    assert exercise.purpose.endswith("."), "a purpose is a sentence"
    assert exercise.purpose.lower() != exercise.name.lower()


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_the_instructions_put_the_body_where_the_position_says(
    catalog: Catalog, exercise_id: str
) -> None:
    exercise = catalog.by_id[exercise_id]
    text = exercise.instructions.lower()
    words = _PLACED_BY[exercise.position]
    assert any(w in text for w in words), (
        f"{exercise.id} is {exercise.position.value} but its instructions say none of {words}"
    )


def test_every_position_is_checked() -> None:
    assert set(_PLACED_BY) == set(Position)
