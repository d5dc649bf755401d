"""Stand-ins of the right kind: an exercise's ``alternatives`` do the same sort of work.

An alternative is what the person is given instead when the exercise does not fit them
(kit, contraindication, condition) or was not tolerated. A stand-in of the wrong kind
quietly changes the treatment: a nerve glide handed to someone without sciatica, a bend
or a twist handed to someone whose back eases with extension, a stretch in place of a
strength exercise. Each rule here makes one such class impossible to reintroduce.
"""

from __future__ import annotations

import pytest

from app.catalog.loader import default_catalog
from app.domain.catalog import STAND_IN_FAMILIES, Catalog, Exercise
from app.domain.types import Category

_CATALOG = default_catalog()

# The families are the engine's own (STAND_IN_FAMILIES): data and rule share one table.
FAMILIES = STAND_IN_FAMILIES

EXERCISES = [pytest.param(e.id, id=e.id) for e in _CATALOG.exercises if e.alternatives]


def _stand_ins(catalog: Catalog, exercise_id: str) -> tuple[Exercise, list[Exercise]]:
    exercise = catalog.by_id[exercise_id]
    return exercise, [catalog.by_id[a] for a in exercise.alternatives]


def test_every_category_has_a_family() -> None:
    assert set(FAMILIES) == set(Category)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_a_nerve_glide_stands_in_only_for_a_nerve_glide(catalog: Catalog, exercise_id: str) -> None:
    """Nerve glides treat an irritated nerve root; outside sciatica they have no job, and a
    glide handed out as a hamstring stretch's stand-in tensions the nerve for nothing."""
    exercise, alternatives = _stand_ins(catalog, exercise_id)
    if exercise.category is Category.NERVE_GLIDE:
        return
    glides = [a.id for a in alternatives if a.category is Category.NERVE_GLIDE]
    assert not glides, f"{exercise.id} ({exercise.category.value}) stands in with glides {glides}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_a_directional_exercise_never_stands_in_against_its_direction(
    catalog: Catalog, exercise_id: str
) -> None:
    """Extension is replaced by extension or a neutral spine, flexion by flexion or neutral:
    people with a directional preference who move against it do worse (Long A et al. 2004,
    Spine 29:2593), and a twist is a third direction nobody has tested for them."""
    exercise, alternatives = _stand_ins(catalog, exercise_id)
    if exercise.spinal_direction not in ("extension", "flexion"):
        return
    allowed = {exercise.spinal_direction, "neutral"}
    wrong = [
        f"{a.id} ({a.spinal_direction})" for a in alternatives if a.spinal_direction not in allowed
    ]
    assert not wrong, f"{exercise.id} ({exercise.spinal_direction}) stands in with {wrong}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_a_warm_up_stands_in_only_for_a_warm_up(catalog: Catalog, exercise_id: str) -> None:
    """A warm-up that was too hard is replaced by a gentler warm-up, never by a stretch."""
    exercise, alternatives = _stand_ins(catalog, exercise_id)
    if exercise.category is not Category.AEROBIC_WARM_UP:
        return
    wrong = [a.id for a in alternatives if a.category is not Category.AEROBIC_WARM_UP]
    assert not wrong, f"{exercise.id} stands in with non-warm-ups {wrong}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_a_stand_in_is_of_the_same_family(catalog: Catalog, exercise_id: str) -> None:
    exercise, alternatives = _stand_ins(catalog, exercise_id)
    families = FAMILIES[exercise.category]
    wrong = [
        f"{a.id} ({a.category.value})" for a in alternatives if not families & FAMILIES[a.category]
    ]
    assert not wrong, f"{exercise.id} ({exercise.category.value}) stands in with {wrong}"


def test_every_warm_up_can_be_made_shorter(catalog: Catalog) -> None:
    """When the warm-up itself was too hard the engine first shortens it: that needs a
    floor below the full warm-up and the duration in the progression it eases back."""
    for exercise in catalog.exercises:
        if exercise.category is not Category.AEROBIC_WARM_UP:
            continue
        duration = exercise.dose.duration_seconds
        assert duration is not None, exercise.id
        assert duration.min < duration.start, f"{exercise.id}: no shorter warm-up"
        assert duration.min >= 120, f"{exercise.id}: under two minutes is no warm-up"
        assert "duration_seconds" in exercise.dose.progression, exercise.id


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_a_stand_in_does_the_same_job(catalog: Catalog, exercise_id: str) -> None:
    """Same family is not enough: an angel is posture work, not upper-back strength, and a
    bridge builds the hips, not the trunk a side plank trains (``PURPOSE_OF_PATTERN``)."""
    exercise, alternatives = _stand_ins(catalog, exercise_id)
    wrong = [
        f"{a.id} ({a.movement_pattern})"
        for a in alternatives
        if a.purposes.isdisjoint(exercise.purposes)
    ]
    assert not wrong, f"{exercise.id} ({exercise.movement_pattern}) stands in with {wrong}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_a_habit_stands_in_only_for_a_habit(catalog: Catalog, exercise_id: str) -> None:
    exercise, alternatives = _stand_ins(catalog, exercise_id)
    is_habit = exercise.category is Category.HABIT
    wrong = [a.id for a in alternatives if (a.category is Category.HABIT) != is_habit]
    assert not wrong, f"{exercise.id} stands in with {wrong}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_a_stand_in_never_adds_rotation(catalog: Catalog, exercise_id: str) -> None:
    """Easing must not add a twist to an exercise that had none: rotation is what the
    surgery and osteoporosis avoid lists rule out first."""
    exercise, alternatives = _stand_ins(catalog, exercise_id)
    if exercise.spinal_direction == "rotation":
        return
    wrong = [a.id for a in alternatives if a.spinal_direction == "rotation"]
    assert not wrong, f"{exercise.id} stands in with twists {wrong}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_a_stand_in_is_on_another_ladder(catalog: Catalog, exercise_id: str) -> None:
    """The engine already steps down the ladder; a stand-in from the same ladder is dead."""
    exercise, alternatives = _stand_ins(catalog, exercise_id)
    assert all(a.ladder != exercise.ladder for a in alternatives)
