"""Reading a session history: what was done last, how it went, and how each exercise fared.

The history is indexed once per decision (one pass, newest first), so each rule then looks
up only the few entries it needs.

A decision reads only a bounded window of it: at most ``history_window_days`` days and
``history_window_sessions`` sessions, so it costs the same however long the episode has
run. Every rule's look-back fits inside the window (the thresholds' validator checks it),
and the one thing that needs the whole history, the phase replay, is a left fold over
training days: its running state (``HistorySummary``) stands in exactly for the sessions it
folded. A decision is therefore the same whether the history arrives whole, as the window
plus the summary of what came before, or with that summary folded in several pieces.

The window holds whole days only (same-day sessions are judged together). Sessions dated
after ``today`` belong to the window; the API refuses them, so this only keeps the engine
total.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import NamedTuple

from app.domain.catalog import Catalog, ConditionProtocol, Thresholds
from app.domain.types import (
    Condition,
    ExerciseResult,
    HistorySummary,
    PainResponse,
    SessionRecord,
    SymptomChange,
)

__all__ = [
    "Appearance",
    "HistoryView",
    "PhaseFold",
    "calm_elsewhere",
    "classify_response",
    "fold_training_days",
    "next_day_pain_up",
    "ordered_sessions",
    "phase_for_day",
    "phase_reached",
    "reported_pain",
    "resume_fold",
    "split_history",
    "summarise_history",
    "window_start",
]


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
# Compared in the per-result loops. A module constant, because on Python 3.11 every
# ``Enum.MEMBER`` lookup goes through the enum metaclass's attribute hook, which is slow.
_SPREADING = SymptomChange.PERIPHERALISING


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
        result.symptom_change is _SPREADING
        or session.symptom_change is _SPREADING
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
        and not _pain_at_alert(session, alert)
        and (calm_elsewhere(session, th) if calm is None else calm)
    ):
        return PainResponse.GREEN
    return PainResponse.ACCEPTABLE


def calm_elsewhere(session: SessionRecord, th: Thresholds) -> bool:
    """No exercise in the session flared, spread symptoms, or hit an alert level."""
    acceptable = th.pain_acceptable_max.value
    alert = th.pain_alert_min.value
    too_hard = th.effort_too_hard_min.value
    for other in session.exercises:
        if (
            (other.pain_during is not None and other.pain_during > acceptable)
            or (other.pain_after is not None and other.pain_after >= alert)
            or (other.effort is not None and other.effort >= too_hard)
            or other.symptom_change is _SPREADING
        ):
            return False
    return True


def _pain_at_alert(session: SessionRecord, alert: float) -> bool:
    """Pain before, after or the next morning at the alert level."""
    for pain in (session.pain_before, session.pain_after, session.next_day_pain):
        if pain is not None and pain >= alert:
            return True
    return False


def next_day_pain_up(session: SessionRecord, th: Thresholds, baseline_pain: int) -> bool:
    """True when the next morning's pain sits above the pre-session level (the 24-hour rule)."""
    if session.next_day_pain is None:
        return False
    before = session.pain_before if session.pain_before is not None else baseline_pain
    return session.next_day_pain > before + th.next_day_pain_rise_allowed.value


_date = operator.attrgetter("date")


def ordered_sessions(history: Iterable[SessionRecord]) -> list[SessionRecord]:
    """Sessions by date, oldest first, in an order that never depends on how they arrived."""
    sessions = sorted(history, key=_date)
    if len(set(map(_date, sessions))) < len(sessions):
        # Same-day sessions: order them by content, not by arrival, so the answer never
        # depends on the order the caller listed them in. (Rare, so the cost is fine.)
        sessions.sort(key=lambda s: (s.date, s.completed, repr(s)))
    return sessions


