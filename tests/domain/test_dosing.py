"""Dose arithmetic: one variable per step, in order, inside bounds; steps back undo the last."""

from __future__ import annotations

from app.domain.catalog import Catalog
from app.domain.dosing import (
    StepUp,
    bounds_for,
    estimated_seconds,
    lower_one_variable,
    raise_one_variable,
    start_dose,
)
from app.domain.types import DoseVariable


def test_progression_raises_reps_before_sets_and_never_lowers_total_reps(catalog: Catalog) -> None:
    bridge = catalog.by_id["marching-bridge"]
    bounds = bounds_for(bridge, 40, catalog.thresholds)
    order = [v for v in bridge.dose.progression if v is not DoseVariable.VARIANT]
    dose = start_dose(bounds)
    seen: list[DoseVariable] = []
    while True:
        step = raise_one_variable(dose, bounds, catalog.thresholds)
        if not isinstance(step, StepUp):
            break
        changed = [v for v in order if step.dose.value(v) != dose.value(v)]
        assert step.variable in changed
        for earlier in order[: order.index(step.variable)]:  # the first one below its ceiling
            bound = bounds.bound(earlier)
            assert bound is not None
            assert dose.value(earlier) == bound.max
        if step.variable is DoseVariable.SETS and bridge.dose.reps is not None:
            # The reps start again, but the total reps never fall: 2 x 12 becomes 3 x 8.
            assert step.dose.reps is not None
            assert dose.reps is not None
            assert step.dose.reps >= bridge.dose.reps.start
            assert step.dose.sets * step.dose.reps >= dose.sets * dose.reps
        else:
            assert changed == [step.variable]  # one variable at a time
        seen.append(step.variable)
        dose = step.dose
    assert seen.count(DoseVariable.SETS) >= 1
    for variable in order:
        bound = bounds.bound(variable)
        assert bound is not None
        assert dose.value(variable) == bound.max


def test_a_load_step_is_at_most_ten_percent_and_at_least_half_a_kilo(catalog: Catalog) -> None:
    thrust = catalog.by_id["loaded-hip-thrust"]
    bounds = bounds_for(thrust, 40, catalog.thresholds)
    assert thrust.dose.load_kg is not None
    dose = start_dose(bounds)
    while True:
        step = raise_one_variable(dose, bounds, catalog.thresholds)
        if not isinstance(step, StepUp):
            break
        if step.variable is DoseVariable.LOAD_KG:
            rise = step.after - step.before
            assert 0.5 <= rise <= max(0.5, step.before * 0.10) + 1e-9
        dose = step.dose


def test_stepping_down_undoes_the_last_progression_not_the_frequency(catalog: Catalog) -> None:
    angel = catalog.by_id["floor-angel"]
    bounds = bounds_for(angel, 40, catalog.thresholds)
    start = start_dose(bounds)
    up = raise_one_variable(start, bounds, catalog.thresholds)
    assert isinstance(up, StepUp)
    down = lower_one_variable(up.dose, bounds)
    assert down is not None
    assert down.variable is up.variable
    assert down.dose == start


def test_at_the_floor_there_is_no_step_down(catalog: Catalog) -> None:
    lying = catalog.by_id["prone-lying"]
    bounds = bounds_for(lying, 40, catalog.thresholds)
    floor = start_dose(bounds)
    for variable in lying.dose.progression:
        bound = bounds.bound(variable)
        if bound is not None:
            floor = floor.with_value(variable, bound.min)
    assert lower_one_variable(floor, bounds) is None


def test_static_stretch_holds_follow_age(catalog: Catalog) -> None:
    stretch = catalog.by_id["doorway-chest-stretch"]
    adult = bounds_for(stretch, 40, catalog.thresholds).hold
    older = bounds_for(stretch, 70, catalog.thresholds).hold
    assert adult is not None
    assert older is not None
    assert (adult.min, adult.max) == (15, 30)
    assert (older.min, older.max) == (30, 60)


def test_time_estimates_count_sides_sets_and_rests(catalog: Catalog) -> None:
    stretch = catalog.by_id["half-kneeling-hip-flexor"]
    dose = start_dose(bounds_for(stretch, 40, catalog.thresholds))
    assert dose.per_side
    one_side = estimated_seconds(
        dose.with_value(DoseVariable.SETS, 1), stretch.dose.tempo_seconds, 0
    )
    assert one_side >= 2 * (dose.reps or 1) * (dose.hold_seconds or 0)


def test_a_capped_step_stays_within_the_volume_cap(catalog: Catalog) -> None:
    plank = catalog.by_id["wall-plank"]
    bounds = bounds_for(plank, 40, catalog.thresholds)
    dose = start_dose(bounds)
    cap = catalog.thresholds.volume_growth_cap_pct.value
    while True:
        step = raise_one_variable(dose, bounds, catalog.thresholds, max_step_pct=cap)
        if not isinstance(step, StepUp):
            break
        if step.variable is not DoseVariable.SETS and step.after - step.before > 1:
            assert (step.after / step.before - 1) * 100 <= cap + 1e-9
        dose = step.dose
