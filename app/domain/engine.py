"""``next_session``: the whole decision, as a short pipeline of named stages.

1. triage: red flags → a referral and nothing else (``rules.triage``);
2. read history: the window in full, older sessions folded into a summary, grouped into
   training days whose signals are computed once (``history``, ``signals``);
3. stage the programme: the phase replayed day by day, held by today's signals, and the
   maintain phase only for the capable (``rules.programme``);
4. decide slots: for each slot, the rules in ``rules.progression.RULES``, the step or the
   easing they lead to, and the fit to the person and the phase (``slots``);
5. lay out: what is due today, what fits the minutes, in session order
   (``rules.scheduling``);
6. explain: review checks, status reasons, avoid list, safety notes, education, schedule.

Every stage's decisions are rules listed in ``app.domain.rulebook.RULEBOOK``.
"""

from __future__ import annotations

from datetime import date

from app.domain.catalog import Catalog, ConditionProtocol
from app.domain.history import HistoryView, split_history, summarise_history
from app.domain.rules.base import Reads
from app.domain.rules.context import Context, Recent, read_recent
from app.domain.rules.programme import (
    active_slots,
    avoid_list,
    build_session_from_phase,
    education_for,
    effective_direction,
    episode_stage,
    profile_safety_notes,
    programme_position,
    read_history_window,
    require_capability_to_maintain,
    select_phase,
)
from app.domain.rules.review import ReviewFacts, review_reasons, review_repeated_flares
from app.domain.rules.scheduling import (
    ACCOMPANYING,
    Pick,
    fit_to_minutes_available,
    last_loading_day,
    lay_out_session,
    schedule_next_session,
    schedule_rest_days,
)
from app.domain.rules.selection import (
    hold_stretches_longer_for_older_adults,
    repeat_stretches_to_a_minute,
    stopped_directions,
)
from app.domain.rules.triage import triage_red_flags
from app.domain.slots import decide_slot, left_out
from app.domain.types import (
    Change,
    ClinicianReview,
    Condition,
    DirectionalPreference,
    ExerciseDecision,
    HistorySummary,
    MaintenancePlan,
    Phase,
    Profile,
    Reason,
    Recommendation,
    RecommendationStatus,
    Section,
    SessionFocus,
    SessionRecord,
    TraceStep,
)

__all__ = ["next_session"]


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
    step = read_history_window(len(window), window[0].date if window else None, earlier)
    view = HistoryView(window, catalog, summary, baseline=condition.baseline_pain, ordered=True)
    return view, step


def _stage_programme(
    protocol: ConditionProtocol,
    profile: Profile,
    condition: Condition,
    view: HistoryView,
    direction: DirectionalPreference,
    today: date,
    trace: list[TraceStep],
) -> tuple[int, Recent]:
    """The phase for today (replayed, held by the trends, and only as far as the person is
    capable), and the recent signals the rules read."""
    index, step, state = select_phase(protocol, condition, view, today)
    trace.append(step)
    before = protocol.phases[index - 1] if index > 0 else None
    not_capable = require_capability_to_maintain(
        protocol.phases[index], before, direction, profile, condition.kind, view
    )
    if not_capable is not None:
        index -= 1
        trace.append(
            TraceStep(
                require_capability_to_maintain.__name__,
                condition.kind.value,
                protocol.phases[index].id.value,
                not_capable.message,
            )
        )
    return index, read_recent(view, condition, state.trend, today)


