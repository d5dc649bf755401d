"""``next_session``: the whole decision, from triage to a laid-out, explained session.

Order of work (each step leaves a trace entry):
1. triage red flags → a referral and nothing else;
2. read the history's window (``app.domain.history``): recent sessions in full, older ones
   folded into a summary; then stage the programme (phase from onset, completed sessions
   and latest pain, replayed from the summary through the window);
3. for each slot of the phase: find the exercise the person is on, run the rules
   (``app.domain.rules.RULES``), apply the step, then check the result fits the person
   (equipment, contraindications, condition) and the phase ceiling;
4. drop what is not due today (recovery days), fit the rest to the minutes available and
   lay it out warm-up first;
5. schedule the next session and explain: avoid list, safety notes, education, review flag.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

from app.domain.catalog import Catalog, Exercise, Slot
from app.domain.dosing import (
    StepUp,
    bounds_for,
    clamp_dose,
    estimated_seconds,
    lower_one_variable,
    raise_one_variable,
    start_dose_for,
)
from app.domain.history import (
    Appearance,
    HistoryView,
    classify_response,
    split_history,
    summarise_history,
)
from app.domain.programme import (
    active_slots,
    avoid_list,
    education_for,
    effective_direction,
    no_meaningful_change,
    profile_safety_notes,
    programme_position,
    select_phase,
)
from app.domain.reasons import ReasonCode, reason
from app.domain.rules import (
    Action,
    ExerciseState,
    SessionSignals,
    check_volume_cap,
    decide,
    session_signals,
    symptom_free_streak,
)
from app.domain.safety import review_reasons, triage_red_flags
from app.domain.types import (
    Category,
    Change,
    ClinicianReview,
    Condition,
    ConditionKind,
    DirectionalPreference,
    Dose,
    DoseVariable,
    Equipment,
    ExerciseDecision,
    HistorySummary,
    MaintenancePlan,
    PainResponse,
    Phase,
    Profile,
    Reason,
    Recommendation,
    RecommendationStatus,
    Schedule,
    Section,
    SessionFocus,
    SessionRecord,
    Side,
    SymptomChange,
    TraceStep,
)

__all__ = ["next_session"]

_SECTION_ORDER = {section: index for index, section in enumerate(Section)}
_PROGRESS_CODE = {
    DoseVariable.REPS: ReasonCode.PROGRESS_REPS,
    DoseVariable.HOLD_SECONDS: ReasonCode.PROGRESS_HOLD,
    DoseVariable.DURATION_SECONDS: ReasonCode.PROGRESS_DURATION,
    DoseVariable.SETS: ReasonCode.PROGRESS_SETS,
    DoseVariable.LOAD_KG: ReasonCode.PROGRESS_LOAD,
    DoseVariable.PER_WEEK: ReasonCode.PROGRESS_FREQUENCY,
    DoseVariable.PER_DAY: ReasonCode.PROGRESS_FREQUENCY,
}
# Reasons that explain why an exercise could not be done (kept when its slot sits out).
_WHY_UNAVAILABLE = frozenset(
    {
        ReasonCode.EQUIPMENT_MISSING,
        ReasonCode.CONTRAINDICATED,
        ReasonCode.AVOID_FOR_CONDITION,
        ReasonCode.DIRECTION_STOPPED,
        ReasonCode.PERIPHERALISATION,
        ReasonCode.PAIN_FLARE,
    }
)
# Exercises that go with every session whatever else is due: they do not make a session.
_ACCOMPANYING = frozenset({Category.AEROBIC_WARM_UP, Category.HABIT})


@dataclass(slots=True)
class _Context:
    profile: Profile
    condition: Condition
    catalog: Catalog
    history: HistoryView
    signals: SessionSignals
    today: date
    phase: Phase
    direction: DirectionalPreference
    direction_reason: Reason | None
    slot_ladders: frozenset[str]
    equipment: frozenset[Equipment]  # the person's kit and the household items
    stretch_hold_reason: Reason | None  # what every static stretch adds (older adults)
    last_loading_day: date | None = None
    stopped_directions: dict[str, date] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    trace: list[TraceStep] = field(default_factory=list)


@dataclass(slots=True)
class _Pick:
    """One slot's outcome before the session is fitted to time."""

    slot: Slot
    order: int
    decision: ExerciseDecision
    exercise: Exercise | None
    due: bool = True
    next_due: date | None = None
    seconds: int = 0


# ---------------------------------------------------------------------------------------------
# Fitting an exercise to the person


