"""Selection: which exercise fills a slot for this person.

An exercise is available when no exclusion applies (``EXCLUSIONS``, in order: condition,
contraindication, stopped direction, equipment). A slot starts at the level for the
person's ability, capped by the phase; a directional slot is filled only by an exercise of
the person's direction; a stand-in is of the slot's own family; a stand-in goes back to the
slot's ladder when it is time.
"""

from __future__ import annotations

from datetime import date
from typing import cast

from app.domain.catalog import STAND_IN_FAMILIES, Catalog, Exercise, Slot, Thresholds
from app.domain.history import HistoryView
from app.domain.reasons import ReasonCode, reason
from app.domain.rules.base import Reads, Stage, rule
from app.domain.rules.context import Context
from app.domain.rules.progression import green_streak
from app.domain.rules.state import ExerciseState
from app.domain.signals import exercise_response
from app.domain.types import Category, ConditionKind, DirectionalPreference, PainResponse, Reason

__all__ = [
    "EXCLUSIONS",
    "cap_level_by_phase",
    "fit_to_person",
    "follow_directional_preference",
    "hold_stretches_longer_for_older_adults",
    "is_stand_in_family",
    "one_exercise_per_slot",
    "return_to_the_slot_ladder",
    "start_by_ability",
    "stopped_directions",
    "tried_without_trouble",
    "unavailable",
]


@rule(Stage.SELECTION, "Clinical rules §6 (each condition's avoid list)")
def exclude_for_condition(exercise: Exercise, ctx: Context) -> Reason | None:
    """An exercise rated "avoid" for the condition is never given."""
    kind = ctx.condition.kind
    if exercise.conditions[kind] != "avoid":
        return None
    return reason(
        ReasonCode.AVOID_FOR_CONDITION,
        exclude_for_condition,
        name=exercise.name,
        condition=kind.value,
        note=exercise.condition_notes.get(kind, "not advised for this condition."),
    )


@rule(Stage.SELECTION, "Catalog contraindications (each with its note and source)")
def exclude_contraindicated(exercise: Exercise, ctx: Context) -> Reason | None:
    """An exercise to avoid with one of the person's contraindications is never given."""
    for item, spec in exercise.contraindications.items():
        if spec.level == "avoid" and item in ctx.profile.contraindications:
            return reason(
                ReasonCode.CONTRAINDICATED,
                exclude_contraindicated,
                name=exercise.name,
                item=item.value.replace("_", " "),
                note=spec.note,
            )
    return None


@rule(Stage.SELECTION, "Hebert 2011 (a direction that peripheralises stops)")
def exclude_stopped_direction(exercise: Exercise, ctx: Context) -> Reason | None:
    """A spinal direction that spread symptoms stays out for ``stopped_direction_days``."""
    stopped_on = ctx.stopped_directions.get(exercise.spinal_direction)
    if stopped_on is None:
        return None
    th = Reads(ctx.catalog.thresholds)
    days = int(th.stopped_direction_days.value)
    return reason(
        ReasonCode.DIRECTION_STOPPED,
        exclude_stopped_direction,
        th.cited(),
        direction=exercise.spinal_direction.replace("_", " "),
        date=stopped_on.isoformat(),
        days=days,
    )


@rule(Stage.SELECTION, "The person's kit plus household items (catalog data)")
def exclude_missing_equipment(exercise: Exercise, ctx: Context) -> Reason | None:
    """An exercise that needs kit the person lacks is not given."""
    have = ctx.equipment
    if have.issuperset(exercise.equipment):
        return None
    missing = [e.value.replace("_", " ") for e in exercise.equipment if e not in have]
    return reason(
        ReasonCode.EQUIPMENT_MISSING,
        exclude_missing_equipment,
        name=exercise.name,
        equipment=", ".join(missing),
    )


EXCLUSIONS = (
    exclude_for_condition,
    exclude_contraindicated,
    exclude_stopped_direction,
    exclude_missing_equipment,
)


def unavailable(exercise: Exercise, ctx: Context) -> Reason | None:
    """Why this person cannot do this exercise (the first exclusion that applies), or None.

    The exclusions read only what a decision holds fixed (the person, the condition, the
    stopped directions), so each exercise is judged once per decision."""
    known = ctx.exclusions
    if exercise.id in known:
        return known[exercise.id]
    found = None
    for exclusion in EXCLUSIONS:
        found = exclusion(exercise, ctx)
        if found is not None:
            break
    known[exercise.id] = found
    return found


