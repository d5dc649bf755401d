"""Deciding one slot of the session: the exercise the person is on, the rules' outcome, the
step it leads to, and a check that the result fits the person and the phase."""

from __future__ import annotations

from functools import lru_cache

from app.domain.catalog import Exercise, Slot
from app.domain.dosing import bounds_for, clamp_dose, estimated_seconds, start_dose_for
from app.domain.history import Appearance
from app.domain.reasons import ReasonCode
from app.domain.rules.base import Reads
from app.domain.rules.context import Context
from app.domain.rules.easing import ease_down, step_back_one_level, stop_the_direction
from app.domain.rules.progression import decide, note_centralisation
from app.domain.rules.scheduling import Pick, rest_between_loading_days
from app.domain.rules.selection import (
    cap_level_by_phase,
    fit_to_person,
    follow_directional_preference,
    one_exercise_per_slot,
    return_to_the_slot_ladder,
    start_by_ability,
    unavailable,
)
from app.domain.rules.state import Action, ExerciseState
from app.domain.rules.stepping import progress_one_variable
from app.domain.types import (
    Category,
    Change,
    Dose,
    ExerciseDecision,
    Reason,
    Side,
    TraceStep,
)

__all__ = ["decide_slot", "left_out"]

# What a left-out exercise may say: why it could not be done, never how its dose went.
_WHY_LEFT_OUT = frozenset(
    {
        ReasonCode.EQUIPMENT_MISSING,
        ReasonCode.CONTRAINDICATED,
        ReasonCode.AVOID_FOR_CONDITION,
        ReasonCode.DIRECTION_STOPPED,
        ReasonCode.PERIPHERALISATION,
        ReasonCode.NEW_NUMBNESS_OR_TINGLING,
        ReasonCode.PAIN_FLARE,
        ReasonCode.NEXT_DAY_PAIN_UP,
        ReasonCode.TOO_HARD,
        ReasonCode.NO_SAFE_OPTION,
        ReasonCode.LEFT_OUT_BY_PROTOCOL,
        ReasonCode.NO_TRIED_STAND_IN,
        ReasonCode.NO_EXERCISE_IN_DIRECTION,
        ReasonCode.REPEATED_FLARES,
        ReasonCode.NOT_IN_PHASE,
        ReasonCode.LEFT_OUT_FOR_TIME,
    }
)
# Reasons about the judged exercise's own dose and streak: stale once another exercise takes
# its place (it is new at its starting dose), so they are dropped then.
_ABOUT_THE_DOSE = frozenset(
    {
        ReasonCode.TWO_GREEN_SESSIONS,
        ReasonCode.GREEN_STREAK_TOO_SHORT,
        ReasonCode.NOT_GREEN,
        ReasonCode.NO_EFFORT_HEADROOM,
        ReasonCode.EFFORT_NOT_REPORTED,
        ReasonCode.AT_CEILING,
        ReasonCode.VOLUME_CAP,
        ReasonCode.STAND_IN_HOLDS_LEVEL,
        ReasonCode.SLIDERS_NOT_SYMPTOM_FREE,
    }
)


def _for_another_exercise(reasons: list[Reason]) -> list[Reason]:
    """The reasons that still hold once another exercise takes the judged one's place."""
    return [
        r for r in reasons if r.code not in _ABOUT_THE_DOSE and not r.code.startswith("progress_")
    ]


_EASING = {
    Action.LOWER_DOSE: ease_down,
    Action.STEP_BACK_LEVEL: step_back_one_level,
    Action.STOP_DIRECTION: stop_the_direction,
}


