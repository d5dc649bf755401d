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
    "NO_TREND",
    "PAIN_RISEN",
    "REPEATED_FLARES",
    "SIGNALS",
    "SPREADING",
    "TRAINING_DAY",
    "DayDigest",
    "PainRise",
    "Signal",
    "TrainingDay",
    "Trend",
    "exercise_response",
    "extend_trend",
    "flare_days",
    "pain_risen_over_baseline",
    "read_day",
    "training_days",
    "trend_holds",
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
    "Pain during an exercise above the acceptable band, or next-morning pain above the "
    "pain before the day's session.",
    ("pain_acceptable_max", "next_day_pain_rise_allowed"),
)
ALERT = Signal(
    "alert",
    "Pain at the alert level at any point of the day, or effort at the too-hard level.",
    ("pain_alert_min", "effort_too_hard_min"),
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
    "An exercise done with pain during and after in the safe band, on a calm day whose "
    "next-morning pain was reported.",
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
    FLARE,
    ALERT,
    SPREADING,
    CALM,
    GREEN,
    ACCEPTABLE,
    PAIN_RISEN,
    REPEATED_FLARES,
)

# A module constant: on Python 3.11 every ``Enum.MEMBER`` lookup goes through the enum
# metaclass's attribute hook, which is slow in the per-result loops.
_SPREADS = SymptomChange.PERIPHERALISING


_WEEK_ON_WEEK_DAYS = 14  # this week against last week


def extend_trend(trend: Trend, day: TrainingDay, th: Thresholds) -> Trend:
    """The trend with one more training day (days come in date order)."""
    first = trend.first or day.date
    total, count = trend.early_total, trend.early_count
    if (day.date - first).days < th.early_weeks_days.value:
        total += sum(day.pains)
        count += len(day.pains)
    look_back = max(
        _WEEK_ON_WEEK_DAYS, th.pain_trend_days.value, th.repeated_flares_window_days.value
    )
    keep = day.date - timedelta(days=int(look_back))
    recent = (*(d for d in trend.recent if d.date > keep), day.digest)
    return Trend(first, total, count, recent)


class TrainingDay:
    """One date's sessions and what they say, computed once per decision."""

    __slots__ = (
        "alert",
        "calm",
        "completed",
        "date",
        "flare",
        "missed",
        "next_day_pain",
        "next_day_up",
        "pain_before",
        "pains",
        "sessions",
        "spread_reported",
        "spreading",
    )

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
    pains: tuple[int, ...]  # pain before and next morning, as reported: the pain trend's data

    @property
    def digest(self) -> DayDigest:
        return DayDigest(self.date, self.pains, self.pain_before, self.flare or self.spreading)

    @property
    def breaks_streaks(self) -> bool:
        """A day that ends every green streak and holds the phase: missed or not calm."""
        return self.missed or not self.calm


def read_day(
    day: date, sessions: Sequence[SessionRecord], th: Thresholds, baseline: int
) -> TrainingDay:
    """What one training day says (every session logged that date, in any order)."""
    acceptable = th.pain_acceptable_max.value
    alert_at = th.pain_alert_min.value
    too_hard = th.effort_too_hard_min.value
    flare = alert = spreading = reported = completed = missed = False
    before: int | None = None
    morning: int | None = None
    for session in sessions:
        if session.completed:
            completed = True
        else:
            missed = True
        if session.symptom_change is _SPREADS or session.new_numbness_or_tingling:
            reported = True
        for pain in (session.pain_before, session.pain_after, session.next_day_pain):
            if pain is not None and pain >= alert_at:
                alert = True
        if session.pain_before is not None and (before is None or session.pain_before < before):
            before = session.pain_before
        if session.next_day_pain is not None and (
            morning is None or session.next_day_pain > morning
        ):
            morning = session.next_day_pain
        for result in session.exercises:
            during = result.pain_during
            if during is not None:
                if during > acceptable:
                    flare = True
                if during >= alert_at:
                    alert = True
            if result.pain_after is not None and result.pain_after >= alert_at:
                alert = True
            if result.effort is not None and result.effort >= too_hard:
                alert = True
            if result.symptom_change is _SPREADS:
                spreading = True
    spreading = spreading or reported
    next_day_up = (
        morning is not None
        and morning > (baseline if before is None else before) + th.next_day_pain_rise_allowed.value
    )
    flare = flare or next_day_up
    out = TrainingDay()
    out.date, out.sessions = day, tuple(sessions)
    out.completed, out.missed = completed, missed
    out.flare, out.alert, out.spreading, out.spread_reported = flare, alert, spreading, reported
    out.calm = not (flare or alert or spreading)
    out.next_day_up, out.pain_before, out.next_day_pain = next_day_up, before, morning
    out.pains = tuple(p for p in (before, morning) if p is not None)
    return out


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
    during and after in the safe band on a calm day.
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
    if during <= safe and (after is None or after <= safe) and day.calm:
        return PainResponse.GREEN
    return PainResponse.ACCEPTABLE