class HistoryView:
    """An index over a history, built in one pass.

    ``sessions`` are the ones indexed (a decision's window); ``summary`` folds every session
    before them, so ``completed_sessions`` and ``first_date`` count the whole episode.
    """

    __slots__ = (
        "_by_exercise",
        "_by_slot",
        "_calm",
        "_last_day",
        "catalog",
        "completed_sessions",
        "first_date",
        "last",
        "last_completed",
        "sessions",
        "spreading",
        "summary",
    )

    def __init__(
        self,
        history: tuple[SessionRecord, ...],
        catalog: Catalog,
        summary: HistorySummary | None = None,
        *,
        ordered: bool = False,
    ) -> None:
        # ``ordered``: ``history`` is in ``ordered_sessions`` order already (``split_history``).
        self.sessions = history if ordered else tuple(ordered_sessions(history))
        self.catalog = catalog
        self.summary = summary
        self.last = self.sessions[-1] if self.sessions else None
        self.last_completed: SessionRecord | None = None
        self.completed_sessions = 0 if summary is None else summary.completed_sessions
        by_exercise: dict[str, list[Appearance]] = {}
        by_slot: dict[str, list[Appearance]] = {}
        # Results that spread symptoms, or sat in a session that reported spreading or new
        # numbness: newest first. Usually empty, so looking for stopped directions is cheap.
        self.spreading: list[Appearance] = []
        self._calm: dict[int, bool] = {}
        self._last_day: tuple[SessionRecord, ...] | None = None
        for session in reversed(self.sessions):
            if session.completed:
                self.completed_sessions += 1
                if self.last_completed is None:
                    self.last_completed = session
            session_spread = (
                session.symptom_change is _SPREADING or session.new_numbness_or_tingling
            )
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

    def calm(self, session: SessionRecord) -> bool:
        """No exercise in the session flared, spread symptoms or hit an alert level (memoised:
        every exercise's green check asks about its session)."""
        key = id(session)
        found = self._calm.get(key)
        if found is None:
            found = self._calm[key] = calm_elsewhere(session, self.catalog.thresholds)
        return found

    def missed_since_last_completed(self) -> bool:
        """A missed session dated on or after the last completed one (same day included)."""
        last = self.last_completed
        for session in reversed(self.sessions):  # by date: stop at the days before ``last``
            if last is not None and session.date < last.date:
                return False
            if not session.completed:
                return True
        return False

    def last_day(self) -> tuple[SessionRecord, ...]:
        """Every completed session on the date of the latest completed one (memoised: the
        signals and the review both read it)."""
        if self._last_day is None:
            last = self.last_completed
            self._last_day = (
                ()
                if last is None
                else tuple(s for s in self.sessions if s.completed and s.date == last.date)
            )
        return self._last_day

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

    def ids_in(self, session: SessionRecord | None) -> tuple[str, ...]:
        return () if session is None else tuple(r.exercise_id for r in session.exercises)

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


def reported_pain(session: SessionRecord | None) -> int | None:
    """A session's last pain report: next morning, else after, else before it."""
    if session is None:
        return None
    for value in (session.next_day_pain, session.pain_after, session.pain_before):
        if value is not None:
            return value
    return None


# ---------------------------------------------------------------------------------------------
# The decision window


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


# ---------------------------------------------------------------------------------------------
# The phase replay, and the summary that carries it past the window


class PhaseFold(NamedTuple):
    """The phase replay's running state after some training days (what a summary keeps)."""

    phase_index: int | None  # the phase the last training day was planned at; None: no day
    completed: int  # completed sessions so far
    pain: int | None  # the latest reported pain; None: none yet, read as the baseline
    held: bool  # the last training day holds the phase


def resume_fold(protocol: ConditionProtocol, summary: HistorySummary | None) -> PhaseFold:
    """The replay's state a summary carries, in this protocol's terms.

    A phase the protocol does not have (the summary was folded under another protocol)
    starts the phase afresh from the entry criteria; the counts and pain still stand.
    """
    if summary is None:
        return PhaseFold(None, 0, None, False)
    index = next((i for i, p in enumerate(protocol.phases) if p.id is summary.phase), None)
    return PhaseFold(index, summary.completed_sessions, summary.pain, summary.held)


def phase_reached(protocol: ConditionProtocol, days: int, completed: int, pain: int) -> int:
    """The furthest phase whose entry criteria, and all earlier phases' criteria, hold."""
    reached = 0
    for index, (min_days, min_completed, max_pain) in enumerate(protocol.entry_criteria):
        if days >= min_days and completed >= min_completed and pain <= max_pain:
            reached = index
        else:
            break
    return reached


def phase_for_day(
    protocol: ConditionProtocol,
    condition: Condition,
    state: PhaseFold,
    day: date,
    *,
    holding: bool,
) -> int:
    """The phase a plan given on ``day`` gets: the furthest reached, at most one above the
    last training day's, and no higher than it after a day that held it."""
    index, completed, pain, _ = state
    return _planned_phase(protocol, condition, index, completed, pain, day, holding)