def _cautions(exercise: Exercise, ctx: Context) -> tuple[str, ...]:
    notes: list[str] = []
    kind = ctx.condition.kind
    if exercise.conditions[kind] == "caution" and kind in exercise.condition_notes:
        notes.append(exercise.condition_notes[kind])
    if ctx.profile.contraindications:
        for item, spec in exercise.contraindications.items():
            if spec.level == "caution" and item in ctx.profile.contraindications:
                notes.append(spec.note)
        # What the person's contraindications say about this position (getting down to the
        # floor with a fall risk), unless the exercise says it in its own words.
        for advice in ctx.catalog.advice_about(ctx.profile.contraindications):
            note = advice.note_for_position.get(exercise.position)
            if note is not None and advice.contraindication not in exercise.contraindications:
                notes.append(note)
    return tuple(notes)


def _side_for(exercise: Exercise, ctx: Context) -> Side:
    # Nerve glides work the affected leg; everything else is both sides or not sided.
    if exercise.category is Category.NERVE_GLIDE and ctx.condition.side in (Side.LEFT, Side.RIGHT):
        return ctx.condition.side
    return Side.BOTH if exercise.dose.per_side else Side.NONE


@lru_cache(maxsize=4096)
def _bout_minutes(dose: Dose, tempo_seconds: float, set_change_seconds: float) -> float:
    # Memoised: the same few doses come up in decision after decision.
    return round(estimated_seconds(dose, tempo_seconds, set_change_seconds) / 60, 1)


def _minutes(exercise: Exercise, dose: Dose | None, ctx: Context) -> float:
    # Habits happen through the day, not in the session's time.
    if dose is None or exercise.category is Category.HABIT:
        return 0.0
    return _bout_minutes(
        dose, exercise.dose.tempo_seconds, ctx.catalog.thresholds.set_change_seconds.value
    )


def _decision(
    exercise: Exercise,
    dose: Dose | None,
    change: Change,
    reasons: list[Reason],
    ctx: Context,
    previous: Appearance | None = None,
    slot: Slot | None = None,
) -> ExerciseDecision:
    given = change is not Change.REMOVED
    if not given:
        reasons = [r for r in reasons if r.code in _WHY_LEFT_OUT]
    elif ctx.stretch_reasons and exercise.category is Category.STATIC_STRETCH:
        reasons = [*reasons, *_stretch_reasons(dose, change, ctx)]
    return ExerciseDecision(
        exercise_id=exercise.id,
        name=exercise.name,
        section=exercise.section if given else None,
        change=change,
        reasons=tuple(reasons),
        dose=dose,
        previous_exercise_id=None if previous is None else previous.result.exercise_id,
        previous_dose=None if previous is None else previous.result.prescribed,
        ladder=exercise.ladder,
        level=exercise.level,
        slot=exercise.ladder if slot is None else slot.ladder,
        minutes=_minutes(exercise, dose, ctx) if given else 0.0,
        side=_side_for(exercise, ctx),
        cautions=_cautions(exercise, ctx) if given else (),
    )


def _stretch_reasons(dose: Dose | None, change: Change, ctx: Context) -> tuple[Reason, ...]:
    """What a given stretch's dose says about its holds. "A minute in all" explains a
    starting dose (new, or a stand-in's), and only while its holds do add up to it."""
    if dose is None or dose.reps is None or dose.hold_seconds is None:
        return ()
    total = ctx.catalog.thresholds.stretch_total_seconds.value
    explains = change in (Change.NEW, Change.SUBSTITUTED) and dose.reps * dose.hold_seconds >= total
    return tuple(
        r
        for r in ctx.stretch_reasons
        if explains or r.code is not ReasonCode.STRETCH_A_MINUTE_IN_ALL
    )


def left_out(
    exercise: Exercise, reasons: list[Reason], ctx: Context, slot: Slot | None = None
) -> ExerciseDecision:
    """A removed exercise, with only the reasons that say why it could not be done."""
    return _decision(exercise, None, Change.REMOVED, reasons, ctx, slot=slot)


def _dose_for(exercise: Exercise, ctx: Context) -> Dose:
    return start_dose_for(exercise, ctx.profile.age, ctx.catalog.thresholds)