def _unavailable(exercise: Exercise, ctx: _Context) -> Reason | None:
    """Why this person cannot do this exercise, or ``None``."""
    rule = "exclude_unsuitable_exercises"
    kind = ctx.condition.kind
    if exercise.conditions[kind] == "avoid":
        note = exercise.condition_notes.get(kind, "not advised for this condition.")
        return reason(
            ReasonCode.AVOID_FOR_CONDITION,
            rule,
            name=exercise.name,
            condition=kind.value,
            note=note,
        )
    for item, spec in exercise.contraindications.items():
        if spec.level == "avoid" and item in ctx.profile.contraindications:
            return reason(
                ReasonCode.CONTRAINDICATED,
                rule,
                name=exercise.name,
                item=item.value.replace("_", " "),
                note=spec.note,
            )
    stopped_on = ctx.stopped_directions.get(exercise.spinal_direction)
    if stopped_on is not None:
        return reason(
            ReasonCode.DIRECTION_STOPPED,
            rule,
            ("stopped_direction_days",),
            direction=exercise.spinal_direction.replace("_", " "),
            date=stopped_on.isoformat(),
            days=int(ctx.catalog.thresholds.stopped_direction_days.value),
        )
    have = ctx.equipment
    if not have.issuperset(exercise.equipment):
        missing = [e.value.replace("_", " ") for e in exercise.equipment if e not in have]
        return reason(
            ReasonCode.EQUIPMENT_MISSING, rule, name=exercise.name, equipment=", ".join(missing)
        )
    return None


def _fit_to_person(
    exercise: Exercise, ctx: _Context, *, swap_only: bool = False, neutral_only: bool = False
) -> tuple[Exercise | None, list[Reason]]:
    """The exercise if the person can do it, else an easier one of its ladder, else an
    alternative from another ladder that no slot uses; ``None`` when nothing fits.

    ``swap_only`` skips the exercise and its ladder (it was not tolerated);
    ``neutral_only`` accepts only neutral-spine alternatives (symptoms spread with its
    direction, and the opposite direction would be a guess nobody has tested)."""
    blocked = None if swap_only else _unavailable(exercise, ctx)
    if not swap_only and blocked is None:
        return exercise, []
    why = [blocked] if blocked is not None else []
    if not swap_only:
        for level in range(exercise.level - 1, 0, -1):
            lower = ctx.catalog.at_level(exercise.ladder, level)
            if lower is not None and lower.id not in ctx.taken and _unavailable(lower, ctx) is None:
                return lower, why
    for alt_id in exercise.alternatives:
        alt = ctx.catalog.by_id[alt_id]
        if (
            alt.id not in ctx.taken
            and alt.ladder not in ctx.slot_ladders
            and (not neutral_only or alt.spinal_direction == "neutral")
            and _unavailable(alt, ctx) is None
        ):
            return alt, why
    return None, [*why, reason(ReasonCode.NO_SAFE_OPTION, "exclude_unsuitable_exercises")]


def _cautions(exercise: Exercise, ctx: _Context) -> tuple[str, ...]:
    notes: list[str] = []
    kind = ctx.condition.kind
    if exercise.conditions[kind] == "caution" and kind in exercise.condition_notes:
        notes.append(exercise.condition_notes[kind])
    if ctx.profile.contraindications:
        for item, spec in exercise.contraindications.items():
            if spec.level == "caution" and item in ctx.profile.contraindications:
                notes.append(spec.note)
    return tuple(notes)


def _dose_for(exercise: Exercise, ctx: _Context) -> Dose:
    return start_dose_for(exercise, ctx.profile.age, ctx.catalog.thresholds)


# ---------------------------------------------------------------------------------------------
# One slot


def _side_for(exercise: Exercise, ctx: _Context) -> Side:
    # Nerve glides work the affected leg; everything else is both sides or not sided.
    if exercise.category is Category.NERVE_GLIDE and ctx.condition.side in (Side.LEFT, Side.RIGHT):
        return ctx.condition.side
    return Side.BOTH if exercise.dose.per_side else Side.NONE


def _stretch_hold_reason(profile: Profile, catalog: Catalog) -> Reason | None:
    th = catalog.thresholds
    if profile.age < th.older_adult_age.value:
        return None
    return reason(
        ReasonCode.STRETCH_HOLD_FOR_AGE,
        "hold_stretches_longer_for_older_adults",
        ("older_adult_age", "older_stretch_hold_min_seconds", "older_stretch_hold_max_seconds"),
        low=int(th.older_stretch_hold_min_seconds.value),
        high=int(th.older_stretch_hold_max_seconds.value),
        age=int(th.older_adult_age.value),
    )


