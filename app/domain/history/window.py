"""The decision window: a decision reads at most ``history_window_days`` days and
``history_window_sessions`` sessions in full, so it costs the same however long the episode
has run. Every rule's look-back fits inside it (the thresholds' validator checks this).

The window holds whole days only (same-day sessions are judged together). Sessions dated
after ``today`` belong to the window; the API refuses them, so this only keeps the engine
total.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable
from datetime import date, timedelta

from app.domain.catalog import Catalog, Thresholds
from app.domain.types import SessionRecord

__all__ = ["ordered_sessions", "split_history", "window_start"]

_date = operator.attrgetter("date")


def ordered_sessions(history: Iterable[SessionRecord]) -> list[SessionRecord]:
    """Sessions by date, oldest first, in an order that never depends on how they arrived."""
    sessions = sorted(history, key=_date)
    if len(set(map(_date, sessions))) < len(sessions):
        # Same-day sessions: order them by content, not by arrival, so the answer never
        # depends on the order the caller listed them in. (Rare, so the cost is fine.)
        sessions.sort(key=lambda s: (s.date, s.completed, repr(s)))
    return sessions


def window_start(dates_newest_first: Iterable[date], today: date, th: Thresholds) -> date:
    """The first date of the decision window for sessions on these dates (newest first).

    The window runs from ``today - (history_window_days - 1)`` to today, or starts later so
    that it holds at most ``history_window_sessions`` sessions: days are taken whole, newest
    first, while the count stays within the cap, and the window then starts the day after
    the newest day left out. A newest day that alone exceeds the cap is the window by itself
    (so the window is never empty when there are sessions; the service's limit on sessions a
    day keeps this from happening). Dates after ``today`` are skipped.

    Reads only as far as it must: the newest ``history_window_sessions + 1`` dates inside
    ``[today - (history_window_days - 1), today]`` are enough.
    """
    earliest = today - timedelta(days=int(th.history_window_days.value) - 1)
    cap = int(th.history_window_sessions.value)
    taken = 0  # sessions on the days already taken whole
    day: date | None = None  # the day being counted
    on_day = 0
    for current in dates_newest_first:
        if day is not None and current > day:
            raise ValueError("window_start needs the dates newest first")
        if current > today:
            continue
        if current < earliest:
            break
        if current != day:
            taken += on_day
            day, on_day = current, 0
        on_day += 1
        if taken + on_day > cap:
            return day if taken == 0 else day + timedelta(days=1)
    return earliest


def split_history(
    history: Iterable[SessionRecord], today: date, catalog: Catalog
) -> tuple[tuple[SessionRecord, ...], tuple[SessionRecord, ...]]:
    """``(older, window)``: the sessions before the decision window and the ones in it, each
    in ``ordered_sessions`` order (by date, same-day sessions by content)."""
    sessions = ordered_sessions(history)
    start = window_start(map(_date, reversed(sessions)), today, catalog.thresholds)
    cut = bisect.bisect_left(sessions, start, key=_date)
    return tuple(sessions[:cut]), tuple(sessions[cut:])