@rule(Stage.SELECTION, "Coppieters & Butler 2008 (nerve glides are for neural symptoms)")
def is_stand_in_family(candidate: Exercise, exercise: Exercise, condition: ConditionKind) -> bool:
    """A stand-in is of the exercise's own family (a stretch for a stretch, loading for
    loading) and does the same job (a row for a row, not an angel), and a nerve glide
    stands in only for sciatica."""
    if candidate.category is Category.NERVE_GLIDE and condition is not ConditionKind.SCIATICA:
        return False
    return not (
        STAND_IN_FAMILIES[candidate.category].isdisjoint(STAND_IN_FAMILIES[exercise.category])
        or candidate.purposes.isdisjoint(exercise.purposes)
    )


# The preferences a directional slot follows, as the spinal direction an exercise names.
_FOLLOWED = {
    DirectionalPreference.EXTENSION: "extension",
    DirectionalPreference.FLEXION: "flexion",
}


def _direction_of(slot: Slot, ctx: Context) -> str | None:
    """The spinal direction a directional slot must follow for this person, or None."""
    if not slot.when_directional or ctx.direction not in slot.when_directional:
        return None
    return _FOLLOWED.get(ctx.direction)


def tried_without_trouble(exercise: Exercise, ctx: Context, th: Reads) -> bool:
    """The person did this exercise in the window and it neither flared, spread nor was
    too hard: easing may fall back on it."""
    too_hard = th.effort_too_hard_min.value
    traced = cast(Thresholds, th)
    for appearance in ctx.history.appearances(exercise.id):
        result = appearance.result
        if result.performed is None or (result.effort is not None and result.effort >= too_hard):
            continue
        response = exercise_response(result, ctx.history.day_of(appearance.session), traced)
        if response in (PainResponse.GREEN, PainResponse.ACCEPTABLE):
            return True
    return False


@rule(Stage.SELECTION, "Long 2004, Spine 29:2593 (matched direction wins); clinical rules §6")
def follow_directional_preference(
    exercise: Exercise, slot: Slot, ctx: Context
) -> tuple[Exercise | None, Reason | None]:
    """A directional slot is filled by the gentlest permitted exercise of the person's
    direction on its ladder (easier levels first, then harder ones), with its cautions; when
    none is permitted the slot says so. Other slots pass ``exercise`` through."""
    direction = _direction_of(slot, ctx)
    if direction is None:
        return exercise, None
    steps = ctx.catalog.ladders[exercise.ladder]
    below = [e for e in reversed(steps) if e.level <= exercise.level]
    above = [e for e in steps if e.level > exercise.level]
    for candidate in (*below, *above):
        if (
            candidate.spinal_direction == direction
            and candidate.id not in ctx.taken
            and unavailable(candidate, ctx) is None
        ):
            return candidate, _preference_reason(candidate, ctx)
    why = reason(
        ReasonCode.NO_EXERCISE_IN_DIRECTION, follow_directional_preference, direction=direction
    )
    return None, why


def _preference_reason(exercise: Exercise, ctx: Context) -> Reason | None:
    if exercise.spinal_direction != ctx.direction.value:
        return None  # a reason never claims a direction the exercise does not have
    return ctx.direction_reason or reason(
        ReasonCode.DIRECTIONAL_PREFERENCE,
        follow_directional_preference,
        direction=ctx.direction.value,
    )


@rule(Stage.SELECTION, "Clinical rules §10 (ease before you swap; stand-ins of the family)")
def fit_to_person(
    exercise: Exercise,
    ctx: Context,
    slot: Slot,
    *,
    swap_only: bool = False,
    neutral_only: bool = False,
    tried_only: bool = False,
) -> tuple[Exercise | None, list[Reason]]:
    """The exercise if the person can do it, else an easier one of its ladder, else a
    stand-in of its family from a ladder no slot uses; ``None`` when nothing fits.

    ``swap_only`` skips the exercise and its ladder (it was not tolerated); ``neutral_only``
    accepts only neutral-spine stand-ins (symptoms spread with its direction); ``tried_only``
    accepts only stand-ins already done without trouble (easing: nothing untried in a flare).
    A directional slot keeps to the person's direction (``follow_directional_preference``).
    """
    if _direction_of(slot, ctx) is not None and not swap_only:
        chosen, note = follow_directional_preference(exercise, slot, ctx)
        if chosen is exercise:
            return exercise, []
        first = unavailable(exercise, ctx)
        if chosen is None:
            left_out = leave_out_what_the_protocol_leaves_out(exercise, slot, ctx)
            return None, [r for r in (first, left_out or note) if r is not None]
        return chosen, [] if first is None else [first]
    blocked = None if swap_only else unavailable(exercise, ctx)
    if not swap_only and blocked is None:
        return exercise, []
    why = [blocked] if blocked is not None else []
    catalog = ctx.catalog
    if not swap_only:
        for level in range(exercise.level - 1, 0, -1):
            lower = catalog.at_level(exercise.ladder, level)
            if lower is not None and lower.id not in ctx.taken and unavailable(lower, ctx) is None:
                return lower, why
    kind = ctx.condition.kind
    th = Reads(catalog.thresholds)  # what a tried-without-trouble check reads, for its reason
    for alt_id in exercise.alternatives:
        alt = catalog.by_id[alt_id]
        if (
            alt.id not in ctx.taken
            and alt.ladder not in ctx.slot_ladders
            and is_stand_in_family(alt, exercise, kind)
            and (not neutral_only or alt.spinal_direction == "neutral")
            and (not tried_only or tried_without_trouble(alt, ctx, th))
            and unavailable(alt, ctx) is None
        ):
            return alt, why
    if tried_only:
        return None, [*why, reason(ReasonCode.NO_TRIED_STAND_IN, fit_to_person, th.cited())]
    left_out = None if swap_only else leave_out_what_the_protocol_leaves_out(exercise, slot, ctx)
    return None, [*why, left_out or reason(ReasonCode.NO_SAFE_OPTION, fit_to_person)]