def _decision(
    exercise: Exercise,
    dose: Dose | None,
    change: Change,
    reasons: list[Reason],
    ctx: _Context,
    previous: Appearance | None = None,
    slot: Slot | None = None,
) -> ExerciseDecision:
    given = change is not Change.REMOVED
    if (
        given
        and ctx.stretch_hold_reason is not None
        and exercise.category is Category.STATIC_STRETCH
    ):
        reasons = [*reasons, ctx.stretch_hold_reason]
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


def _minutes(exercise: Exercise, dose: Dose | None, ctx: _Context) -> float:
    # Habits happen through the day, not in the session's time.
    if dose is None or exercise.category is Category.HABIT:
        return 0.0
    return _bout_minutes(
        dose, exercise.dose.tempo_seconds, ctx.catalog.thresholds.set_change_seconds.value
    )


@lru_cache(maxsize=4096)
def _bout_minutes(dose: Dose, tempo_seconds: float, set_change_seconds: float) -> float:
    # Memoised: the same few doses come up in decision after decision.
    return round(estimated_seconds(dose, tempo_seconds, set_change_seconds) / 60, 1)


def _new_in_slot(slot: Slot, ctx: _Context) -> tuple[ExerciseDecision, Exercise | None]:
    level = min(slot.start[ctx.profile.ability], slot.max_level)
    target = ctx.catalog.at_level(slot.ladder, level)
    assert target is not None  # the catalog validator guarantees every slot level exists
    chosen, why = _fit_to_person(target, ctx)
    if chosen is None:
        return _decision(target, None, Change.REMOVED, why, ctx, slot=slot), None
    reasons = [
        reason(
            ReasonCode.NEW_IN_PROGRAMME,
            "start_by_ability",
            level=chosen.level,
            ladder=chosen.ladder.replace("-", " "),
        ),
        *why,
    ]
    ctx.trace.append(_started(chosen.id, chosen.level))
    if slot.when_directional:
        reasons.append(
            ctx.direction_reason
            or reason(
                ReasonCode.DIRECTIONAL_PREFERENCE,
                "follow_directional_preference",
                direction=ctx.direction.value,
            )
        )
    return _decision(chosen, _dose_for(chosen, ctx), Change.NEW, reasons, ctx, slot=slot), chosen


@lru_cache(maxsize=1024)
def _started(exercise_id: str, level: int) -> TraceStep:
    """The trace of a new exercise; immutable and the same in every decision, so memoised."""
    return TraceStep("start_by_ability", exercise_id, "new", f"level {level}")


def _step_down_level(exercise: Exercise, ctx: _Context) -> Exercise | None:
    lower = ctx.catalog.at_level(exercise.ladder, exercise.level - 1)
    return lower if lower is not None and lower.id not in ctx.taken else None


def _apply(
    state: ExerciseState, action: Action, reasons: list[Reason], ctx: _Context
) -> tuple[Exercise | None, Dose | None, Change]:
    """Carry out a rule's action: the exercise and dose it leads to, and how to label it."""
    exercise, dose, bounds, th = state.exercise, state.dose, state.bounds, ctx.catalog.thresholds
    if action is Action.PROGRESS:
        # Loading exercises take steps no larger than the weekly volume cap allows.
        cap = th.volume_growth_cap_pct.value if exercise.hard else None
        step = raise_one_variable(dose, bounds, th, skip_variant=False, max_step_pct=cap)
        if step is DoseVariable.VARIANT:
            harder = _harder_variant(state, ctx, reasons)
            if harder is not None:
                reasons.append(
                    reason(ReasonCode.PROGRESS_VARIANT, "progress_one_variable", name=harder.name)
                )
                return harder, _dose_for(harder, ctx), Change.PROGRESSED
            step = raise_one_variable(dose, bounds, th, skip_variant=True, max_step_pct=cap)
        if isinstance(step, StepUp):
            capped = check_volume_cap(state, step.dose)
            if capped is not None:
                reasons.append(capped)
                return exercise, dose, Change.MAINTAINED
            reasons.append(_progress_reason(step))
            return exercise, step.dose, Change.PROGRESSED
        reasons.append(reason(ReasonCode.AT_CEILING, "progress_one_variable"))
        return exercise, dose, Change.MAINTAINED
    if action is Action.LOWER_DOSE:
        down = lower_one_variable(dose, bounds)
        if down is not None:
            return exercise, down.dose, Change.REGRESSED
        lower = _step_down_level(exercise, ctx)
        if lower is not None:
            return lower, _dose_for(lower, ctx), Change.REGRESSED
        # Not tolerated even at its easiest: never repeat it unchanged, swap it or drop it.
        swap, why = _fit_to_person(exercise, ctx, swap_only=True)
        reasons.extend(why)
        if swap is None:
            return None, None, Change.REMOVED
        return swap, _dose_for(swap, ctx), Change.SUBSTITUTED
    if action is Action.STEP_BACK_LEVEL:
        lower = _step_down_level(exercise, ctx)
        if lower is not None:
            return lower, _dose_for(lower, ctx), Change.REGRESSED
        base = _dose_for(exercise, ctx)
        return exercise, base, Change.REGRESSED if base != dose else Change.MAINTAINED
    if action is Action.STOP_DIRECTION:
        # The movement stops: step down to a spine-neutral level of the same ladder (a gentler
        # nerve slider), else swap for a neutral exercise, else drop it.
        for level in range(exercise.level - 1, 0, -1):
            lower = ctx.catalog.at_level(exercise.ladder, level)
            if (
                lower is not None
                and lower.spinal_direction == "neutral"
                and lower.id not in ctx.taken
                and _unavailable(lower, ctx) is None
            ):
                return lower, _dose_for(lower, ctx), Change.REGRESSED
        swap, why = _fit_to_person(exercise, ctx, swap_only=True, neutral_only=True)
        reasons.extend(why)
        if swap is None:
            return None, None, Change.REMOVED
        return swap, _dose_for(swap, ctx), Change.SUBSTITUTED
    return exercise, dose, Change.MAINTAINED


