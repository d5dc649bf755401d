"""Doses within guidance: holds people with high blood pressure can breathe through,
stretches long enough to work, warm-ups that can be gentler and shorter.
"""

from __future__ import annotations

import pytest

from app.catalog.loader import default_catalog
from app.domain.catalog import Catalog, Exercise
from app.domain.dosing import bounds_for, start_dose
from app.domain.types import Category, Contraindication

_CATALOG = default_catalog()

# Working holds, where the muscles strain against a load; a stretch, a breathing exercise or
# lying face down is held at rest.
_WORKING = {
    Category.ISOMETRIC,
    Category.STRENGTH,
    Category.CORE_STABILITY,
    Category.FUNCTIONAL,
    Category.BALANCE,
    Category.POSTURE,
}
# Blood pressure climbs through a hard hold, and faster with the breath held: hold no longer
# than this with high blood pressure, breathing all the way (Pescatello LS et al. 2004,
# ACSM position stand on exercise and hypertension, Med Sci Sports Exerc 36:533; Williams MA
# et al. 2007, AHA scientific statement on resistance exercise, Circulation 116:572).
HYPERTENSION_HOLD_MAX_SECONDS = 30

HOLDS = [
    pytest.param(e.id, id=e.id)
    for e in _CATALOG.exercises
    if e.category in _WORKING and e.dose.hold_seconds is not None
]
STRETCHES = [
    pytest.param(e.id, id=e.id) for e in _CATALOG.exercises if e.category is Category.STATIC_STRETCH
]


def _breathing_cue(exercise: Exercise) -> bool:
    text = " ".join(exercise.cues).lower() + " " + exercise.instructions.lower()
    return "breath" in text


@pytest.mark.parametrize("exercise_id", HOLDS)
def test_every_working_hold_says_to_keep_breathing(catalog: Catalog, exercise_id: str) -> None:
    exercise = catalog.by_id[exercise_id]
    assert _breathing_cue(exercise), f"{exercise.id}: no breathing cue on a hold"


@pytest.mark.parametrize("exercise_id", HOLDS)
def test_long_working_holds_are_left_out_with_high_blood_pressure(
    catalog: Catalog, exercise_id: str
) -> None:
    exercise = catalog.by_id[exercise_id]
    hold = exercise.dose.hold_seconds
    assert hold is not None
    flag = exercise.contraindications.get(Contraindication.HYPERTENSION)
    if hold.max > HYPERTENSION_HOLD_MAX_SECONDS:
        level = None if flag is None else flag.level
        assert level == "avoid", (
            f"{exercise.id} holds up to {hold.max:g} s but allows high blood pressure"
        )


@pytest.mark.parametrize("exercise_id", STRETCHES)
@pytest.mark.parametrize("age", [40, 70])
def test_a_stretch_adds_up_to_about_a_minute(catalog: Catalog, exercise_id: str, age: int) -> None:
    """About 60 s of stretching per muscle (Garber 2011): 3 x 20 s for adults, 2 x 30 s for
    older adults, whose holds may reach 60 s."""
    exercise = catalog.by_id[exercise_id]
    bounds = bounds_for(exercise, age, catalog.thresholds)
    dose = start_dose(bounds)
    assert dose.reps is not None
    assert dose.hold_seconds is not None
    assert dose.reps * dose.hold_seconds >= catalog.thresholds.stretch_total_seconds.value
    assert bounds.hold is not None
    if age >= catalog.thresholds.older_adult_age.value:
        assert (bounds.hold.min, bounds.hold.max) == (30, 60)
    else:
        assert bounds.hold.max >= 30


def test_a_warm_up_can_be_gentler_and_shorter(catalog: Catalog) -> None:
    """Light aerobic work for 3 to 5 minutes (Garber 2011): each warm-up can be cut to three
    minutes and no less, and the warm-up ladder starts seated."""
    warm_ups = [e for e in catalog.exercises if e.category is Category.AEROBIC_WARM_UP]
    for e in warm_ups:
        duration = e.dose.duration_seconds
        assert duration is not None
        assert duration.min == 180, e.id
        assert duration.start == 300, e.id
        assert not any(w in e.instructions for w in ("five minutes", "5 minutes")), e.id
    first = catalog.ladders["aerobic-warm-up"][0]
    assert first.position.value == "sitting"


def test_a_movement_break_comes_as_often_as_its_text_says(catalog: Catalog) -> None:
    """ "After every 30 to 45 minutes of sitting" over an eight-hour day is at least eight."""
    brk = catalog.by_id["movement-break"]
    assert "30 to 45 minutes" in brk.instructions
    assert brk.dose.per_day is not None
    assert brk.dose.per_day.start * 45 >= 6 * 60