@rule(Stage.SELECTION, "The condition protocol (a slot it leaves out for a contraindication)")
def leave_out_what_the_protocol_leaves_out(
    exercise: Exercise, slot: Slot, ctx: Context
) -> Reason | None:
    """When nothing can fill a slot because the person has a contraindication the slot's
    exercise is avoided for, and the protocol leaves the slot out for it (lifting practice
    after spinal surgery), the protocol's own reason says why, not a bare "nothing fits".
    Nothing else that empties a slot (missing kit, an exercise not tolerated) borrows it."""
    for contraindication in sorted(ctx.profile.contraindications):  # one answer, every time
        why = slot.optional_for.get(contraindication)
        flag = exercise.contraindications.get(contraindication)
        if why is not None and flag is not None and flag.level == "avoid":
            return reason(
                ReasonCode.LEFT_OUT_BY_PROTOCOL,
                leave_out_what_the_protocol_leaves_out,
                why=why.rstrip("."),
            )
    return None


@rule(Stage.SELECTION, "ACSM 2009 (beginners start easy); clinical rules §7 (ladders)")
def start_by_ability(
    slot: Slot, ctx: Context, chosen: Exercise | None = None
) -> tuple[Exercise, Reason]:
    """A new slot starts at the level the phase gives the person's ability (or, when that
    one does not fit them, at the ``chosen`` level that does)."""
    target = chosen or ctx.catalog.at_level(
        slot.ladder, min(slot.start[ctx.profile.ability], slot.max_level)
    )
    assert target is not None  # the catalog validator guarantees every slot level exists
    return target, reason(
        ReasonCode.NEW_IN_PROGRAMME,
        start_by_ability,
        level=target.level,
        ladder=target.ladder.replace("-", " "),
    )


@rule(Stage.SELECTION, "Clinical rules §6 (phases load gradually)")
def cap_level_by_phase(exercise: Exercise, slot: Slot, ctx: Context) -> Reason | None:
    """No exercise of the slot's ladder above the phase's highest level."""
    if exercise.ladder != slot.ladder or exercise.level <= slot.max_level:
        return None
    return reason(
        ReasonCode.PHASE_CEILING, cap_level_by_phase, level=slot.max_level, phase=ctx.phase.value
    )


@rule(Stage.SELECTION, "Coppieters & Butler 2008 (sliders before tensioners)")
def sliders_before_tensioners(harder: Exercise, s: ExerciseState) -> Reason | None:
    """A tensioner is entered only after a green streak on its slider with no pain at all."""
    if not harder.symptom_free_to_enter:
        return None
    th = Reads(s.th.plain)
    needed = int(th.green_sessions_to_progress.value)
    counted, _ = green_streak(s, needed, cast(Thresholds, th))
    if len(counted) == needed and all(
        a.result.pain_during == 0 and not a.result.pain_after for a in counted
    ):
        return None
    return reason(ReasonCode.SLIDERS_NOT_SYMPTOM_FREE, sliders_before_tensioners, th.cited())


@rule(Stage.SELECTION, "Convention: a stand-in keeps the slot's place, not its own ladder")
def stand_ins_keep_their_level(exercise: Exercise, slot: Slot) -> Reason | None:
    """A swapped-in exercise stands in for its slot and does not climb its own ladder."""
    if exercise.ladder == slot.ladder:
        return None
    return reason(
        ReasonCode.STAND_IN_HOLDS_LEVEL,
        stand_ins_keep_their_level,
        slot=slot.ladder.replace("-", " "),
    )