def _planned_phase(
    protocol: ConditionProtocol,
    condition: Condition,
    index: int | None,
    completed: int,
    pain: int | None,
    day: date,
    holding: bool,
) -> int:
    """``phase_for_day`` on the fold's running values (``PhaseFold``'s fields)."""
    if pain is None:
        pain = condition.baseline_pain
    reached = phase_reached(protocol, (day - condition.onset_date).days, completed, pain)
    if index is None:
        return reached
    return min(reached, index if holding else index + 1)


def _day_holds_the_phase(
    sessions: list[SessionRecord],
    th: Thresholds,
    baseline_pain: int,
    calm: Callable[[SessionRecord], bool],
) -> bool:
    """A training day after which the phase may not advance: a session was missed, or
    something flared, spread, or reached an alert level."""
    alert = th.pain_alert_min.value
    for session in sessions:
        if (
            not session.completed
            or session.new_numbness_or_tingling
            or session.symptom_change is _SPREADING
            or next_day_pain_up(session, th, baseline_pain)
            or _pain_at_alert(session, alert)
            or not calm(session)
        ):
            return True
    return False


def fold_training_days(
    protocol: ConditionProtocol,
    condition: Condition,
    th: Thresholds,
    sessions: Sequence[SessionRecord],
    state: PhaseFold,
    calm: Callable[[SessionRecord], bool],
) -> PhaseFold:
    """Replay ``sessions`` (in ``ordered_sessions`` order, all after the days ``state`` has
    folded) one training day at a time: each day's plan gets ``phase_for_day``, then the
    day's completed sessions, latest reported pain and holding signals are counted in.

    A left fold over whole days, so folding days in pieces gives what folding them at once
    does: that is what lets a summary stand in for the sessions it folded.
    """
    by_day: dict[date, list[SessionRecord]] = {}
    for session in sessions:
        on_day = by_day.get(session.date)
        if on_day is None:
            by_day[session.date] = [session]
        else:
            on_day.append(session)
    baseline = condition.baseline_pain
    # The running state lives in locals, a PhaseFold only at the end: every decision folds
    # its whole window.
    index, completed, pain, held = state
    for day, on_day in by_day.items():
        index = _planned_phase(protocol, condition, index, completed, pain, day, held)
        for session in on_day:
            if session.completed:
                completed += 1
                reported = reported_pain(session)
                if reported is not None:
                    pain = reported  # the day's latest report
        held = _day_holds_the_phase(on_day, th, baseline, calm)
    return PhaseFold(index, completed, pain, held)


def summarise_history(
    summary: HistorySummary | None,
    sessions: Sequence[SessionRecord],
    condition: Condition,
    catalog: Catalog,
) -> HistorySummary | None:
    """``summary`` with ``sessions`` folded in: the same day-by-day phase replay a decision
    makes (``select_phase``), plus the counts and first date the programme position needs.

    ``sessions`` must all be dated after ``summary.through`` (days are folded whole), in any
    order; ``summary`` comes back unchanged when there are none. Folding in pieces gives
    what folding at once does: ``summarise_history(summarise_history(None, a, ...), b, ...)
    == summarise_history(None, a + b, ...)`` when every date in ``a`` is before every date
    in ``b``. The fold depends on the condition (onset, baseline pain, protocol) and the
    catalog: fold again from the sessions when either changes.
    """
    if not sessions:
        return summary
    ordered = ordered_sessions(sessions)
    if summary is not None and ordered[0].date <= summary.through:
        raise ValueError(
            f"a session dated {ordered[0].date.isoformat()} is already folded into the "
            f"summary through {summary.through.isoformat()}"
        )
    protocol = catalog.protocol_for[condition.kind]
    th = catalog.thresholds
    state = fold_training_days(
        protocol,
        condition,
        th,
        ordered,
        resume_fold(protocol, summary),
        lambda session: calm_elsewhere(session, th),
    )
    assert state.phase_index is not None  # at least one training day was folded
    return HistorySummary(
        through=ordered[-1].date,
        first_date=ordered[0].date if summary is None else summary.first_date,
        sessions=len(ordered) + (0 if summary is None else summary.sessions),
        completed_sessions=state.completed,
        phase=protocol.phases[state.phase_index].id,
        pain=state.pain,
        held=state.held,
        exercises_done=frozenset(r.exercise_id for s in ordered for r in s.exercises)
        | (frozenset() if summary is None else summary.exercises_done),
    )
