"""Reading a session history: what was done last, how it went, and how each exercise fared.

The history is indexed once per decision (one pass, newest first), so each rule then looks
up only the few entries it needs.
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import NamedTuple

from app.domain.catalog import Catalog, Thresholds
from app.domain.types import ExerciseResult, PainResponse, SessionRecord, SymptomChange

__all__ = ["Appearance", "HistoryView", "classify_response"]


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


def classify_response(
    result: ExerciseResult,
    session: SessionRecord,
    th: Thresholds,
    baseline_pain: int,
    calm: bool | None = None,
) -> PainResponse | None:
    """The pain-monitoring model's verdict on one exercise; ``None`` when the report is not
    complete enough to call it green (pain during, or the next morning, unreported).

    ``calm`` is the session's calm-elsewhere verdict when the caller has it to hand.

    Spreading symptoms (or new numbness) outrank a flare; a flare is pain during above the
    acceptable band or pain the next morning above the pre-session level. Green needs pain
    during and after in the safe band, and a session in which nothing flared, spread or
    reached an alert level.
    """
    if (
        result.symptom_change is SymptomChange.PERIPHERALISING
        or session.symptom_change is SymptomChange.PERIPHERALISING
        or session.new_numbness_or_tingling
    ):
        return PainResponse.PERIPHERALISING
    if next_day_pain_up(session, th, baseline_pain):
        return PainResponse.FLARE
    during = result.pain_during
    if during is None:
        return None
    if during > th.pain_acceptable_max.value:
        return PainResponse.FLARE
    if session.next_day_pain is None:
        return None
    after = result.pain_after
    safe = th.pain_safe_max.value
    alert = th.pain_alert_min.value
    if (
        during <= safe
        and (after is None or after <= safe)
        and not any(
            p is not None and p >= alert
            for p in (session.pain_before, session.pain_after, session.next_day_pain)
        )
        and (_calm_elsewhere(session, th) if calm is None else calm)
    ):
        return PainResponse.GREEN
    return PainResponse.ACCEPTABLE


def _calm_elsewhere(session: SessionRecord, th: Thresholds) -> bool:
    """No exercise in the session flared, spread symptoms, or hit an alert level."""
    acceptable = th.pain_acceptable_max.value
    alert = th.pain_alert_min.value
    too_hard = th.effort_too_hard_min.value
    for other in session.exercises:
        if (
            (other.pain_during is not None and other.pain_during > acceptable)
            or (other.pain_after is not None and other.pain_after >= alert)
            or (other.effort is not None and other.effort >= too_hard)
            or other.symptom_change is SymptomChange.PERIPHERALISING
        ):
            return False
    return True


def next_day_pain_up(session: SessionRecord, th: Thresholds, baseline_pain: int) -> bool:
    """True when the next morning's pain sits above the pre-session level (the 24-hour rule)."""
    if session.next_day_pain is None:
        return False
    before = session.pain_before if session.pain_before is not None else baseline_pain
    return session.next_day_pain > before + th.next_day_pain_rise_allowed.value


class HistoryView:
    """An index over a history, built in one pass."""

    __slots__ = (
        "_by_exercise",
        "_by_slot",
        "_calm",
        "catalog",
        "completed_sessions",
        "first_date",
        "last",
        "last_completed",
        "sessions",
        "spreading",
    )

    def __init__(self, history: tuple[SessionRecord, ...], catalog: Catalog) -> None:
        sessions = sorted(history, key=lambda s: s.date)
        if any(a.date == b.date for a, b in itertools.pairwise(sessions)):
            # Same-day sessions: order them by content, not by arrival, so the answer never
            # depends on the order the caller listed them in. (Rare, so the cost is fine.)
            sessions.sort(key=lambda s: (s.date, s.completed, repr(s)))
        self.sessions = tuple(sessions)
        self.catalog = catalog
        self.last = self.sessions[-1] if self.sessions else None
        self.last_completed: SessionRecord | None = None
        self.completed_sessions = 0
        by_exercise: dict[str, list[Appearance]] = {}
        by_slot: dict[str, list[Appearance]] = {}
        # Results that spread symptoms, or sat in a session that reported spreading or new
        # numbness: newest first. Usually empty, so looking for stopped directions is cheap.
        self.spreading: list[Appearance] = []
        self._calm: dict[int, bool] = {}
        for session in reversed(self.sessions):
            if session.completed:
                self.completed_sessions += 1
                if self.last_completed is None:
                    self.last_completed = session
            session_spread = (
                session.symptom_change is SymptomChange.PERIPHERALISING
                or session.new_numbness_or_tingling
            )
            for result in session.exercises:
                seen = by_exercise.get(result.exercise_id)
                appearance: Appearance = _appearance(Appearance, (session, result))
                if seen is None:
                    by_exercise[result.exercise_id] = [appearance]
                else:
                    seen.append(appearance)
                if result.slot is not None:
                    by_slot.setdefault(result.slot, []).append(appearance)
                if session_spread or result.symptom_change is SymptomChange.PERIPHERALISING:
                    self.spreading.append(appearance)
        self._by_exercise = by_exercise  # newest first
        self._by_slot = by_slot
        self.first_date = self.sessions[0].date if self.sessions else None

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

    def calm(self, session: SessionRecord) -> bool:
        """No exercise in the session flared, spread symptoms or hit an alert level (memoised:
        every exercise's green check asks about its session)."""
        key = id(session)
        found = self._calm.get(key)
        if found is None:
            found = self._calm[key] = _calm_elsewhere(session, self.catalog.thresholds)
        return found

    def missed_since_last_completed(self) -> bool:
        """A missed session dated on or after the last completed one (same day included)."""
        last = self.last_completed
        return any(not s.completed and (last is None or s.date >= last.date) for s in self.sessions)

    def last_day(self) -> tuple[SessionRecord, ...]:
        """Every completed session on the date of the latest completed one."""
        last = self.last_completed
        if last is None:
            return ()
        return tuple(s for s in self.sessions if s.completed and s.date == last.date)

    def latest_in_slot(
        self, slot: str, family: tuple[str, ...], other_ladders: frozenset[str]
    ) -> Appearance | None:
        """What the person last did in this slot: the latest result tagged with the slot, or,
        for histories without tags, the latest of the slot's ladder and its swaps.

        A tagged exercise from a ladder that is another slot of today's phase belongs to that
        slot, whatever the tag says.
        """
        by_id = self.catalog.by_id
        tagged = next(
            (
                a
                for a in self._by_slot.get(slot, ())
                if a.result.exercise_id in by_id
                and by_id[a.result.exercise_id].ladder not in other_ladders
            ),
            None,
        )
        inferred = self.latest_in(family, slot)
        if tagged and (inferred is None or tagged.session.date >= inferred.session.date):
            return tagged
        return inferred

    def ids_in(self, session: SessionRecord | None) -> tuple[str, ...]:
        return () if session is None else tuple(r.exercise_id for r in session.exercises)

    def days_since_last_completed(self, today: date) -> int | None:
        return None if self.last_completed is None else (today - self.last_completed.date).days

    def latest_pain(self) -> int | None:
        """The most recent pain report: next morning, else after, else before the session."""
        return reported_pain(self.last_completed)


def reported_pain(session: SessionRecord | None) -> int | None:
    """A session's last pain report: next morning, else after, else before it."""
    if session is None:
        return None
    for value in (session.next_day_pain, session.pain_after, session.pain_before):
        if value is not None:
            return value
    return None