def _harder_variant(state: ExerciseState, ctx: _Context, reasons: list[Reason]) -> Exercise | None:
    """The next level up if the person may move to it; otherwise say why not and ``None``.

    A swapped-in exercise stands in for its slot and does not climb its own ladder.
    """
    exercise = state.exercise
    harder = ctx.catalog.at_level(exercise.ladder, exercise.level + 1)
    if harder is None:
        return None
    if exercise.ladder != state.slot.ladder:
        reasons.append(
            reason(
                ReasonCode.STAND_IN_HOLDS_LEVEL,
                "stand_ins_keep_their_level",
                slot=state.slot.ladder.replace("-", " "),
            )
        )
        return None
    if harder.level > state.slot.max_level:
        reasons.append(
            reason(
                ReasonCode.PHASE_CEILING,
                "cap_level_by_phase",
                level=exercise.level,
                phase=ctx.phase.value,
            )
        )
        return None
    if harder.symptom_free_to_enter and not symptom_free_streak(state):
        reasons.append(reason(ReasonCode.SLIDERS_NOT_SYMPTOM_FREE, "sliders_before_tensioners"))
        return None
    blocked = _unavailable(harder, ctx)
    if blocked is not None:
        reasons.append(blocked)
        return None
    return harder


def _progress_reason(step: StepUp) -> Reason:
    code = _PROGRESS_CODE[step.variable]
    values: dict[str, object] = {"before": _num(step.before), "after": _num(step.after)}
    if step.variable is DoseVariable.SETS:
        values["reps"] = step.dose.reps if step.dose.reps is not None else "-"
    if code is ReasonCode.PROGRESS_FREQUENCY:
        values["unit"] = "days a week" if step.variable is DoseVariable.PER_WEEK else "times a day"
    return reason(
        code,
        "progress_one_variable",
        ("volume_growth_cap_pct",)
        if step.variable is not DoseVariable.LOAD_KG
        else ("load_step_max_pct", "load_step_min_kg"),
        **values,
    )


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _existing_in_slot(
    slot: Slot, latest: Appearance, ctx: _Context
) -> tuple[ExerciseDecision, Exercise | None]:
    catalog, th = ctx.catalog, ctx.catalog.thresholds
    exercise = catalog.by_id[latest.result.exercise_id]
    bounds = bounds_for(exercise, ctx.profile.age, th)
    dose = clamp_dose(latest.result.prescribed, bounds)
    state = ExerciseState(
        exercise=exercise,
        dose=dose,
        bounds=bounds,
        appearances=ctx.history.appearances(exercise.id),
        latest=latest,
        th=th,
        slot=slot,
        condition=ctx.condition,
        history=ctx.history,
        signals=ctx.signals,
        today=ctx.today,
    )
    outcome, rule_name = decide(state)
    reasons = list(outcome.reasons)
    if latest.result.symptom_change is SymptomChange.CENTRALISING:
        reasons.append(reason(ReasonCode.CENTRALISING, "note_centralisation"))
    chosen, new_dose, change = _apply(state, outcome.action, reasons, ctx)
    ctx.trace.append(
        TraceStep(
            rule_name, exercise.id, outcome.action.value, ",".join(r.code for r in outcome.reasons)
        )
    )
    if chosen is None or new_dose is None:
        return _decision(exercise, None, Change.REMOVED, reasons, ctx, latest, slot), None

    # The phase may have stepped back below the level the person had reached.
    if chosen.ladder == slot.ladder and chosen.level > slot.max_level:
        capped = catalog.at_level(slot.ladder, slot.max_level)
        assert capped is not None
        reasons = [r for r in reasons if not r.code.startswith("progress_")]
        reasons.append(
            reason(
                ReasonCode.PHASE_CEILING,
                "cap_level_by_phase",
                level=slot.max_level,
                phase=ctx.phase.value,
            )
        )
        chosen, new_dose, change = capped, _dose_for(capped, ctx), Change.REGRESSED

    if exercise.ladder != slot.ladder:
        # A stand-in from another ladder: go back to the slot's own ladder when it is time.
        calm = outcome.action in (Action.HOLD, Action.PROGRESS) and not (
            ctx.signals.flared or ctx.signals.alert_in_last
        )
        home = _home_for(slot, ctx, ready=outcome.action is Action.PROGRESS) if calm else None
        if home is not None and home is not chosen:
            reasons = [r for r in reasons if not r.code.startswith("progress_")]
            stand_in_blocked = _unavailable(chosen, ctx)
            if stand_in_blocked is not None:
                reasons.append(stand_in_blocked)
            reasons.append(
                reason(ReasonCode.BACK_TO_LADDER, "return_to_the_slot_ladder", name=home.name)
            )
            return (
                _decision(
                    home, _dose_for(home, ctx), Change.SUBSTITUTED, reasons, ctx, latest, slot
                ),
                home,
            )

    fitted, why = _fit_to_person(chosen, ctx)
    if fitted is None:
        return _decision(exercise, None, Change.REMOVED, [*reasons, *why], ctx, latest, slot), None
    if fitted is not chosen:
        reasons = [r for r in reasons if not r.code.startswith("progress_")]
        reasons.extend(why)
        new_dose = _dose_for(fitted, ctx)
        change = Change.SUBSTITUTED
        chosen = fitted
    return _decision(chosen, new_dose, change, reasons, ctx, latest, slot), chosen


