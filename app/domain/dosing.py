"""Dose arithmetic: starting doses, one progression step, one regression step, volume and time.

All of it is clamped by the exercise's dose template (and, for static stretches, by the hold
times for the person's age), so no dose the engine returns can leave its bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from app.domain.catalog import Bound, DoseTemplate, Exercise, Thresholds
from app.domain.types import Category, Dose, DoseVariable

__all__ = [
    "DoseBounds",
    "StepUp",
    "bounds_for",
    "clamp_dose",
    "estimated_seconds",
    "lower_one_variable",
    "raise_one_variable",
    "start_dose",
    "start_dose_for",
    "weekly_volume",
]

# Variables whose step multiplies an exercise's weekly volume by the same factor.
_SCALES_VOLUME = frozenset(
    {
        DoseVariable.REPS,
        DoseVariable.HOLD_SECONDS,
        DoseVariable.DURATION_SECONDS,
        DoseVariable.PER_WEEK,
        DoseVariable.PER_DAY,
    }
)
# More load restarts these at their floor, and they build again (double progression).
_RESET_ON_LOAD = frozenset(
    {DoseVariable.REPS, DoseVariable.HOLD_SECONDS, DoseVariable.DURATION_SECONDS}
)


def _spread_reps_over_sets(
    before: Dose, after: Dose, bounds: DoseBounds, earlier: tuple[DoseVariable, ...]
) -> Dose:
    """After one more set, the reps start again from their start value, but never so low
    that the total reps fall; holds and durations stay (a progression never lowers the
    work)."""
    if DoseVariable.REPS not in earlier or before.reps is None:
        return after
    bound = bounds.bound(DoseVariable.REPS)
    if bound is None:
        return after
    total = before.sets * before.reps
    reps = max(int(bound.start), math.ceil(total / after.sets))
    return after.with_value(DoseVariable.REPS, min(reps, int(bound.max)))


@dataclass(frozen=True, slots=True)
class DoseBounds:
    """A template with any person-specific override applied (older adults' stretch holds)."""

    template: DoseTemplate
    hold: Bound | None
    reps: Bound | None

    def bound(self, variable: DoseVariable) -> Bound | None:
        if variable is DoseVariable.HOLD_SECONDS:
            return self.hold
        if variable is DoseVariable.REPS:
            return self.reps
        return self.template.bound(variable)


@dataclass(frozen=True, slots=True)
class StepUp:
    variable: DoseVariable
    dose: Dose
    before: float
    after: float


def bounds_for(exercise: Exercise, age: int, th: Thresholds) -> DoseBounds:
    """The dose bounds for this exercise and person (memoised per exercise and age band)."""
    return _prescription(exercise, age, th).bounds


def start_dose_for(exercise: Exercise, age: int, th: Thresholds) -> Dose:
    """``start_dose(bounds_for(exercise, age, th))``, memoised with the bounds: every new or
    changed exercise in a decision starts there."""
    return _prescription(exercise, age, th).start


class _Prescription(NamedTuple):
    # The exercise and thresholds are kept so that their ids, in the key, cannot be reused.
    exercise: Exercise
    th: Thresholds
    bounds: DoseBounds
    start: Dose


def _prescription(exercise: Exercise, age: int, th: Thresholds) -> _Prescription:
    older = age >= th.older_adult_age.value
    key = (id(exercise), id(th), older)
    cached = _PRESCRIPTIONS.get(key)
    if cached is not None and cached.exercise is exercise and cached.th is th:
        return cached
    template = exercise.dose
    hold, reps = template.hold_seconds, template.reps
    if exercise.category is Category.STATIC_STRETCH and hold is not None:
        if older:
            low = th.older_stretch_hold_min_seconds.value
            high = th.older_stretch_hold_max_seconds.value
        else:
            low, high = th.stretch_hold_min_seconds.value, th.stretch_hold_max_seconds.value
        first = min(max(hold.start, low), high)
        hold = Bound(start=first, min=low, max=high, step=hold.step)
        if reps is not None:
            # Enough holds to make about a minute of stretching (Garber 2011).
            needed = math.ceil(th.stretch_total_seconds.value / first)
            start = min(max(reps.start, needed), reps.max)
            reps = Bound(start=start, min=reps.min, max=reps.max, step=reps.step)
    bounds = DoseBounds(template=template, hold=hold, reps=reps)
    cached = _PRESCRIPTIONS[key] = _Prescription(exercise, th, bounds, start_dose(bounds))
    return cached


_PRESCRIPTIONS: dict[tuple[int, int, bool], _Prescription] = {}


def _int(bound: Bound | None, which: str = "start") -> int | None:
    return None if bound is None else int(getattr(bound, which))


def start_dose(bounds: DoseBounds) -> Dose:
    """The template's starting dose."""
    t = bounds.template
    return Dose(
        sets=int(t.sets.start),
        reps=_int(bounds.reps),
        hold_seconds=_int(bounds.hold),
        duration_seconds=_int(t.duration_seconds),
        load_kg=None if t.load_kg is None else float(t.load_kg.start),
        per_side=t.per_side,
        rest_seconds=t.rest_seconds,
        per_week=int(t.per_week.start),
        per_day=int(t.per_day.start) if t.per_day else 1,
    )


def _clamp(value: float | None, bound: Bound | None) -> float | None:
    if bound is None:
        return None
    if value is None:
        return bound.start
    return min(max(value, bound.min), bound.max)


def _fits(value: float | None, bound: Bound | None) -> bool:
    if bound is None:
        return value is None
    return value is not None and bound.min <= value <= bound.max


def clamp_dose(dose: Dose, bounds: DoseBounds) -> Dose:
    """Bring a dose (for example one logged under an older ruleset) inside today's bounds."""
    t = bounds.template
    if (
        t.sets.min <= dose.sets <= t.sets.max
        and t.per_week.min <= dose.per_week <= t.per_week.max
        and _fits(dose.reps, bounds.reps)
        and _fits(dose.hold_seconds, bounds.hold)
        and _fits(dose.duration_seconds, t.duration_seconds)
        and _fits(dose.load_kg, t.load_kg)
        and (dose.per_day == 1 if t.per_day is None else _fits(dose.per_day, t.per_day))
        and dose.per_side == t.per_side
        and dose.rest_seconds == t.rest_seconds
    ):
        return dose  # the usual case: the dose we prescribed last time
    load = _clamp(dose.load_kg, t.load_kg)
    per_day = _clamp(dose.per_day, t.per_day)
    return Dose(
        sets=int(_clamp(dose.sets, t.sets) or t.sets.start),
        reps=_opt_int(_clamp(dose.reps, bounds.reps)),
        hold_seconds=_opt_int(_clamp(dose.hold_seconds, bounds.hold)),
        duration_seconds=_opt_int(_clamp(dose.duration_seconds, t.duration_seconds)),
        load_kg=None if load is None else round(load, 1),
        per_side=t.per_side,
        rest_seconds=t.rest_seconds,
        per_week=int(_clamp(dose.per_week, t.per_week) or t.per_week.start),
        per_day=1 if per_day is None else int(per_day),
    )


def _opt_int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _load_step(current: float, bound: Bound, th: Thresholds) -> float:
    # ACSM: 2-10 % per step. Loads come in fixed increments, so the step is rounded down to
    # one, and is never smaller than one.
    grain = th.load_step_min_kg.value
    raw = min(bound.step, current * th.load_step_max_pct.value / 100)
    return max(grain, math.floor(raw / grain) * grain)


def raise_one_variable(
    dose: Dose,
    bounds: DoseBounds,
    th: Thresholds,
    *,
    skip_variant: bool = True,
    max_step_pct: float | None = None,
) -> StepUp | DoseVariable | None:
    """Raise the first variable in the progression order that is below its ceiling.

    Returns the step, or ``DoseVariable.VARIANT`` when the order reaches ``variant`` first
    (the caller decides whether a harder variant is allowed; call again with
    ``skip_variant=True`` to continue past it), or ``None`` at the ceiling.

    With ``max_step_pct`` a step on reps, hold, duration or frequency is shrunk to that share
    of the current value (one unit at least), so one step cannot outgrow the volume cap.
    """
    order = bounds.template.progression
    for index, variable in enumerate(order):
        if variable is DoseVariable.VARIANT:
            if skip_variant:
                continue
            return DoseVariable.VARIANT
        bound = bounds.bound(variable)
        current = dose.value(variable)
        if bound is None or current is None or current >= bound.max:
            continue
        if variable is DoseVariable.LOAD_KG:
            after: float = round(min(current + _load_step(current, bound, th), bound.max), 1)
        else:
            step = bound.step
            if max_step_pct is not None and variable in _SCALES_VOLUME:
                step = min(step, max(1, math.floor(current * max_step_pct / 100)))
            after = int(min(current + step, bound.max))
        changed = dose.with_value(variable, after)
        if variable is DoseVariable.SETS:
            changed = _spread_reps_over_sets(dose, changed, bounds, order[:index])
        elif variable is DoseVariable.LOAD_KG:
            for earlier in order[:index]:
                earlier_bound = bounds.bound(earlier)
                if earlier_bound is not None and earlier in _RESET_ON_LOAD:
                    changed = changed.with_value(earlier, int(earlier_bound.min))
        return StepUp(variable=variable, dose=changed, before=current, after=after)
    return None


def lower_one_variable(dose: Dose, bounds: DoseBounds) -> StepUp | None:
    """Step one variable down: undo the latest progression, else ease the volume.

    The latest progression is the last variable, in progression order, that sits above its
    starting value. With none above its start, the first variable above its floor is eased
    (reps or hold before sets before load), never frequency first. ``None`` at the floor.
    """
    order = [v for v in bounds.template.progression if v is not DoseVariable.VARIANT]
    frequency = (DoseVariable.PER_WEEK, DoseVariable.PER_DAY)
    raised = [v for v in order if _above(dose, bounds, v, "start")]
    eased = [v for v in order if v not in frequency and _above(dose, bounds, v, "min")]
    candidates = raised[-1:] or eased[:1]
    if not candidates:
        return None
    variable = candidates[0]
    bound = bounds.bound(variable)
    current = dose.value(variable)
    assert bound is not None
    assert current is not None
    after: float
    if variable is DoseVariable.LOAD_KG:
        after = round(max(current - bound.step, bound.min), 1)
    else:
        after = int(max(current - bound.step, bound.min))
    return StepUp(
        variable=variable, dose=dose.with_value(variable, after), before=current, after=after
    )


def _above(dose: Dose, bounds: DoseBounds, variable: DoseVariable, which: str) -> bool:
    bound = bounds.bound(variable)
    current = dose.value(variable)
    return bound is not None and current is not None and current > getattr(bound, which)


def weekly_volume(dose: Dose) -> float:
    """Sets x reps x seconds x load x frequency: a unitless size of a week's work."""
    return (
        dose.sets
        * (dose.reps or 1)
        * (dose.hold_seconds or 1)
        * (dose.duration_seconds or 1)
        * (dose.load_kg or 1)
        * dose.per_week
        * dose.per_day
    )


def estimated_seconds(dose: Dose, tempo_seconds: float, set_change_seconds: float) -> int:
    """How long one bout of the exercise takes, rests and position changes included."""
    if dose.reps is not None:
        per_set = dose.reps * (tempo_seconds + (dose.hold_seconds or 0))
    elif dose.hold_seconds is not None:
        per_set = float(dose.hold_seconds)
    else:
        per_set = float(dose.duration_seconds or 0)
    if dose.per_side:
        per_set *= 2
    total = dose.sets * (per_set + set_change_seconds) + max(dose.sets - 1, 0) * dose.rest_seconds
    return math.ceil(total)
