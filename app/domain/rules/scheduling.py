"""Scheduling and layout: what is due today, what fits the minutes, when the next session is.

A dose's ``per_week`` is a promise the schedule keeps whenever the person's training days
allow it; loading exercises rest between their days (for overuse, no loading falls on the
day after any loading day).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import date, timedelta

from app.domain.catalog import Exercise, Slot
from app.domain.history import Appearance, HistoryView
from app.domain.reasons import ReasonCode, reason
from app.domain.rules.base import Stage, rule
from app.domain.rules.context import Context
from app.domain.types import (
    Category,
    ConditionKind,
    Dose,
    ExerciseDecision,
    Reason,
    Schedule,
    Section,
    SessionFocus,
)

__all__ = [
    "ACCOMPANYING",
    "Pick",
    "fit_to_minutes_available",
    "last_loading_day",
    "lay_out_session",
    "rest_between_loading_days",
    "schedule_next_session",
    "schedule_rest_days",
]

# Exercises that go with every session whatever else is due: they do not make a session.
ACCOMPANYING = frozenset({Category.AEROBIC_WARM_UP, Category.HABIT})


@dataclass(slots=True)
class Pick:
    """One slot's outcome before the session is fitted to time."""

    slot: Slot
    order: int
    decision: ExerciseDecision
    exercise: Exercise | None
    due: bool = True
    next_due: date | None = None
    seconds: int = 0


def last_loading_day(history: HistoryView) -> date | None:
    """The latest day a loading exercise was performed."""
    by_id = history.catalog.by_id
    for session in reversed(history.sessions):
        if session.completed and any(
            r.performed is not None and r.exercise_id in by_id and by_id[r.exercise_id].hard
            for r in session.exercises
        ):
            return session.date
    return None


@rule(Stage.SCHEDULING, "ACSM 2009 (2-3 days a week, rest between); article (overuse)")
def rest_between_loading_days(exercise: Exercise, dose: Dose, ctx: Context) -> tuple[bool, date]:
    """Whether the exercise is due today, and when it is next due if done today.

    An exercise done ``per_week`` times rests ``7 // per_week`` days; for someone who does
    not train daily it may come one day early when it is behind its weekly count, so the
    promise is kept on the days the person trains (Monday, Wednesday, Friday for twice a
    week: Monday and Wednesday). A
    loading exercise rests at least ``hard_session_min_gap_days``; for overuse no loading
    falls on the day after any loading day (``overuse_hard_session_min_gap_days``).
    """
    th = ctx.catalog.thresholds
    per_week = max(dose.per_week, 1)
    spacing = max(1, 7 // per_week)
    minimum = 1
    overuse = ctx.condition.kind is ConditionKind.OVERUSE
    if exercise.hard:
        gap = int(
            th.overuse_hard_session_min_gap_days.value
            if overuse
            else th.hard_session_min_gap_days.value
        )
        spacing = max(spacing, gap)
        minimum = max(minimum, gap)
        day = ctx.last_loading_day
        if overuse and day is not None and (ctx.today - day).days < gap:
            return False, day + timedelta(days=gap)
    appearances = ctx.history.appearances(exercise.id)
    last_done: date | None = None
    for appearance in appearances:
        if appearance.session.completed and appearance.result.performed is not None:
            last_done = appearance.session.date
            break
    if last_done is None:
        return True, ctx.today + timedelta(days=spacing)
    since = (ctx.today - last_done).days
    if since < spacing and not _early_keeps_the_promise(
        appearances, since, per_week, spacing, minimum, ctx
    ):
        return False, last_done + timedelta(days=spacing)
    return True, ctx.today + timedelta(days=spacing)


def _early_keeps_the_promise(
    appearances: list[Appearance],
    since: int,
    per_week: int,
    spacing: int,
    minimum: int,
    ctx: Context,
) -> bool:
    """A day early is allowed when the person does not train daily (waiting out the
    spacing would skip to their next training day and lose one of the week's sessions) and
    the exercise is behind its weekly count; never below the minimum rest."""
    if since < max(minimum, spacing - 1):
        return False
    last = ctx.history.last_completed
    if last is not None and (ctx.today - last.date).days < 2:
        return False  # trains daily: the spacing can be kept without losing a session
    days_done = {
        a.session.date
        for a in appearances
        if a.session.completed
        and a.result.performed is not None
        and (ctx.today - a.session.date).days < 7
    }
    return len(days_done) < per_week


_by_priority = operator.attrgetter("slot.priority", "order")


@rule(Stage.SCHEDULING, "Convention: keep priorities when time is short; the warm-up stays")
def fit_to_minutes_available(
    picks: list[Pick], minutes: int
) -> tuple[list[Pick], list[Pick], Reason]:
    """Keep picks by priority (then programme order) while they fit the minutes available;
    also returns what a left-out pick says.

    The warm-up and the daily habits always stay, so their time is reserved first.
    """
    budget = minutes * 60
    kept: list[Pick] = []
    dropped: list[Pick] = []
    # By programme order: comparing picks themselves would compare their catalog models.
    essential = {
        p.order for p in picks if p.exercise is not None and p.exercise.category in ACCOMPANYING
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
    why = reason(ReasonCode.LEFT_OUT_FOR_TIME, fit_to_minutes_available, minutes=minutes)
    return kept, dropped, why


@rule(Stage.SCHEDULING, "ACSM 2009 (rest between loading days)")
def schedule_next_session(picks: list[Pick], today: date, trained_today: bool) -> Schedule:
    """The next session is the earliest day something is due (never today once trained);
    it is a full session when loading is due by then, else a recovery one."""
    dates: list[date] = []
    hard_dates: list[date] = []
    for pick in picks:
        if pick.exercise is None or pick.next_due is None:
            continue
        if pick.exercise.category in ACCOMPANYING:
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
        else SessionFocus.RECOVERY
    )
    rest_days = 0 if next_hard is None else max(0, (next_hard - today).days - 1)
    return Schedule(next_date, focus, rest_days)


@rule(Stage.SCHEDULING, "ACSM 2009; article (rest between workouts)")
def schedule_rest_days(schedule: Schedule, trained_today: bool, substantive: bool) -> Reason | None:
    """A rest day: a session was already completed today, or nothing but the warm-up and
    habits is due."""
    if not trained_today and substantive:
        return None
    code = ReasonCode.ALREADY_TRAINED_TODAY if trained_today else ReasonCode.NOTHING_DUE_TODAY
    return reason(code, schedule_rest_days, date=schedule.next_session_date)


_SECTION_ORDER = {section: index for index, section in enumerate(Section)}


@rule(
    Stage.SCHEDULING, "Article: a 5-minute warm-up first, stretches after, habits through the day"
)
def lay_out_session(kept: list[Pick]) -> list[Pick]:
    """The session in order: warm-up, mobility, strength and stability, endurance,
    stretches, cool-down, daily habits; within a section, programme order."""
    return sorted(
        kept, key=lambda p: (_SECTION_ORDER[p.exercise.section] if p.exercise else 99, p.order)
    )
