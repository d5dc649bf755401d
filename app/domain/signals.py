"""The signals every rule reads, each defined once: training day, green, acceptable, flare,
alert, spreading, calm, pain risen over the baseline, repeated flares.

Rules, clinician-review checks, the phase replay and the history fold all read these; none
computes its own. A signal names the thresholds that define it (``Signal.thresholds``), so a
rule that reads a signal cites exactly those.

A **training day** is one date: every session logged that day counts once for every streak,
count and volume, and they share one next-morning check (clinical rules §10).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
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
    "PainRise",
    "Signal",
    "TrainingDay",
    "Trend",
    "exercise_response",
    "flare_days",
    "pain_risen_over_baseline",
    "read_day",
    "reported_pain",
    "training_days",
    "trend_holds",
    "trim_trend",
    "weekly_pain_rise",
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


_WEEK_ON_WEEK_DAYS = 14  # this week against last week


def trim_trend(trend: Trend, th: Thresholds) -> Trend:
    """The trend with only the digests its signals can still read: those within the longest
    look-back of the newest one."""
    if not trend.recent:
        return trend
    keep = trend.recent[-1].date - timedelta(days=_look_back(th))
    if trend.recent[0].date > keep:
        return trend
    return trend._replace(recent=tuple(d for d in trend.recent if d.date > keep))


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
    latest: int | None = None
    after_max: int | None = None
    for session in sessions:
        if session.completed:
            completed = True
            report = reported_pain(session)
            if report is not None:
                latest = report
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


@dataclass(frozen=True, slots=True)
class PainRise:
    """Pain this week against the reference it rose above."""

    recent: float
    reference: float
    against: str  # "baseline" or "first weeks"
    measure: str  # "averaged this week" or "reached on the latest day"


def _days_since(trend: Trend, since: date, today: date) -> list[DayDigest]:
    """The trend's digests dated ``since`` to ``today``, oldest first (read from the newest
    end, so a long run of older digests costs nothing)."""
    out: list[DayDigest] = []
    for day in reversed(trend.recent):
        if day.date < since:
            break
        if day.date <= today:
            out.append(day)
    out.reverse()
    return out


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def _look_back(th: Thresholds) -> int:
    return int(
        max(_WEEK_ON_WEEK_DAYS, th.pain_trend_days.value, th.repeated_flares_window_days.value)
    )


def pain_risen_over_baseline(
    trend: Trend, baseline: int, th: Thresholds, today: date
) -> PainRise | None:
    """Pain risen by the clinically important change (Ostelo 2008; Farrar 2001) above the
    baseline or above the programme's first ``early_weeks_days``: the mean over the last
    ``pain_trend_days`` (pain before sessions and next mornings) by 2 points, or by 30 % and
    at least one point; or the latest training day's highest report by the full 2 points.
    The first weeks count once they are over, before this week began."""
    since = today - timedelta(days=int(th.pain_trend_days.value) - 1)
    return _pain_risen(_days_since(trend, since, today), trend, baseline, th, since)


def _pain_risen(
    days: Sequence[DayDigest], trend: Trend, baseline: int, th: Thresholds, since: date
) -> PainRise | None:
    week = [d for d in days if d.date >= since and d.pains]
    if not week:
        return None
    # The week's mean catches a slow climb; the latest day's highest report, a sharp one,
    # which alone is within a single reading's error unless it rose by the full points.
    levels = [
        (_mean([p for d in week for p in d.pains]) or 0.0, "averaged this week", True),
        (float(max(week[-1].pains)), "reached on the latest day", False),
    ]
    references = [(float(baseline), "baseline")]
    early_days = int(th.early_weeks_days.value)
    if (
        trend.first is not None
        and trend.early_count
        and trend.first + timedelta(days=early_days) <= since
    ):
        references.append((trend.early_total / trend.early_count, "first weeks"))
    references.sort()
    if max(level for level, _, _ in levels) < references[0][0] + 1:
        return None  # not even one point above the lower reference: the usual day
    points = th.meaningful_change_points.value
    pct = th.meaningful_change_pct.value
    for reference, name in references:
        for recent, measure, by_percent in levels:
            rise = recent - reference
            if rise >= points or (by_percent and rise >= 1 and rise >= reference * pct / 100):
                return PainRise(round(recent, 1), round(reference, 1), name, measure)
    return None


def weekly_pain_rise(trend: Trend, th: Thresholds, today: date) -> tuple[float, float] | None:
    """Average pre-session pain last week and this week, when it climbed by the threshold."""
    since = today - timedelta(days=_WEEK_ON_WEEK_DAYS - 1)
    return _weekly(_days_since(trend, since, today), th, today)


def _weekly(days: Sequence[DayDigest], th: Thresholds, today: date) -> tuple[float, float] | None:
    this_week: list[int] = []
    last_week: list[int] = []
    for day in days:
        age = (today - day.date).days
        if age < _WEEK_ON_WEEK_DAYS and day.pain_before is not None:
            (this_week if age < 7 else last_week).append(day.pain_before)
    if not this_week or not last_week:
        return None
    before = sum(last_week) / len(last_week)
    after = sum(this_week) / len(this_week)
    return (before, after) if after - before >= th.weekly_pain_rise_points.value else None


def flare_days(trend: Trend, th: Thresholds, today: date) -> int:
    """Training days within ``repeated_flares_window_days`` that flared or spread symptoms."""
    since = today - timedelta(days=int(th.repeated_flares_window_days.value) - 1)
    return _flares(_days_since(trend, since, today), since)


def _flares(days: Sequence[DayDigest], since: date) -> int:
    return sum(1 for d in days if d.flared and d.date >= since)


def trend_holds(trend: Trend, baseline: int, th: Thresholds, today: date) -> bool:
    """The trends hold the phase today: repeated flares, pain climbing week on week, or pain
    risen over the baseline or the first weeks (each as defined above, read from one pass
    over the trend's last weeks)."""
    days = _days_since(trend, today - timedelta(days=_look_back(th) - 1), today)
    flare_since = today - timedelta(days=int(th.repeated_flares_window_days.value) - 1)
    trend_since = today - timedelta(days=int(th.pain_trend_days.value) - 1)
    return (
        _flares(days, flare_since) >= th.repeated_flares_count.value
        or _weekly(days, th, today) is not None
        or _pain_risen(days, trend, baseline, th, trend_since) is not None
    )
