"""Reading a session history: what was done last, how it went, and how each exercise fared.

The history is indexed once per decision (one pass, newest first) and grouped into training
days (``app.domain.signals``), so each rule then looks up only the few entries it needs.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from app.domain.catalog import Catalog
from app.domain.history.window import ordered_sessions
from app.domain.signals import TrainingDay, read_day, reported_pain
from app.domain.types import ExerciseResult, HistorySummary, SessionRecord, SymptomChange

__all__ = ["Appearance", "HistoryView", "reported_pain"]


class Appearance(NamedTuple):
    """One exercise in one session, with the session it belongs to."""

    session: SessionRecord
    result: ExerciseResult

    @property
    def performed_as_prescribed(self) -> bool:
        r = self.result
        return (
            self.session.completed
            and r.completed
            and r.performed is not None
            and r.performed.covers(r.prescribed)
        )


# Builds an Appearance without a Python-level __new__ call: the index makes one per result.
_appearance = tuple.__new__
# A module constant: on Python 3.11 every ``Enum.MEMBER`` lookup goes through the enum
# metaclass's attribute hook, which is slow in the per-result loop.
_SPREADING = SymptomChange.PERIPHERALISING


class HistoryView:
    """An index over a history, built in one pass.

    ``sessions`` are the ones indexed (a decision's window); ``summary`` folds every session
    before them, so ``completed_sessions`` and ``first_date`` count the whole episode.
    """

    __slots__ = (
        "_by_exercise",
        "_by_slot",
        "_day_of",
        "catalog",
        "completed_sessions",
        "days",
        "first_date",
        "last_completed",
        "sessions",
        "spread_without_exercises",
        "spreading",
        "summary",
    )

    def __init__(
        self,
        history: tuple[SessionRecord, ...],
        catalog: Catalog,
        summary: HistorySummary | None = None,
        *,
        baseline: int,
        ordered: bool = False,
    ) -> None:
        # ``ordered``: ``history`` is in ``ordered_sessions`` order already (``split_history``).
        self.sessions = history if ordered else tuple(ordered_sessions(history))
        self.catalog = catalog
        self.summary = summary
        self.last_completed: SessionRecord | None = None
        self.completed_sessions = 0 if summary is None else summary.completed_sessions
        by_exercise: dict[str, list[Appearance]] = {}
        by_slot: dict[str, list[Appearance]] = {}
        # Results that spread symptoms, or sat in a session that reported spreading or new
        # numbness: newest first. Usually empty, so looking for stopped directions is cheap.
        self.spreading: list[Appearance] = []
        # Sessions reporting spreading or new numbness with no exercise logged (often not
        # completed), newest first: the directions of the training before them stop.
        self.spread_without_exercises: list[SessionRecord] = []
        # Training days, built in the same pass (newest first, then turned): every streak,
        # count and check reads these.
        th = catalog.thresholds
        days: list[TrainingDay] = []
        on_day: list[SessionRecord] = []
        counted: date | None = None  # completed days count once (training days)
        for session in reversed(self.sessions):
            if on_day and session.date != on_day[0].date:
                on_day.reverse()
                days.append(read_day(on_day[0].date, on_day, th, baseline))
                on_day = []
            on_day.append(session)
            if session.completed:
                if session.date != counted:
                    self.completed_sessions += 1
                    counted = session.date
                if self.last_completed is None:
                    self.last_completed = session
            session_spread = (
                session.symptom_change is _SPREADING or session.new_numbness_or_tingling
            )
            if session_spread and not session.exercises:
                self.spread_without_exercises.append(session)
            for result in session.exercises:
                seen = by_exercise.get(result.exercise_id)
                appearance: Appearance = _appearance(Appearance, (session, result))
                if seen is None:
                    by_exercise[result.exercise_id] = [appearance]
                else:
                    seen.append(appearance)
                if result.slot is not None:
                    in_slot = by_slot.get(result.slot)
                    if in_slot is None:
                        by_slot[result.slot] = [appearance]
                    else:
                        in_slot.append(appearance)
                if session_spread or result.symptom_change is _SPREADING:
                    self.spreading.append(appearance)
        if on_day:
            on_day.reverse()
            days.append(read_day(on_day[0].date, on_day, th, baseline))
        days.reverse()
        self.days = tuple(days)
        self._day_of = {day.date: day for day in days}
        self._by_exercise = by_exercise  # newest first
        self._by_slot = by_slot
        self.first_date: date | None = None
        if summary is not None:
            self.first_date = summary.first_date
        elif self.sessions:
            self.first_date = self.sessions[0].date

    def appearances(self, exercise_id: str) -> list[Appearance]:
        """Every time the exercise was given, newest first."""
        return self._by_exercise.get(exercise_id, [])

    def latest_in(self, ids: tuple[str, ...], slot: str | None = None) -> Appearance | None:
        """The most recent appearance of any of ``ids`` (a ladder and its alternatives).

        ``ids`` is ordered; on a tie (two of them in one session) the earlier id wins, so the
        answer never depends on set iteration order. With ``slot``, an appearance tagged for
        a different slot is that slot's, and is skipped.
        """
        best: Appearance | None = None
        by_exercise = self._by_exercise
        for exercise_id in ids:
            found = by_exercise.get(exercise_id)
            if not found:
                continue
            newest = found[0]
            tag = newest.result.slot
            if slot is not None and tag is not None and tag != slot:
                continue
            if best is None or newest.session.date > best.session.date:
                best = newest
        return best

    def day_of(self, session: SessionRecord) -> TrainingDay:
        """The training day a session of this history belongs to."""
        return self._day_of[session.date]

    def missed_since_last_completed(self) -> bool:
        """A missed session dated on or after the last completed one (same day included)."""
        last = self.last_completed
        for session in reversed(self.sessions):  # by date: stop at the days before ``last``
            if last is not None and session.date < last.date:
                return False
            if not session.completed:
                return True
        return False

    def days_since_last_completed_day(self) -> tuple[TrainingDay, ...]:
        """The last completed training day and every day logged after it (sessions logged
        as not completed still report pain, numbness and spreading), oldest first; every
        day when none was completed."""
        last = self.last_completed
        if last is None:
            return self.days
        return tuple(d for d in self.days if d.date >= last.date)

    def latest_in_slot(
        self, slot: str, family: tuple[str, ...], other_ladders: frozenset[str]
    ) -> Appearance | None:
        """What the person last did in this slot: the latest result tagged with the slot, or,
        for histories without tags, the latest of the slot's ladder and its swaps.

        A tagged exercise from a ladder that is another slot of today's phase belongs to that
        slot, whatever the tag says.
        """
        by_id = self.catalog.by_id
        tagged: Appearance | None = None
        for appearance in self._by_slot.get(slot, ()):
            exercise = by_id.get(appearance.result.exercise_id)
            if exercise is not None and exercise.ladder not in other_ladders:
                tagged = appearance
                break
        inferred = self.latest_in(family, slot)
        if tagged and (inferred is None or tagged.session.date >= inferred.session.date):
            return tagged
        return inferred

    def days_since_last_completed(self, today: date) -> int | None:
        """Days since the last completed session; ``None`` when none was ever completed.

        When every session in the window was missed, the summary keeps no date for its last
        completed one: the gap is counted from the last session it folded, a lower bound.
        With the window at its full length that is already more than ``long_gap_days``.
        """
        if self.last_completed is not None:
            return (today - self.last_completed.date).days
        summary = self.summary
        if summary is None or summary.completed_sessions == 0:
            return None
        return (today - summary.through).days

    def latest_pain(self) -> int | None:
        """The most recent pain report: next morning, else after, else before the session.

        With no completed session in the window, the latest pain the summary carries.
        """
        if self.last_completed is None and self.summary is not None:
            return self.summary.pain
        return reported_pain(self.last_completed)