@rule(Stage.SELECTION, "Garber 2011, ACSM (30-60 s holds for older adults)")
def hold_stretches_longer_for_older_adults(age: int, catalog: Catalog) -> Reason | None:
    """From the older-adult age, static stretches use the longer holds."""
    th = Reads(catalog.thresholds)
    if age < th.older_adult_age.value:
        return None
    low = int(th.older_stretch_hold_min_seconds.value)
    high = int(th.older_stretch_hold_max_seconds.value)
    return reason(
        ReasonCode.STRETCH_HOLD_FOR_AGE,
        hold_stretches_longer_for_older_adults,
        th.cited(),
        low=low,
        high=high,
        age=int(th.older_adult_age.value),
    )


@rule(Stage.SELECTION, "Garber 2011, ACSM (about 60 s of stretching per muscle group)")
def repeat_stretches_to_a_minute(catalog: Catalog) -> Reason:
    """A static stretch starts with enough repetitions of its hold to add up to about a
    minute (``app.domain.dosing``)."""
    th = Reads(catalog.thresholds)
    total = int(th.stretch_total_seconds.value)
    return reason(
        ReasonCode.STRETCH_A_MINUTE_IN_ALL, repeat_stretches_to_a_minute, th.cited(), total=total
    )


@rule(Stage.SELECTION, "Clinical rules §10 (ease, then return); convention for the timing")
def return_to_the_slot_ladder(
    slot: Slot, ctx: Context, *, ready: bool
) -> tuple[Exercise, Reason] | None:
    """The slot's own exercise to return to from a stand-in, or ``None`` to stay put.

    After a swap for kit or a contraindication, return as soon as the home exercise fits.
    After a flare or a too-hard dose, return once the stand-in has earned a step (``ready``),
    one level below where it flared. After spreading symptoms, never by itself: that waits
    for the clinician review the spreading raised. When the home ladder was last done
    before the decision window, how it went is summarised away: return only once the
    stand-in has earned a step, as after a flare.
    """
    catalog = ctx.catalog
    th = catalog.thresholds
    last_home = ctx.history.latest_in(catalog.ladder_ids[slot.ladder])
    if last_home is None:
        summary = ctx.history.summary
        if (
            not ready
            and summary is not None
            and not summary.exercises_done.isdisjoint(catalog.ladder_ids[slot.ladder])
        ):
            return None
        target = catalog.at_level(slot.ladder, min(slot.start[ctx.profile.ability], slot.max_level))
    else:
        target = catalog.by_id[last_home.result.exercise_id]
        result = last_home.result
        response = exercise_response(result, ctx.history.day_of(last_home.session), th)
        if response is PainResponse.PERIPHERALISING:
            return None
        too_hard = (
            result.effort is not None and result.effort >= th.effort_too_hard_min.value
        ) or (result.performed is not None and not result.performed.covers(result.prescribed))
        if response is PainResponse.FLARE or too_hard:
            if not ready:
                return None
            target = catalog.at_level(slot.ladder, max(1, target.level - 1))
    if target is None:
        return None
    target = catalog.at_level(slot.ladder, min(target.level, slot.max_level)) or target
    if target.id in ctx.taken or unavailable(target, ctx) is not None:
        return None
    return target, reason(ReasonCode.BACK_TO_LADDER, return_to_the_slot_ladder, name=target.name)


def stopped_directions(history: HistoryView, today: date) -> dict[str, date]:
    """Spinal directions that spread symptoms recently, with the latest day they did.

    An exercise reported as spreading stops its own direction; a session-wide report (or new
    numbness) stops every direction loaded that session, or, when it names no exercise, in
    the training before it. They stay out for
    ``stopped_direction_days``, long enough for the clinician review the spreading raised.
    """
    catalog = history.catalog
    window = int(catalog.thresholds.stopped_direction_days.value)
    stopped: dict[str, date] = {}
    for appearance in history.spreading:  # newest first
        if (today - appearance.session.date).days > window:
            break
        exercise = catalog.by_id.get(appearance.result.exercise_id)
        if exercise is not None and exercise.spinal_direction != "neutral":
            stopped.setdefault(exercise.spinal_direction, appearance.session.date)
    # A report that names no exercise stops what the training before it loaded.
    for report in history.spread_without_exercises:
        if (today - report.date).days > window:
            break
        before = [s for s in history.sessions if s.date <= report.date and s.exercises]
        for result in before[-1].exercises if before else ():
            exercise = catalog.by_id.get(result.exercise_id)
            if exercise is not None and exercise.spinal_direction != "neutral":
                current = stopped.get(exercise.spinal_direction)
                if current is None or current < report.date:
                    stopped[exercise.spinal_direction] = report.date
    return stopped


@rule(Stage.SELECTION, "Convention: one exercise fills one slot of a session")
def one_exercise_per_slot(taken: bool) -> Reason | None:
    """An exercise already filling another slot leaves this slot out today."""
    return reason(ReasonCode.NO_SAFE_OPTION, one_exercise_per_slot) if taken else None