@dataclass(frozen=True, slots=True)
class PainRise:
    """Pain this week against the reference it rose above."""

    recent: float
    reference: float
    against: str  # "baseline" or "first weeks"


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def pain_risen_over_baseline(
    trend: Trend, baseline: int, th: Thresholds, today: date
) -> PainRise | None:
    """Pain risen by the clinically important change (Ostelo 2008; Farrar 2001: 2 points, or
    30 % and at least one point) above the baseline or above the programme's first
    ``early_weeks_days``: the mean over the last ``pain_trend_days`` (pain before sessions
    and next mornings), or the latest training day's highest report. The first weeks count
    once they are over, before this week began."""
    since = today - timedelta(days=int(th.pain_trend_days.value) - 1)
    week = [d for d in trend.recent if since <= d.date <= today and d.pains]
    if not week:
        return None
    # The week's mean catches a slow climb; the latest day's highest report, a sharp one.
    levels = [_mean([p for d in week for p in d.pains]) or 0.0, float(max(week[-1].pains))]
    references = [(float(baseline), "baseline")]
    early_days = int(th.early_weeks_days.value)
    if (
        trend.first is not None
        and trend.early_count
        and trend.first + timedelta(days=early_days) <= since
    ):
        references.append((trend.early_total / trend.early_count, "first weeks"))
    points = th.meaningful_change_points.value
    pct = th.meaningful_change_pct.value
    for reference, name in sorted(references):
        for recent in levels:
            rise = recent - reference
            if rise >= points or (rise >= 1 and rise >= reference * pct / 100):
                return PainRise(round(recent, 1), round(reference, 1), name)
    return None


def weekly_pain_rise(trend: Trend, th: Thresholds, today: date) -> tuple[float, float] | None:
    """Average pre-session pain last week and this week, when it climbed by the threshold."""
    this_week: list[int] = []
    last_week: list[int] = []
    for day in trend.recent:
        age = (today - day.date).days
        if 0 <= age < _WEEK_ON_WEEK_DAYS and day.pain_before is not None:
            (this_week if age < 7 else last_week).append(day.pain_before)
    if not this_week or not last_week:
        return None
    before = sum(last_week) / len(last_week)
    after = sum(this_week) / len(this_week)
    return (before, after) if after - before >= th.weekly_pain_rise_points.value else None


def flare_days(trend: Trend, th: Thresholds, today: date) -> int:
    """Training days within ``repeated_flares_window_days`` that flared or spread symptoms."""
    since = today - timedelta(days=int(th.repeated_flares_window_days.value) - 1)
    return sum(1 for d in trend.recent if since <= d.date <= today and d.flared)


def trend_holds(trend: Trend, baseline: int, th: Thresholds, today: date) -> bool:
    """The trends hold the phase today: pain risen over the baseline or the first weeks,
    pain climbing week on week, or repeated flares."""
    return (
        pain_risen_over_baseline(trend, baseline, th, today) is not None
        or weekly_pain_rise(trend, th, today) is not None
        or flare_days(trend, th, today) >= th.repeated_flares_count.value
    )
