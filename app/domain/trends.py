"""The signals over time: what the last weeks of training days say about the person (the
trend signals defined in ``app.domain.signals``: pain risen over the baseline, pain climbing
week on week, repeated flares).

They read a ``Trend``: the first weeks' pain and a digest of each recent training day, which
the phase replay folds day by day and the history summary carries past the window, so the
trends read the same whichever way the history arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from app.domain.catalog import Thresholds
from app.domain.types import DayDigest, Trend

__all__ = [
    "PainRise",
    "flare_days",
    "pain_risen_over_baseline",
    "trend_holds",
    "trim_trend",
    "weekly_pain_rise",
]

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