def _summary(decisions: tuple[ExerciseDecision, ...], phase: Phase) -> str:
    counts: dict[Change, int] = {}
    for d in decisions:
        counts[d.change] = counts.get(d.change, 0) + 1
    # Sorted by name (a StrEnum sorts as its value).
    parts = ", ".join(f"{n} {c.value}" for c, n in sorted(counts.items()))
    return f"{phase.value.capitalize()} phase: {parts}."


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

    # 1. Triage.
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
            summary="Referral advised: red flags found, no exercise given.",
        )

    # 2. Read the history; 3. stage the programme.
    view, read = _read_history(history, summary, condition, catalog, today)
    trace.append(read)
    direction, direction_reason = effective_direction(profile, condition, catalog)
    phase_index, recent = _stage_programme(
        protocol, profile, condition, view, direction, today, trace
    )
    phase = protocol.phases[phase_index]
    slots = active_slots(phase, direction)
    th = Reads(catalog.thresholds)
    ctx = Context(
        profile=profile,
        condition=condition,
        catalog=catalog,
        history=view,
        recent=recent,
        today=today,
        phase=phase.id,
        direction=direction,
        direction_reason=direction_reason,
        slot_ladders=frozenset(s.ladder for s in slots),
        equipment=profile.equipment | catalog.household,
        stretch_reasons=tuple(
            r
            for r in (
                repeat_stretches_to_a_minute(catalog),
                hold_stretches_longer_for_older_adults(profile.age, catalog),
            )
            if r is not None
        ),
        th=th,
        last_loading_day=last_loading_day(view),
        stopped_directions=stopped_directions(view, today),
        trace=trace,
    )
    position = programme_position(protocol, phase_index, view, today)
    facts = ReviewFacts(
        profile=profile,
        condition=condition,
        catalog=catalog,
        today=today,
        last_days=recent.last_days,
        pain_rise=recent.pain_rise,
        flare_days=recent.flare_days,
        position=position,
        latest_pain=view.latest_pain(),
    )
    ctx.repeated_flares = review_repeated_flares(facts, Reads(catalog.thresholds))
    ctx.unsettled = (
        recent.flared
        or recent.alert
        or ctx.repeated_flares is not None
        or recent.pain_rise is not None
        or recent.weekly_pain_rise is not None
        or bool(ctx.stopped_directions)
    )
    trace.append(
        TraceStep(
            "follow_directional_preference",
            condition.kind.value,
            direction.value,
            "" if direction_reason is None else direction_reason.code,
        )
    )

    # 4. Decide every slot.
    picks = [decide_slot(slot, order, ctx, th) for order, slot in enumerate(slots)]
    live = [p for p in picks if p.exercise is not None]
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

    # 5. Lay out what is due in the minutes available.
    trained_today = view.last_completed is not None and view.last_completed.date == today
    kept, dropped, timed_out = fit_to_minutes_available(
        [p for p in live if p.due], profile.minutes_available
    )
    removed = _removed(picks, dropped, timed_out, view, ctx)

    # 6. Explain.
    review = review_reasons(facts)
    schedule = schedule_next_session(live, today, trained_today)
    safety_notes = (*protocol.safety_notes, *profile_safety_notes(profile, catalog))
    stage = episode_stage(condition, today, Reads(catalog.thresholds))
    education = education_for(protocol, phase.id, stage)
    clinician_review = ClinicianReview(bool(review), tuple(review))
    status_reasons = () if ctx.repeated_flares is None else (ctx.repeated_flares,)

    substantive = any(
        p.exercise is not None and p.exercise.category not in ACCOMPANYING for p in kept
    )
    rest = schedule_rest_days(schedule, trained_today, substantive)
    if rest is not None:
        trace.append(TraceStep("schedule_rest_days", "session", "rest", rest.code))
        return Recommendation(
            status=RecommendationStatus.REST,
            condition=condition.kind,
            today=today,
            ruleset_version=version,
            # Repeated flares come first: they, not the calendar, are why nothing is due.
            status_reasons=(*status_reasons, rest),
            avoid=avoid,
            safety_notes=safety_notes,
            clinician_review=clinician_review,
            education=education,
            programme=position,
            schedule=schedule,
            trace=tuple(trace),
            summary=(status_reasons or (rest,))[0].message,
        )

    decisions = tuple(p.decision for p in lay_out_session(kept))
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
        status_reasons=status_reasons,
        avoid=avoid,
        safety_notes=safety_notes,
        clinician_review=clinician_review,
        education=education,
        programme=position,
        schedule=schedule,
        maintenance_plan=maintenance,
        trace=tuple(trace),
        summary=_summary(decisions, phase.id),
    )


def _removed(
    picks: list[Pick], dropped: list[Pick], why: Reason, view: HistoryView, ctx: Context
) -> tuple[ExerciseDecision, ...]:
    """What is left out today: slots with no option, exercises the phase no longer has,
    and what did not fit the minutes."""
    catalog = ctx.catalog
    unavailable = [p.decision for p in picks if p.exercise is None]
    # Exercises from the last prescription that no slot accounts for have left the programme.
    accounted = {p.decision.previous_exercise_id for p in picks} | {
        p.decision.exercise_id for p in picks
    }
    gone = build_session_from_phase(ctx.phase)
    left = [
        left_out(catalog.by_id[i], [gone], ctx)
        for i in dict.fromkeys(
            r.exercise_id for day in view.days[-1:] for s in day.sessions for r in s.exercises
        )
        if i not in accounted and i in catalog.by_id
    ]
    timed_out = [
        left_out(catalog.by_id[p.decision.exercise_id], [why], ctx, p.slot) for p in dropped
    ]
    return tuple(unavailable + left + timed_out)
