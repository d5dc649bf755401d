"""The signals every rule reads, each defined once: training day, green, acceptable, flare,
alert, spreading, calm, pain risen over the baseline, repeated flares (the trend signals
are read in ``app.domain.trends``).

Rules, clinician-review checks, the phase replay and the history fold all read these; none
computes its own. A signal names the thresholds that define it (``Signal.thresholds``), so a
rule that reads a signal cites exactly those.

A **training day** is one date: every session logged that day counts once for every streak,
count and volume, and they share one next-morning check (clinical rules §10).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from app.domain.catalog import Thresholds
from app.domain.types import (
    NO_TREND,
    DayDigest,
    ExerciseResult,
    PainResponse,
    SessionRecord,
    SymptomChange,
    Trend,
)

__all__ = [
    "ACCEPTABLE",
    "ALERT",
    "CALM",
    "FLARE",
    "GREEN",
    "NEXT_DAY_UP",
    "NO_TREND",
    "PAIN_RISEN",
    "REPEATED_FLARES",
    "SIGNALS",
    "SPREADING",
    "TRAINING_DAY",
    "WEEKLY_RISE",
    "DayDigest",
    "Signal",
    "TrainingDay",
    "Trend",
    "exercise_response",
    "read_day",
    "reported_pain",
    "training_days",
]


@dataclass(frozen=True, slots=True)
class Signal:
    """A named signal, what it means in plain words, and the thresholds that define it."""

    name: str
    meaning: str
    thresholds: tuple[str, ...] = ()


TRAINING_DAY = Signal(
    "training_day",
    "One date: every session logged that day counts once and shares one next-morning check.",
)
FLARE = Signal(
    "flare",
    "Pain during an exercise or after the session above the acceptable band, or "
    "next-morning pain above the pain before the day's session.",
    ("pain_acceptable_max", "next_day_pain_rise_allowed"),
)
ALERT = Signal(
    "alert",
    "Pain at the alert level at any point of the day, or effort at the too-hard level.",
    ("pain_alert_min", "effort_too_hard_min"),
)
NEXT_DAY_UP = Signal(
    "next_day_pain_up",
    "Next-morning pain above the pain before the day's session.",
    ("next_day_pain_rise_allowed",),
)
WEEKLY_RISE = Signal(
    "weekly_pain_rise",
    "Average pain before sessions this week above last week's by the threshold.",
    ("weekly_pain_rise_points",),
)
SPREADING = Signal(
    "spreading",
    "Symptoms spreading further down the leg, or new numbness or tingling.",
)
CALM = Signal(
    "calm",
    "A day on which nothing flared, spread or reached an alert level.",
    (*FLARE.thresholds, *ALERT.thresholds),
)
GREEN = Signal(
    "green",
    "An exercise done with pain during and after it, and after the session, in the safe "
    "band, on a calm day whose next-morning pain was reported.",
    ("pain_safe_max", *CALM.thresholds),
)
ACCEPTABLE = Signal(
    "acceptable",
    "An exercise done with pain during above the safe band but within the acceptable one.",
    ("pain_safe_max", "pain_acceptable_max"),
)
PAIN_RISEN = Signal(
    "pain_risen_over_baseline",
    "Pain this week above the episode's baseline, or above the programme's first weeks, by "
    "the clinically important change (points or percent).",
    ("meaningful_change_points", "meaningful_change_pct", "pain_trend_days", "early_weeks_days"),
)
REPEATED_FLARES = Signal(
    "repeated_flares",
    "Several flare days within a short window.",
    ("repeated_flares_count", "repeated_flares_window_days", *FLARE.thresholds),
)
SIGNALS = (
    TRAINING_DAY,
    NEXT_DAY_UP,
    FLARE,
    ALERT,
    SPREADING,
    CALM,
    GREEN,
    ACCEPTABLE,
    PAIN_RISEN,
    WEEKLY_RISE,
    REPEATED_FLARES,
)

# A module constant: on Python 3.11 every ``Enum.MEMBER`` lookup goes through the enum
# metaclass's attribute hook, which is slow in the per-result loops.
_SPREADS = SymptomChange.PERIPHERALISING


class TrainingDay(NamedTuple):
    """One date's sessions and what they say, computed once per decision."""

    date: date
    sessions: tuple[SessionRecord, ...]
    completed: bool  # at least one session of the day was done
    missed: bool  # at least one session of the day was missed
    flare: bool
    alert: bool
    spreading: bool  # anything that day spread symptoms or brought new numbness
    spread_reported: bool  # a session-level report of spreading or new numbness
    calm: bool
    next_day_up: bool
    pain_before: int | None  # the day's lowest pain before a session
    next_day_pain: int | None  # the day's one next-morning check (the highest reported)
    pain_after: int | None  # the highest pain reported after a session of the day
    pains: tuple[int, ...]  # pain before and next morning, as reported: the pain trend's data
    digest: DayDigest  # what the trend signals keep of the day
    latest_pain: int | None  # the last report of the day's last completed session
    # A day that ends every green streak and holds the phase: missed or not calm.
    breaks_streaks: bool