def _home_for(slot: Slot, ctx: _Context, *, ready: bool) -> Exercise | None:
    """The slot's own exercise to return to from a stand-in, or ``None`` to stay put.

    After a swap for kit or a contraindication, return as soon as the home exercise fits.
    After a flare or a too-hard dose, return once the stand-in has earned a step (``ready``),
    one level below where it flared. After spreading symptoms, never by itself: that waits
    for the clinician review the spreading raised. When the home ladder was last done
    before the decision window, how it went is summarised away: return only once the
    stand-in has earned a step, as after a flare.
    """
    catalog = ctx.catalog
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
        response = classify_response(
            result, last_home.session, catalog.thresholds, ctx.condition.baseline_pain
        )
        if response is PainResponse.PERIPHERALISING:
            return None
        too_hard = (
            result.effort is not None
            and result.effort >= catalog.thresholds.effort_too_hard_min.value
        ) or (result.performed is not None and not result.performed.covers(result.prescribed))
        if response is PainResponse.FLARE or too_hard:
            if not ready:
                return None
            target = catalog.at_level(slot.ladder, max(1, target.level - 1))
    if target is None:
        return None
    target = catalog.at_level(slot.ladder, min(target.level, slot.max_level)) or target
    if target.id in ctx.taken or _unavailable(target, ctx) is not None:
        return None
    return target