@lru_cache(maxsize=1024)
def _started(exercise_id: str, level: int) -> TraceStep:
    """The trace of a new exercise; immutable and the same in every decision, so memoised."""
    return TraceStep(start_by_ability.__name__, exercise_id, "new", f"level {level}")


def _new_in_slot(slot: Slot, ctx: Context) -> tuple[ExerciseDecision, Exercise | None]:
    target, started = start_by_ability(slot, ctx)
    if ctx.repeated_flares is not None:
        return left_out(target, [ctx.repeated_flares], ctx, slot), None
    chosen, why = fit_to_person(target, ctx, slot)
    if chosen is None:
        return left_out(target, why, ctx, slot), None
    if chosen is not target:
        _, started = start_by_ability(slot, ctx, chosen)
    reasons = [started, *why]
    ctx.trace.append(_started(chosen.id, chosen.level))
    if slot.when_directional:
        _, preference = follow_directional_preference(chosen, slot, ctx)
        if preference is not None and preference.code != ReasonCode.NO_EXERCISE_IN_DIRECTION:
            reasons.append(preference)
    return _decision(chosen, _dose_for(chosen, ctx), Change.NEW, reasons, ctx, slot=slot), chosen


def _capped(chosen: Exercise, slot: Slot, ctx: Context) -> tuple[Exercise, Reason] | None:
    """The highest level the phase allows that the person can do, when ``chosen`` is above."""
    why = cap_level_by_phase(chosen, slot, ctx)
    if why is None:
        return None
    for level in range(slot.max_level, 0, -1):
        lower = ctx.catalog.at_level(slot.ladder, level)
        if lower is not None and lower.id not in ctx.taken and unavailable(lower, ctx) is None:
            return lower, why
    return None


def _existing_in_slot(
    slot: Slot, latest: Appearance, ctx: Context, th: Reads
) -> tuple[ExerciseDecision, Exercise | None]:
    catalog = ctx.catalog
    exercise = catalog.by_id[latest.result.exercise_id]
    bounds = bounds_for(exercise, ctx.profile.age, catalog.thresholds)
    state = ExerciseState(
        exercise=exercise,
        dose=clamp_dose(latest.result.prescribed, bounds),
        bounds=bounds,
        appearances=ctx.history.appearances(exercise.id),
        latest=latest,
        th=th,
        slot=slot,
        condition=ctx.condition,
        history=ctx.history,
        recent=ctx.recent,
        today=ctx.today,
    )
    outcome, rule_name = decide(state, ctx.person_wide)
    reasons = list(outcome.reasons)
    noted = note_centralisation(state)
    if noted is not None:
        reasons.append(noted)
    chosen: Exercise | None
    new_dose: Dose | None
    if outcome.action is Action.PROGRESS:
        chosen, new_dose, change = progress_one_variable(state, ctx, reasons)
    elif outcome.action in _EASING:
        chosen, new_dose, change = _EASING[outcome.action](state, ctx, reasons)
    else:
        chosen, new_dose, change = exercise, state.dose, Change.MAINTAINED
    ctx.trace.append(
        TraceStep(
            # An Action is a StrEnum: the member is its value, without the enum's slow lookup.
            rule_name,
            exercise.id,
            outcome.action,
            ",".join(r.code for r in outcome.reasons),
        )
    )
    if chosen is None or new_dose is None:
        return _decision(exercise, None, Change.REMOVED, reasons, ctx, latest, slot), None

    # The phase may have stepped back below the level the person had reached.
    capped = _capped(chosen, slot, ctx)
    if capped is not None:
        reasons = [*_for_another_exercise(reasons), capped[1]]
        chosen, new_dose, change = capped[0], _dose_for(capped[0], ctx), Change.REGRESSED

    if exercise.ladder != slot.ladder:
        # A stand-in from another ladder: go back to the slot's own ladder when it is time.
        calm = outcome.action in (Action.HOLD, Action.PROGRESS) and not ctx.unsettled
        ready = outcome.action is Action.PROGRESS
        back = return_to_the_slot_ladder(slot, ctx, ready=ready) if calm else None
        if back is not None and back[0] is not chosen:
            home = back[0]
            reasons = _for_another_exercise(reasons)
            stand_in_blocked = unavailable(chosen, ctx)
            if stand_in_blocked is not None:
                reasons.append(stand_in_blocked)
            reasons.append(back[1])
            decision = _decision(
                home, _dose_for(home, ctx), Change.SUBSTITUTED, reasons, ctx, latest, slot
            )
            return decision, home

    # Nothing untried comes in while easing, or while symptoms are not settled.
    fitted, why = fit_to_person(
        chosen, ctx, slot, tried_only=outcome.action in _EASING or ctx.unsettled
    )
    if fitted is None:
        return _decision(exercise, None, Change.REMOVED, [*reasons, *why], ctx, latest, slot), None
    if fitted is not chosen:
        reasons = [*_for_another_exercise(reasons), *why]
        new_dose = _dose_for(fitted, ctx)
        change = Change.SUBSTITUTED
        chosen = fitted
    return _decision(chosen, new_dose, change, reasons, ctx, latest, slot), chosen


