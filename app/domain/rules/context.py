"""The facts one decision's rules share: the person, the programme position, the recent
signals, and what the session has taken so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.domain.catalog import Catalog
from app.domain.history import HistoryView
from app.domain.rules.base import Reads
from app.domain.signals import TrainingDay
from app.domain.trends import PainRise, flare_days, pain_risen_over_baseline, weekly_pain_rise
from app.domain.types import (
    Condition,
    DirectionalPreference,
    Equipment,
    Phase,
    Profile,
    Reason,
    TraceStep,
    Trend,
)

__all__ = ["Context", "Recent", "read_recent"]


@dataclass(frozen=True, slots=True)
class Recent:
    """What the recent training days say about the whole person, computed once."""

    # The last completed training day and every day logged after it (missed logs too).
    last_days: tuple[TrainingDay, ...]
    days_since_last: int | None
    last_missed: bool  # a session missed on or after the last completed one
    weekly_pain_rise: tuple[float, float] | None  # (last week, this week) when rising
    pain_rise: PainRise | None  # pain risen over the baseline or the first weeks
    flare_days: int  # flare or spreading days within repeated_flares_window_days

    # What the last training day and any log after it said (``last_days``), read once.
    flared: bool  # flared or spread symptoms
    alert: bool  # reached an alert level
    spread_reported: bool  # a session-level report of spreading or new numbness


@dataclass(slots=True)
class Context:
    profile: Profile
    condition: Condition
    catalog: Catalog
    history: HistoryView
    recent: Recent
    today: date
    phase: Phase
    direction: DirectionalPreference
    direction_reason: Reason | None
    slot_ladders: frozenset[str]  # the ladders of today's slots
    equipment: frozenset[Equipment]  # the person's kit and the household items
    stretch_reasons: tuple[Reason, ...]  # what every static stretch adds (its total, holds)
    th: Reads
    repeated_flares: Reason | None = None  # set: nothing new is added today
    # Symptoms are not settled (a flare, an alert, spreading, a stopped direction, repeated
    # flares, pain risen or climbing): no untried exercise comes in, no stand-in goes home.
    unsettled: bool = False
    last_loading_day: date | None = None
    stopped_directions: dict[str, date] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    # Each exercise's exclusion (or None), judged once per decision (``unavailable``).
    exclusions: dict[str, Reason | None] = field(default_factory=dict)
    # The person-wide progression rules' outcomes, once each per decision.
    person_wide: dict[Any, Any] = field(default_factory=dict)
    trace: list[TraceStep] = field(default_factory=list)


def read_recent(history: HistoryView, condition: Condition, trend: Trend, today: date) -> Recent:
    """The decision-wide signals: the last training day, and the trends the phase replay
    folded (``trend``)."""
    th = history.catalog.thresholds
    last_days = history.days_since_last_completed_day()
    return Recent(
        last_days=last_days,
        flared=any(d.flare or d.spreading for d in last_days),
        alert=any(d.alert for d in last_days),
        spread_reported=any(d.spread_reported for d in last_days),
        days_since_last=history.days_since_last_completed(today),
        last_missed=history.missed_since_last_completed(),
        weekly_pain_rise=weekly_pain_rise(trend, th, today),
        pain_rise=pain_risen_over_baseline(trend, condition.baseline_pain, th, today),
        flare_days=flare_days(trend, th, today),
    )