def _due(exercise: Exercise, dose: Dose, ctx: _Context) -> tuple[bool, date]:
    """Whether the exercise is due today, and when it is next due if done today.

    Each exercise rests for 7 // days-a-week days. Loading exercises rest at least
    ``hard_session_min_gap_days``; for overuse no loading falls on the day after any
    loading day (``overuse_hard_session_min_gap_days``), whichever exercise it was.
    """
    th = ctx.catalog.thresholds
    interval = max(1, 7 // max(dose.per_week, 1))
    overuse = ctx.condition.kind is ConditionKind.OVERUSE
    if exercise.hard:
        gap = (
            th.overuse_hard_session_min_gap_days.value
            if overuse
            else th.hard_session_min_gap_days.value
        )
        interval = max(interval, int(gap))
        day = ctx.last_loading_day
        if overuse and day is not None and (ctx.today - day).days < interval:
            return False, day + timedelta(days=interval)
    last_done: date | None = None
    for appearance in ctx.history.appearances(exercise.id):
        if appearance.session.completed and appearance.result.performed is not None:
            last_done = appearance.session.date
            break
    if last_done is not None and (ctx.today - last_done).days < interval:
        return False, last_done + timedelta(days=interval)
    return True, ctx.today + timedelta(days=interval)


def _stopped_directions(history: HistoryView, catalog: Catalog, today: date) -> dict[str, date]:
    """Spinal directions that spread symptoms recently, with the latest day they did.

    An exercise reported as spreading stops its own direction; a session-wide report (or new
    numbness) stops every direction loaded that session. They stay out for
    ``stopped_direction_days``, long enough for the clinician review the spreading raised.
    """
    window = int(catalog.thresholds.stopped_direction_days.value)
    stopped: dict[str, date] = {}
    for appearance in history.spreading:  # newest first
        if (today - appearance.session.date).days > window:
            break
        exercise = catalog.by_id.get(appearance.result.exercise_id)
        if exercise is not None and exercise.spinal_direction != "neutral":
            stopped.setdefault(exercise.spinal_direction, appearance.session.date)
    return stopped


def _last_loading_day(history: HistoryView, catalog: Catalog) -> date | None:
    for session in reversed(history.sessions):
        if session.completed and any(
            r.performed is not None
            and r.exercise_id in catalog.by_id
            and catalog.by_id[r.exercise_id].hard
            for r in session.exercises
        ):
            return session.date
    return None


def _decide_slot(slot: Slot, order: int, ctx: _Context) -> _Pick:
    catalog = ctx.catalog
    family = catalog.slot_family(slot.ladder, catalog.protocol_ladders[ctx.condition.kind])
    latest = ctx.history.latest_in_slot(slot.ladder, family, ctx.slot_ladders - {slot.ladder})
    next_due: date | None = None
    if latest is None or latest.result.exercise_id not in catalog.by_id:
        decision, exercise = _new_in_slot(slot, ctx)
    else:
        current = catalog.by_id[latest.result.exercise_id]
        due, next_due = _due(current, latest.result.prescribed, ctx)
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
            return _Pick(slot, order, resting, current, due=False, next_due=next_due)
        decision, exercise = _existing_in_slot(slot, latest, ctx)
    pick = _Pick(slot=slot, order=order, decision=decision, exercise=exercise)
    if exercise is None or decision.dose is None:
        return pick
    if exercise.id in ctx.taken:
        # Its only option is already another slot's exercise: the slot sits out today. Name
        # the slot's own exercise, and keep the reasons that led here.
        own = catalog.at_level(slot.ladder, min(slot.start[ctx.profile.ability], slot.max_level))
        kept = [r for r in decision.reasons if r.code in _WHY_UNAVAILABLE]
        pick.decision = _decision(
            own or exercise,
            None,
            Change.REMOVED,
            [*kept, reason(ReasonCode.NO_SAFE_OPTION, "one_exercise_per_slot")],
            ctx,
            latest,
            slot,
        )
        pick.exercise = None
        return pick
    ctx.taken.add(exercise.id)
    if (
        latest is not None
        and exercise.id == latest.result.exercise_id
        and (decision.dose.per_week == latest.result.prescribed.per_week)
    ):
        pick.next_due = next_due  # same exercise and frequency: the check above stands
    else:
        pick.due, pick.next_due = _due(exercise, decision.dose, ctx)
    pick.seconds = round(decision.minutes * 60)
    return pick


# ---------------------------------------------------------------------------------------------
# The session


_by_priority = operator.attrgetter("slot.priority", "order")


def _fit_to_time(picks: list[_Pick], minutes: int) -> tuple[list[_Pick], list[_Pick]]:
    """Keep picks by priority (then programme order) while they fit the minutes available.

    The warm-up and the daily habits always stay, so their time is reserved first.
    """
    budget = minutes * 60
    kept: list[_Pick] = []
    dropped: list[_Pick] = []
    # By programme order: comparing picks themselves would compare their catalog models.
    essential = {
        p.order for p in picks if p.exercise is not None and p.exercise.category in _ACCOMPANYING
    }
    used = sum(p.seconds for p in picks if p.order in essential)
    for pick in sorted(picks, key=_by_priority):
        if pick.order in essential:
            kept.append(pick)
        elif used + pick.seconds <= budget:
            kept.append(pick)
            used += pick.seconds
        else:
            dropped.append(pick)
    return kept, dropped


def _schedule(picks: list[_Pick], today: date, trained_today: bool) -> Schedule:
    dates: list[date] = []
    hard_dates: list[date] = []
    for pick in picks:
        if pick.exercise is None or pick.next_due is None:
            continue
        if pick.exercise.category in _ACCOMPANYING:
            continue
        dates.append(pick.next_due)
        if pick.exercise.hard:
            hard_dates.append(pick.next_due)
    earliest = today + timedelta(days=1)
    next_date = max(min(dates), earliest) if dates else earliest
    if not trained_today and dates and min(dates) <= today:
        next_date = earliest
    next_hard = max(min(hard_dates), earliest) if hard_dates else None
    focus = (
        SessionFocus.FULL
        if next_hard is not None and next_hard <= next_date
        else (SessionFocus.RECOVERY)
    )
    rest_days = 0 if next_hard is None else max(0, (next_hard - today).days - 1)
    return Schedule(next_date, focus, rest_days)


def _summary(
    status: RecommendationStatus, decisions: tuple[ExerciseDecision, ...], phase: Phase | None
) -> str:
    if status is RecommendationStatus.REFER:
        return "Referral advised: red flags found, no exercise given."
    if status is RecommendationStatus.REST:
        return "Rest day: no session today."
    counts: dict[Change, int] = {}
    for d in decisions:
        counts[d.change] = counts.get(d.change, 0) + 1
    # Sorted by name (a StrEnum sorts as its value).
    parts = ", ".join(f"{n} {c.value}" for c, n in sorted(counts.items()))
    return f"{phase.value.capitalize() if phase else ''} phase: {parts}."


def _read_history(
    history: tuple[SessionRecord, ...],
    summary: HistorySummary | None,
    condition: Condition,
    catalog: Catalog,
    today: date,
) -> tuple[HistoryView, TraceStep]:
    """The decision window indexed, with everything before it folded into the summary."""
    older, window = split_history(history, today, catalog)
    summary = summarise_history(summary, older, condition, catalog)
    earlier = 0 if summary is None else summary.sessions
    # The window's first session, not its first day: the same whether the history came
    # whole or already split, so the trace (and the recommendation) never tells them apart.
    detail = (
        f"{_count(len(window), 'session')} from {window[0].date.isoformat()}"
        if window
        else "no sessions in the window"
    )
    step = TraceStep(
        "read_history_window",
        "history",
        "window",
        f"{detail}; {_count(earlier, 'earlier session')} summarised",
    )
    return HistoryView(window, catalog, summary, ordered=True), step


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def next_session(
    profile: Profile,
    condition: Condition,
    history: tuple[SessionRecord, ...],
    catalog: Catalog,
    today: date,
    summary: HistorySummary | None = None,
) -> Recommendation:
    """Decide the next exercise session for this person. Pure: same inputs, same output.

    ``history`` may be every session, or only the recent ones with ``summary`` folding
    everything before them (``summarise_history``); either way the decision reads the same
    window and the same summary, so the answer is the same. Sessions dated on or before
    ``summary.through`` are refused (``ValueError``): they were folded already.
    """
    if summary is not None:
        folded = [s.date for s in history if s.date <= summary.through]
        if folded:
            raise ValueError(
                f"a session dated {min(folded).isoformat()} is already folded into the "
                f"summary through {summary.through.isoformat()}"
            )
    version = catalog.ruleset_version
    protocol = catalog.protocol_for[condition.kind]
    avoid = avoid_list(protocol, profile, catalog)

    referral, trace = triage_red_flags(profile, condition, catalog)
    if referral is not None:
        return Recommendation(
            status=RecommendationStatus.REFER,
            condition=condition.kind,
            today=today,
            ruleset_version=version,
            referral=referral,
            status_reasons=referral.reasons,
            avoid=avoid,
            safety_notes=(referral.message,),
            clinician_review=ClinicianReview(True, referral.reasons),
            trace=tuple(trace),
            summary=_summary(RecommendationStatus.REFER, (), None),
        )

    view, read = _read_history(history, summary, condition, catalog, today)
    trace.append(read)
    th = catalog.thresholds
    direction, direction_reason = effective_direction(profile, condition, catalog)
    signals = session_signals(view, th, condition.baseline_pain, today)
    phase_index, phase_step = select_phase(
        protocol,
        condition,
        view,
        today,
        hold=signals.weekly_pain_rise is not None,
    )
    trace.append(phase_step)
    phase = protocol.phases[phase_index]
    slots = active_slots(phase, direction)
    ctx = _Context(
        profile=profile,
        condition=condition,
        catalog=catalog,
        history=view,
        signals=signals,
        today=today,
        phase=phase.id,
        direction=direction,
        direction_reason=direction_reason,
        slot_ladders=frozenset(s.ladder for s in slots),
        equipment=profile.equipment | catalog.household,
        stretch_hold_reason=_stretch_hold_reason(profile, catalog),
        last_loading_day=_last_loading_day(view, catalog),
        stopped_directions=_stopped_directions(view, catalog, today),
        trace=trace,
    )
    trace.append(
        TraceStep(
            "follow_directional_preference",
            condition.kind.value,
            direction.value,
            "" if direction_reason is None else direction_reason.code,
        )
    )

    picks = [_decide_slot(slot, order, ctx) for order, slot in enumerate(slots)]
    live = [p for p in picks if p.exercise is not None]
    unavailable = [p.decision for p in picks if p.exercise is None]
    due = [p for p in live if p.due]
    for pick in live:
        if not pick.due:
            trace.append(
                TraceStep(
                    "rest_between_loading_days",
                    pick.decision.exercise_id,
                    "not_due",
                    f"next due {pick.next_due}",
                )
            )
    trained_today = view.last_completed is not None and view.last_completed.date == today
    kept, dropped = _fit_to_time(due, profile.minutes_available)

    # Exercises from the last prescription that no slot accounts for have left the programme.
    accounted = {p.decision.previous_exercise_id for p in picks} | {
        p.decision.exercise_id for p in picks
    }
    left = [
        _decision(
            catalog.by_id[i],
            None,
            Change.REMOVED,
            [reason(ReasonCode.NOT_IN_PHASE, "build_session_from_phase", phase=phase.id.value)],
            ctx,
        )
        for i in dict.fromkeys(view.ids_in(view.last))
        if i not in accounted and i in catalog.by_id
    ]
    timed_out = [
        _decision(
            catalog.by_id[p.decision.exercise_id],
            None,
            Change.REMOVED,
            [
                reason(
                    ReasonCode.LEFT_OUT_FOR_TIME,
                    "fit_to_minutes_available",
                    minutes=profile.minutes_available,
                )
            ],
            ctx,
            slot=p.slot,
        )
        for p in dropped
    ]
    removed = tuple(unavailable + left + timed_out)

    position = programme_position(protocol, phase_index, view, today)
    review = review_reasons(profile, condition, view.last_day(), catalog, today)
    stalled = no_meaningful_change(condition, view, position, catalog)
    if stalled is not None:
        review.append(stalled)
    schedule = _schedule(live, today, trained_today)
    safety_notes = (*protocol.safety_notes, *profile_safety_notes(profile, catalog))
    education = education_for(protocol, phase.id)
    clinician_review = ClinicianReview(bool(review), tuple(review))

    substantive = [
        p for p in kept if p.exercise is not None and p.exercise.category not in _ACCOMPANYING
    ]
    if trained_today or not substantive:
        code = ReasonCode.ALREADY_TRAINED_TODAY if trained_today else ReasonCode.NOTHING_DUE_TODAY
        why = reason(
            code,
            "schedule_rest_days",
            ("hard_session_min_gap_days", "overuse_hard_session_min_gap_days"),
            date=schedule.next_session_date,
        )
        trace.append(TraceStep("schedule_rest_days", "session", "rest", why.code))
        return Recommendation(
            status=RecommendationStatus.REST,
            condition=condition.kind,
            today=today,
            ruleset_version=version,
            status_reasons=(why,),
            avoid=avoid,
            safety_notes=safety_notes,
            clinician_review=clinician_review,
            education=education,
            programme=position,
            schedule=schedule,
            trace=tuple(trace),
            summary=why.message,
        )

    kept.sort(key=lambda p: (_SECTION_ORDER[p.exercise.section] if p.exercise else 99, p.order))
    decisions = tuple(p.decision for p in kept)
    focus = (
        SessionFocus.FULL
        if any(p.exercise and p.exercise.hard for p in kept)
        else (SessionFocus.RECOVERY)
    )
    maintenance = None
    if phase.id is Phase.MAINTAIN:
        maintenance = MaintenancePlan(
            sessions_per_week=protocol.maintenance_sessions_per_week,
            exercise_ids=tuple(
                d.exercise_id
                for d in decisions
                if d.section not in (Section.WARM_UP, Section.HABITS)
            ),
            advice=(phase.goal, *(e.text for e in education if e.topic == "pacing")),
        )
    trace.append(
        TraceStep(
            "lay_out_session",
            "session",
            focus.value,
            f"{len(decisions)} exercises, {len(removed)} removed",
        )
    )
    return Recommendation(
        status=RecommendationStatus.OK,
        condition=condition.kind,
        today=today,
        ruleset_version=version,
        focus=focus,
        exercises=decisions,
        removed=removed,
        total_minutes=round(sum(d.minutes for d in decisions), 1),
        avoid=avoid,
        safety_notes=safety_notes,
        clinician_review=clinician_review,
        education=education,
        programme=position,
        schedule=schedule,
        maintenance_plan=maintenance,
        trace=tuple(trace),
        summary=_summary(RecommendationStatus.OK, decisions, phase.id),
    )
