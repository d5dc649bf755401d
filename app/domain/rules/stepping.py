"""Carrying out a progression: one variable up, or the next level of the ladder, within the
weekly volume cap, the phase ceiling and the person's limits. A step called progression
never lowers the work (clinical rules §10)."""

from __future__ import annotations

from typing import cast

from app.domain.catalog import Exercise, Thresholds
from app.domain.dosing import StepUp, raise_one_variable, start_dose_for, weekly_volume
from app.domain.reasons import ReasonCode, reason
from app.domain.rules.base import Reads, Stage, rule
from app.domain.rules.context import Context
from app.domain.rules.selection import (
    cap_level_by_phase,
    sliders_before_tensioners,
    stand_ins_keep_their_level,
    unavailable,
)
from app.domain.rules.state import ExerciseState
from app.domain.types import Change, Dose, DoseVariable, Reason

__all__ = ["cap_weekly_volume_growth", "progress_one_variable"]

_PROGRESS_CODE = {
    DoseVariable.REPS: ReasonCode.PROGRESS_REPS,
    DoseVariable.HOLD_SECONDS: ReasonCode.PROGRESS_HOLD,
    DoseVariable.DURATION_SECONDS: ReasonCode.PROGRESS_DURATION,
    DoseVariable.SETS: ReasonCode.PROGRESS_SETS,
    DoseVariable.LOAD_KG: ReasonCode.PROGRESS_LOAD,
    DoseVariable.PER_WEEK: ReasonCode.PROGRESS_FREQUENCY,
    DoseVariable.PER_DAY: ReasonCode.PROGRESS_FREQUENCY,
}


@rule(Stage.PROGRESSION, "Nielsen 2014, JOSPT 44:739 (> 30 % over 2 weeks linked to injury)")
def cap_weekly_volume_growth(s: ExerciseState, proposed: Dose) -> Reason | None:
    """Hold a loading exercise's step that would stack weekly-volume growth above the cap.

    Steps are already sized to the cap; where even one unit is more (1 → 2 times a day), one
    step from a volume that has not grown in the window is still allowed, or it could never
    happen. The cap stops steps stacking up.
    """
    if not s.exercise.hard:
        return None  # the injury signal is about load; mobility and breathing are not capped
    th = s.th.fresh()
    window = int(th.volume_growth_window_days.value)
    window_start = s.today.toordinal() - window
    baseline: Dose | None = None
    for appearance in s.appearances:
        if appearance.session.date.toordinal() < window_start:
            break
        baseline = appearance.result.prescribed
    if baseline is None:
        return None
    base = weekly_volume(baseline)
    if base <= 0 or weekly_volume(s.dose) <= base:
        return None
    limit = th.volume_growth_cap_pct.value
    growth = (weekly_volume(proposed) / base - 1) * 100
    if growth <= limit:
        return None
    return reason(
        ReasonCode.VOLUME_CAP,
        cap_weekly_volume_growth,
        th.cited(),
        pct=round((weekly_volume(s.dose) / base - 1) * 100),
        days=window,
        limit=int(limit),
    )


def _harder_variant(s: ExerciseState, ctx: Context, reasons: list[Reason]) -> Exercise | None:
    """The next level up if the person may move to it; otherwise say why not and ``None``."""
    exercise = s.exercise
    harder = ctx.catalog.at_level(exercise.ladder, exercise.level + 1)
    if harder is None:
        return None
    # At the ceiling the person is on its top level, so the ceiling named is their level.
    why = stand_ins_keep_their_level(exercise, s.slot) or cap_level_by_phase(harder, s.slot, ctx)
    why = why or sliders_before_tensioners(harder, s) or unavailable(harder, ctx)
    if why is not None:
        reasons.append(why)
        return None
    return harder


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@rule(Stage.PROGRESSION, "Clinical rules §3 (one variable at a time; double progression)")
def progress_one_variable(
    s: ExerciseState, ctx: Context, reasons: list[Reason]
) -> tuple[Exercise, Dose, Change]:
    """Raise the first variable below its ceiling in the exercise's progression order, or
    move to the next level of its ladder; loading steps stay within the weekly volume cap.
    A step never lowers total reps or time under tension, except that more load resets the
    reps (double progression)."""
    exercise, dose, bounds = s.exercise, s.dose, s.bounds
    th = Reads(ctx.catalog.thresholds)
    cap = th.volume_growth_cap_pct.value if exercise.hard else None
    traced = cast(Thresholds, th)
    step = raise_one_variable(dose, bounds, traced, skip_variant=False, max_step_pct=cap)
    if step is DoseVariable.VARIANT:
        harder = _harder_variant(s, ctx, reasons)
        if harder is not None:
            reasons.append(
                reason(
                    ReasonCode.PROGRESS_VARIANT,
                    progress_one_variable,
                    th.cited(),
                    name=harder.name,
                )
            )
            return harder, start_dose_for(harder, ctx.profile.age, th.plain), Change.PROGRESSED
        step = raise_one_variable(dose, bounds, traced, skip_variant=True, max_step_pct=cap)
    if isinstance(step, StepUp):
        capped = cap_weekly_volume_growth(s, step.dose)
        if capped is not None:
            reasons.append(capped)
            return exercise, dose, Change.MAINTAINED
        reasons.append(_progress_reason(step, th.cited()))
        return exercise, step.dose, Change.PROGRESSED
    reasons.append(reason(ReasonCode.AT_CEILING, progress_one_variable, th.cited()))
    return exercise, dose, Change.MAINTAINED


def _progress_reason(step: StepUp, cited: tuple[str, ...]) -> Reason:
    code = _PROGRESS_CODE[step.variable]
    values: dict[str, object] = {"before": _num(step.before), "after": _num(step.after)}
    if step.variable is DoseVariable.SETS:
        values["reps"] = step.dose.reps if step.dose.reps is not None else "-"
    if code is ReasonCode.PROGRESS_FREQUENCY:
        values["unit"] = "days a week" if step.variable is DoseVariable.PER_WEEK else "times a day"
    return reason(code, progress_one_variable, cited, **values)