# Builds the tuples without a Python-level __new__ call: every decision reads every day.
_tuple = tuple.__new__


def reported_pain(session: SessionRecord | None) -> int | None:
    """A session's last pain report: next morning, else after, else before it."""
    if session is None:
        return None
    for value in (session.next_day_pain, session.pain_after, session.pain_before):
        if value is not None:
            return value
    return None


def read_day(
    day: date, sessions: Sequence[SessionRecord], th: Thresholds, baseline: int
) -> TrainingDay:
    """What one training day says (every session logged that date, in any order)."""
    acceptable = th.pain_acceptable_max.value
    alert_at = th.pain_alert_min.value
    too_hard = th.effort_too_hard_min.value
    flare = alert = spreading = spread_report = completed = missed = False
    before: int | None = None
    morning: int | None = None
    last_done: SessionRecord | None = None
    after_max: int | None = None
    for session in sessions:
        if session.completed:
            completed = True
            last_done = session
        else:
            missed = True
        if session.symptom_change is _SPREADS or session.new_numbness_or_tingling:
            spread_report = True
        pain_before, pain_after, next_day = (
            session.pain_before,
            session.pain_after,
            session.next_day_pain,
        )
        if pain_before is not None:
            if pain_before >= alert_at:
                alert = True
            if before is None or pain_before < before:
                before = pain_before
        if pain_after is not None:
            if pain_after > acceptable:
                flare = True
                if pain_after >= alert_at:
                    alert = True
            if after_max is None or pain_after > after_max:
                after_max = pain_after
        if next_day is not None:
            if next_day >= alert_at:
                alert = True
            if morning is None or next_day > morning:
                morning = next_day
        for result in session.exercises:
            # The safe band ends below the acceptable one, which ends below the alert level
            # (the thresholds' validator): one comparison clears a calm result's pain.
            during = result.pain_during
            if during is not None and during > acceptable:
                flare = True
                if during >= alert_at:
                    alert = True
            after = result.pain_after
            if after is not None and after >= alert_at:
                alert = True
            effort = result.effort
            if effort is not None and effort >= too_hard:
                alert = True
            if result.symptom_change is _SPREADS:
                spreading = True
    spreading = spreading or spread_report
    next_day_up = (
        morning is not None
        and morning > (baseline if before is None else before) + th.next_day_pain_rise_allowed.value
    )
    flare = flare or next_day_up
    if before is None:
        pains: tuple[int, ...] = () if morning is None else (morning,)
    else:
        pains = (before,) if morning is None else (before, morning)
    # The day's latest report: its last completed session's, else an earlier one's.
    latest = reported_pain(last_done)
    if latest is None and len(sessions) > 1:
        for session in reversed(sessions):
            latest = reported_pain(session) if session.completed else None
            if latest is not None:
                break
    digest: DayDigest = _tuple(DayDigest, (day, pains, before, flare or spreading))
    day_read: TrainingDay = _tuple(
        TrainingDay,
        (
            day,
            tuple(sessions),
            completed,
            missed,
            flare,
            alert,
            spreading,
            spread_report,
            not (flare or alert or spreading),
            next_day_up,
            before,
            morning,
            after_max,
            pains,
            digest,
            latest,
            missed or flare or alert or spreading,
        ),
    )
    return day_read


def training_days(
    sessions: Iterable[SessionRecord], th: Thresholds, baseline: int
) -> tuple[TrainingDay, ...]:
    """The sessions (oldest first) grouped into training days, oldest first."""
    grouped: dict[date, list[SessionRecord]] = {}
    for session in sessions:
        on_day = grouped.get(session.date)
        if on_day is None:
            grouped[session.date] = [session]
        else:
            on_day.append(session)
    return tuple(read_day(d, s, th, baseline) for d, s in grouped.items())


def exercise_response(
    result: ExerciseResult, day: TrainingDay, th: Thresholds
) -> PainResponse | None:
    """The pain-monitoring model's verdict on one exercise on its training day; ``None`` when
    the report is not complete enough to call it green (pain during, or the day's next
    morning, unreported).

    Spreading with this exercise, or reported for the session, outranks a flare; a flare is
    pain during above the acceptable band or the day's next-morning pain up. Green needs pain
    during and after the exercise, and after the session, in the safe band on a calm day.
    """
    if result.symptom_change is _SPREADS or day.spread_reported:
        return PainResponse.PERIPHERALISING
    if day.next_day_up:
        return PainResponse.FLARE
    during = result.pain_during
    if during is None:
        return None
    if during > th.pain_acceptable_max.value:
        return PainResponse.FLARE
    if day.next_day_pain is None:
        return None
    safe = th.pain_safe_max.value
    after = result.pain_after
    session_after = day.pain_after
    if (
        during <= safe
        and (after is None or after <= safe)
        and (session_after is None or session_after <= safe)
        and day.calm
    ):
        return PainResponse.GREEN
    return PainResponse.ACCEPTABLE
