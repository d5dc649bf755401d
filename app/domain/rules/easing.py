"""Easing: what a step down does (clinical rules §10, "ease before you swap").

Ease first by lowering the dose, then step down the same ladder, then stand in an exercise
of the slot's own family that the person has already done without trouble: an untried
exercise during a flare is a new risk. A session always keeps a warm-up.
"""

from __future__ import annotations

from dataclasses import replace

from app.domain.catalog import Exercise
from app.domain.dosing import DoseBounds, lower_one_variable, start_dose_for
from app.domain.reasons import ReasonCode, reason
from app.domain.rules.base import Stage, rule
from app.domain.rules.context import Context
from app.domain.rules.selection import fit_to_person, unavailable
from app.domain.rules.state import ExerciseState
from app.domain.types import Category, Change, Dose, Reason

__all__ = ["ease_down", "step_back_one_level", "stop_the_direction"]

Step = tuple[Exercise | None, Dose | None, Change]


def _start(exercise: Exercise, ctx: Context) -> Dose:
    return start_dose_for(exercise, ctx.profile.age, ctx.catalog.thresholds)


def _lower_level(exercise: Exercise, ctx: Context, *, neutral: bool = False) -> Exercise | None:
    """The nearest easier level of the ladder the person can do (spine-neutral if asked)."""
    for level in range(exercise.level - 1, 0, -1):
        lower = ctx.catalog.at_level(exercise.ladder, level)
        if (
            lower is not None
            and lower.id not in ctx.taken
            and (not neutral or lower.spinal_direction == "neutral")
            and unavailable(lower, ctx) is None
        ):
            return lower
    return None


def _floor(dose: Dose, bounds: DoseBounds) -> Dose:
    """Every variable of the dose at its floor: the gentlest form of the exercise."""
    t = bounds.template
    return replace(
        dose,
        sets=int(t.sets.min),
        reps=None if bounds.reps is None else int(bounds.reps.min),
        hold_seconds=None if bounds.hold is None else int(bounds.hold.min),
        duration_seconds=None if t.duration_seconds is None else int(t.duration_seconds.min),
    )


@rule(Stage.EASING, "Article and ACSM (Garber 2011): 5 minutes of light aerobic work first")
def keep_a_warm_up(s: ExerciseState, ctx: Context, reasons: list[Reason]) -> Step | None:  # noqa: ARG001
    """A warm-up that was too hard even at its easiest stays at its gentlest dose: a session
    never opens without one."""
    if s.exercise.category is not Category.AEROBIC_WARM_UP:
        return None
    reasons.append(reason(ReasonCode.WARM_UP_KEPT, keep_a_warm_up))
    floor = _floor(s.dose, s.bounds)
    return s.exercise, floor, Change.REGRESSED if floor != s.dose else Change.MAINTAINED


@rule(Stage.EASING, "Clinical rules §10 (lower the dose, then the ladder, then a tried stand-in)")
def ease_down(s: ExerciseState, ctx: Context, reasons: list[Reason]) -> Step:
    """Lower one dose variable; at the floor, the next easier level of the ladder; at the
    bottom, a stand-in of the slot's family already done without trouble; else leave it
    out until it settles (a warm-up is kept at its gentlest)."""
    down = lower_one_variable(s.dose, s.bounds)
    if down is not None:
        return s.exercise, down.dose, Change.REGRESSED
    lower = _lower_level(s.exercise, ctx)
    if lower is not None:
        return lower, _start(lower, ctx), Change.REGRESSED
    swap, why = fit_to_person(s.exercise, ctx, s.slot, swap_only=True, tried_only=True)
    if swap is not None:
        reasons.extend(why)
        return swap, _start(swap, ctx), Change.SUBSTITUTED
    kept = keep_a_warm_up(s, ctx, reasons)
    if kept is not None:
        return kept
    reasons.extend(why)
    return None, None, Change.REMOVED


@rule(Stage.EASING, "Convention (clinical rules §1 step 5): a long gap steps back one level")
def step_back_one_level(s: ExerciseState, ctx: Context, reasons: list[Reason]) -> Step:  # noqa: ARG001
    """After a long gap: one level down the ladder, or the exercise's starting dose."""
    lower = ctx.catalog.at_level(s.exercise.ladder, s.exercise.level - 1)
    if lower is not None and lower.id not in ctx.taken:
        return lower, _start(lower, ctx), Change.REGRESSED
    base = _start(s.exercise, ctx)
    return s.exercise, base, Change.REGRESSED if base != s.dose else Change.MAINTAINED


@rule(Stage.EASING, "Hebert 2011; May 2018 (stop the direction; neutral work instead)")
def stop_the_direction(s: ExerciseState, ctx: Context, reasons: list[Reason]) -> Step:
    """The movement stops: a spine-neutral easier level of the same ladder (a gentler nerve
    slider), else a neutral stand-in already done without trouble, else leave it out (a
    warm-up stays at its gentlest; the spreading has already asked for a clinician)."""
    lower = _lower_level(s.exercise, ctx, neutral=True)
    if lower is not None:
        return lower, _start(lower, ctx), Change.REGRESSED
    swap, why = fit_to_person(
        s.exercise, ctx, s.slot, swap_only=True, neutral_only=True, tried_only=True
    )
    if swap is not None:
        reasons.extend(why)
        return swap, _start(swap, ctx), Change.SUBSTITUTED
    kept = keep_a_warm_up(s, ctx, reasons)  # the spreading already asks for a clinician
    if kept is not None:
        return kept
    reasons.extend(why)
    return None, None, Change.REMOVED