def decide_slot(slot: Slot, order: int, ctx: Context, th: Reads) -> Pick:
    """One slot's pick: a new exercise, or the rules' step for the one the person is on,
    unless it rests today between loading days."""
    catalog = ctx.catalog
    family = catalog.slot_family(slot.ladder, catalog.protocol_ladders[ctx.condition.kind])
    latest = ctx.history.latest_in_slot(slot.ladder, family, ctx.slot_ladders - {slot.ladder})
    next_due = None
    if latest is None or latest.result.exercise_id not in catalog.by_id:
        decision, exercise = _new_in_slot(slot, ctx)
    else:
        current = catalog.by_id[latest.result.exercise_id]
        due, next_due = rest_between_loading_days(current, latest.result.prescribed, ctx)
        if not due and current.id not in ctx.taken:
            # Resting between loading days: no rule runs, the exercise waits for its day.
            ctx.taken.add(current.id)
            resting = ExerciseDecision(
                exercise_id=current.id,
                name=current.name,
                section=current.section,
                change=Change.MAINTAINED,
                reasons=(),
                dose=latest.result.prescribed,
                previous_exercise_id=current.id,
                ladder=current.ladder,
                level=current.level,
                slot=slot.ladder,
            )
            return Pick(slot, order, resting, current, due=False, next_due=next_due)
        decision, exercise = _existing_in_slot(slot, latest, ctx, th)
    pick = Pick(slot=slot, order=order, decision=decision, exercise=exercise)
    if exercise is None or decision.dose is None:
        return pick
    if exercise.id in ctx.taken:
        # Its only option is already another slot's exercise: the slot sits out today. Name
        # the slot's own exercise, and keep the reasons that led here.
        # Named by the slot's own exercise, with only the reason that holds for it: the
        # judged exercise's reasons are about another exercise.
        own = catalog.at_level(slot.ladder, min(slot.start[ctx.profile.ability], slot.max_level))
        why = [r for r in [one_exercise_per_slot(taken=True)] if r is not None]
        pick.decision = _decision(own or exercise, None, Change.REMOVED, why, ctx, latest, slot)
        pick.exercise = None
        return pick
    ctx.taken.add(exercise.id)
    if (
        latest is not None
        and exercise.id == latest.result.exercise_id
        and decision.dose.per_week == latest.result.prescribed.per_week
    ):
        pick.next_due = next_due  # same exercise and frequency: the check above stands
    else:
        pick.due, pick.next_due = rest_between_loading_days(exercise, decision.dose, ctx)
    pick.seconds = round(decision.minutes * 60)
    return pick
