"""Clinical scenarios as data: load a YAML case, build its history, run the engine, check.

A case file is named by the sentence it tests. Its history is either written out in the
API's request shape (``history``) or simulated (``simulate``): each simulated session asks the
engine for the session due that day, then records the outcome the case states, so histories
stay realistic without hand-writing every dose.

Case keys::

    description: one sentence
    today: 2026-11-24
    profile: {...}            # API ProfileIn
    condition: {...}          # API ConditionIn
    history: [...]            # optional, API SessionIn list
    simulate:                 # optional, oldest first
      - days_ago: 6           # or ``date: 2026-11-18`` (an exact day, for weekdays)
        pain_before: 3        # session-level fields as in SessionIn
        next_day_pain: 2
        outcome: {pain_during: 1, pain_after: 1, effort: 5}      # every exercise
        exercise_outcomes: {prone-press-up: {symptom_change: peripheralising}}
        performed: as_prescribed | short | skipped | half        # default as_prescribed
        completed: true
        log_twice: false      # true: the same session is recorded twice on that date
    expect: {...}             # see check()

Expectation keys that read more than the recommendation (the case's history, condition or
catalog) need the ``CaseRun`` that ``run_case_in_full`` returns, passed to ``check``:
``substitutes_were_tried``, ``directional_reasons_truthful`` and ``given_per_week``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from app.api.schemas import ConditionIn, ProfileIn, SessionIn
from app.domain.catalog import Catalog
from app.domain.engine import next_session
from app.domain.types import (
    Change,
    Condition,
    Dose,
    ExerciseResult,
    Profile,
    Recommendation,
    SessionRecord,
    SymptomChange,
)
from app.services.recommendations import to_condition, to_history, to_profile

CASES_DIR = Path(__file__).with_name("cases")


def load_case(path: Path) -> dict[str, Any]:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(case, dict), f"{path.name}: a case is a mapping"
    unknown = set(case) - {
        "description",
        "today",
        "profile",
        "condition",
        "history",
        "simulate",
        "expect",
    }
    assert not unknown, f"{path.name}: unknown keys {sorted(unknown)}"
    return case


def _short(dose: Dose) -> Dose:
    """A performed dose one step short of the prescription."""
    if dose.reps is not None and dose.reps > 1:
        return replace(dose, reps=dose.reps - 1)
    if dose.hold_seconds is not None and dose.hold_seconds > 1:
        return replace(dose, hold_seconds=dose.hold_seconds - 1)
    if dose.duration_seconds is not None and dose.duration_seconds > 1:
        return replace(dose, duration_seconds=dose.duration_seconds - 1)
    return replace(dose, sets=max(dose.sets - 1, 0))


def _half(dose: Dose) -> Dose:
    """A performed dose about half the prescription (half the reps, else the hold or time)."""
    if dose.reps is not None and dose.reps > 1:
        return replace(dose, reps=dose.reps // 2)
    if dose.hold_seconds is not None and dose.hold_seconds > 1:
        return replace(dose, hold_seconds=dose.hold_seconds // 2)
    if dose.duration_seconds is not None and dose.duration_seconds > 1:
        return replace(dose, duration_seconds=dose.duration_seconds // 2)
    return replace(dose, sets=max(dose.sets // 2, 0))


def _step_date(step: dict[str, Any], today: date) -> date:
    if "date" in step:
        return date.fromisoformat(str(step["date"]))
    return today - timedelta(days=int(step["days_ago"]))


def simulate(case: dict[str, Any], catalog: Catalog, today: date) -> tuple[SessionRecord, ...]:
    return _simulate(case, catalog, today)[0]


def _simulate(
    case: dict[str, Any], catalog: Catalog, today: date
) -> tuple[tuple[SessionRecord, ...], tuple[tuple[date, Recommendation], ...]]:
    """The simulated history, and the plan the engine gave on each simulated day."""
    profile = to_profile(ProfileIn.model_validate(case["profile"]))
    condition = to_condition(ConditionIn.model_validate(case["condition"]), today)
    history: list[SessionRecord] = []
    plans: list[tuple[date, Recommendation]] = []
    for step in case.get("simulate", []):
        day = _step_date(step, today)
        plan = next_session(profile, condition, tuple(history), catalog, day)
        plans.append((day, plan))
        performed_mode = step.get("performed", "as_prescribed")
        completed = bool(step.get("completed", True))
        base = dict(step.get("outcome", {}))
        named = set(step.get("exercise_outcomes", {}))
        given = {d.exercise_id for d in plan.exercises}
        assert named <= given, (
            f"simulate day {day.isoformat()}: outcomes for {sorted(named - given)} but the "
            f"session held {sorted(given)}"
        )
        results = []
        for decision in plan.exercises:
            assert decision.dose is not None
            fields = {**base, **step.get("exercise_outcomes", {}).get(decision.exercise_id, {})}
            if "symptom_change" in fields:
                fields["symptom_change"] = SymptomChange(fields["symptom_change"])
            mode = fields.pop("performed", performed_mode)
            performed = {
                "as_prescribed": decision.dose,
                "short": _short(decision.dose),
                "half": _half(decision.dose),
                "skipped": None,
            }[mode]
            if not completed:
                performed = None
            results.append(
                ExerciseResult(
                    exercise_id=decision.exercise_id,
                    prescribed=decision.dose,
                    performed=performed,
                    completed=completed and performed is not None,
                    slot=decision.slot,
                    **fields,
                )
            )
        session_change = step.get("symptom_change")
        record = SessionRecord(
            date=day,
            exercises=tuple(results),
            completed=completed,
            pain_before=step.get("pain_before"),
            pain_after=step.get("pain_after"),
            next_day_pain=step.get("next_day_pain"),
            symptom_change=SymptomChange(session_change)
            if session_change
            else SymptomChange.STABLE,
            new_numbness_or_tingling=bool(step.get("new_numbness_or_tingling", False)),
        )
        history.append(record)
        if step.get("log_twice"):
            history.append(record)
    return tuple(history), tuple(plans)


@dataclass(frozen=True)
class CaseRun:
    """A case's answer with what it was computed from (for the checks that need them)."""

    recommendation: Recommendation
    history: tuple[SessionRecord, ...]
    profile: Profile
    condition: Condition
    catalog: Catalog
    today: date
    plans: tuple[tuple[date, Recommendation], ...] = ()  # each simulated day's plan


def run_case_in_full(case: dict[str, Any], catalog: Catalog) -> CaseRun:
    today = date.fromisoformat(str(case["today"]))
    profile = to_profile(ProfileIn.model_validate(case["profile"]))
    condition = to_condition(ConditionIn.model_validate(case["condition"]), today)
    plans: tuple[tuple[date, Recommendation], ...] = ()
    if "history" in case:
        sessions = [SessionIn.model_validate(s) for s in _jsonable(case["history"])]
        history = to_history(sessions, today, catalog, 200)
    else:
        history, plans = _simulate(case, catalog, today)
    rec = next_session(profile, condition, history, catalog, today)
    return CaseRun(rec, history, profile, condition, catalog, today, plans)


def run_case(case: dict[str, Any], catalog: Catalog) -> Recommendation:
    return run_case_in_full(case, catalog).recommendation


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _all_reason_codes(rec: Recommendation) -> set[str]:
    codes = {r.code for d in (*rec.exercises, *rec.removed) for r in d.reasons}
    codes |= {r.code for r in rec.clinician_review.reasons}
    if rec.referral is not None:
        codes |= {r.code for r in rec.referral.reasons}
    return codes


_PHASES = ("calm", "mobilise", "strengthen", "function", "maintain")


def _total_reps(dose: Dose) -> int | None:
    return None if dose.reps is None else dose.sets * dose.reps


def _time_under_tension(dose: Dose) -> int | None:
    """Seconds of work in one bout: sets * reps * hold, sets * hold, or sets * duration."""
    per_bout = dose.hold_seconds if dose.hold_seconds is not None else dose.duration_seconds
    if per_bout is None:
        return None
    return dose.sets * (dose.reps or 1) * per_bout


def lowered_work(d: Any) -> str | None:
    """How a same-exercise step labelled progressed lowered the work, or ``None``."""
    before, after = d.previous_dose, d.dose
    if before is None or after is None:
        return None
    if (after.load_kg or 0) > (before.load_kg or 0):
        return None
    for name, measure in (("total reps", _total_reps), ("time under tension", _time_under_tension)):
        was, now = measure(before), measure(after)
        if was is not None and (now is None or now < was):
            return (
                f"{d.exercise_id} progressed but {name} fell {was} -> {now} ({before} -> {after})"
            )
    return None


def _tried_without_trouble(history: tuple[SessionRecord, ...], catalog: Catalog) -> set[str]:
    """Exercises done in a completed session without a flare or spreading with them."""
    limit = catalog.thresholds.pain_acceptable_max.value
    done: set[str] = set()
    for session in history:
        if not session.completed:
            continue
        for r in session.exercises:
            if (
                r.performed is not None
                and (r.pain_during is None or r.pain_during <= limit)
                and r.symptom_change is not SymptomChange.PERIPHERALISING
            ):
                done.add(r.exercise_id)
    return done


def _last_full_week(today: date) -> tuple[date, date]:
    """Monday and Sunday of the latest Monday-to-Sunday week that ended before ``today``."""
    sunday = today - timedelta(days=today.weekday() + 1)
    return sunday - timedelta(days=6), sunday


def check(rec: Recommendation, expect: dict[str, Any], run: CaseRun | None = None) -> list[str]:
    """Every way the recommendation differs from ``expect``; empty when it matches.

    New keys (besides the original ones below):

    - ``status_reasons_include`` / ``review_reasons_include``: codes among the status
      reasons / the clinician review's reasons;
    - ``removed: {id: {reasons_include: [...], reasons_exclude: [...]}}``: a removed entry
      and the codes it must carry or must not;
    - ``education_ids_include`` / ``education_ids_exclude``: education point ids;
    - ``sections_include: [section]``, ``first_section: section``: the session's sections
      (exercises come in session order);
    - ``phase_not: phase``, ``phase_at_most: phase``; ``min_minutes: n``;
    - ``exercises: {id: {has_cautions: true}}``: the exercise carries cautions;
      ``exercises: {id: {cautions_mention: [words]}}``: some caution says each;
      ``exercises: {id: {reasons_exclude: [...]}}``: codes it must not carry;
    - ``summary_starts: text``: the recommendation's summary begins with it;
    - ``progressions_keep_work: true``: a same-exercise step labelled progressed never lowers
      total reps (sets * reps) or time under tension (sets * reps * hold, sets * hold, or
      sets * duration) unless the load rose;
    - ``substitutes_were_tried: true`` (needs ``run``): every exercise substituted or
      regressed to a different exercise, other than a lower level of the previous
      exercise's own ladder, was done earlier in the case's history without a flare;
    - ``directional_reasons_truthful: true`` (needs ``run``): every exercise citing
      ``directional_preference`` moves the spine in the condition's preferred direction;
    - ``given_per_week: {ladder_or_id: n}`` (needs ``run``): over the last full Monday-to-
      Sunday week before ``today``, the exercise (or any of its ladder) was done on at least
      ``n`` days of the history.
    """
    bad: list[str] = []
    by_id = {d.exercise_id: d for d in rec.exercises}
    changes = {d.change.value for d in rec.exercises}

    def want(cond: bool, message: str) -> None:
        if not cond:
            bad.append(message)

    for key, value in expect.items():
        if key == "status":
            want(rec.status.value == value, f"status {rec.status.value} != {value}")
        elif key == "referral_urgency":
            got = rec.referral.urgency.value if rec.referral else None
            want(got == value, f"referral urgency {got} != {value}")
        elif key == "referral_flags":
            got = sorted(f.value for f in rec.referral.flags) if rec.referral else []
            want(got == sorted(value), f"referral flags {got} != {sorted(value)}")
        elif key == "clinician_review":
            want(
                rec.clinician_review.required == value,
                f"clinician_review {rec.clinician_review.required} != {value}",
            )
        elif key == "phase":
            got = rec.programme.phase.value if rec.programme else None
            want(got == value, f"phase {got} != {value}")
        elif key == "focus":
            got = rec.focus.value if rec.focus else None
            want(got == value, f"focus {got} != {value}")
        elif key == "exercise_count":
            want(len(rec.exercises) == value, f"{len(rec.exercises)} exercises != {value}")
        elif key == "includes":
            for exercise_id in value:
                want(exercise_id in by_id, f"{exercise_id} missing from the session")
        elif key == "excludes":
            for exercise_id in value:
                want(exercise_id not in by_id, f"{exercise_id} should not be in the session")
        elif key == "no_change":
            for change in value:
                Change(change)
                want(change not in changes, f"some exercise is {change}")
        elif key == "some_change":
            want(bool(changes & set(value)), f"no exercise is any of {value} (got {changes})")
        elif key == "reasons_include":
            got = _all_reason_codes(rec)
            for code in value:
                want(code in got, f"reason {code} not given (got {sorted(got)})")
        elif key == "reasons_exclude":
            got = _all_reason_codes(rec)
            for code in value:
                want(code not in got, f"reason {code} given")
        elif key == "removed_include":
            removed = {d.exercise_id for d in rec.removed}
            for exercise_id in value:
                want(exercise_id in removed, f"{exercise_id} not in removed ({sorted(removed)})")
        elif key == "avoid_include":
            ids = {a.id for a in rec.avoid}
            for item in value:
                want(item in ids, f"avoid item {item} missing")
        elif key == "education_topics_include":
            topics = {e.topic for e in rec.education}
            for topic in value:
                want(topic in topics, f"education topic {topic} missing")
        elif key == "next_session_date":
            got = rec.schedule.next_session_date.isoformat() if rec.schedule else None
            want(got == str(value), f"next session {got} != {value}")
        elif key == "next_session_focus":
            got = rec.schedule.next_session_focus.value if rec.schedule else None
            want(got == value, f"next session focus {got} != {value}")
        elif key == "max_minutes":
            want(rec.total_minutes <= value, f"{rec.total_minutes} minutes > {value}")
        elif key == "maintenance_plan":
            want((rec.maintenance_plan is not None) == value, "maintenance plan presence")
        elif key == "exercises":
            for exercise_id, spec in value.items():
                d = by_id.get(exercise_id)
                if d is None:
                    bad.append(f"{exercise_id} missing from the session")
                    continue
                if "change" in spec:
                    want(
                        d.change.value == spec["change"],
                        f"{exercise_id} change {d.change.value} != {spec['change']}",
                    )
                for code in spec.get("reasons", []):
                    want(
                        code in {r.code for r in d.reasons},
                        f"{exercise_id} lacks reason {code} ({[r.code for r in d.reasons]})",
                    )
                for code in spec.get("reasons_exclude", []):
                    want(
                        code not in {r.code for r in d.reasons},
                        f"{exercise_id} gives reason {code} ({[r.code for r in d.reasons]})",
                    )
                for field, number in spec.get("dose", {}).items():
                    got = getattr(d.dose, field)
                    want(got == number, f"{exercise_id} dose {field} {got} != {number}")
                if "side" in spec:
                    want(d.side.value == spec["side"], f"{exercise_id} side {d.side.value}")
                if "has_cautions" in spec:
                    want(
                        bool(d.cautions) == spec["has_cautions"],
                        f"{exercise_id} cautions {list(d.cautions)}",
                    )
                for words in spec.get("cautions_mention", []):
                    want(
                        any(words in c for c in d.cautions),
                        f"{exercise_id} cautions {list(d.cautions)} do not mention {words!r}",
                    )
        elif key == "summary_starts":
            want(rec.summary.startswith(value), f"summary {rec.summary!r} does not start {value!r}")
        elif key == "status_reasons_include":
            got = {r.code for r in rec.status_reasons}
            for code in value:
                want(code in got, f"status reason {code} not given (got {sorted(got)})")
        elif key == "review_reasons_include":
            got = {r.code for r in rec.clinician_review.reasons}
            for code in value:
                want(code in got, f"review reason {code} not given (got {sorted(got)})")
        elif key == "removed":
            removed_by_id = {d.exercise_id: d for d in rec.removed}
            for exercise_id, spec in value.items():
                d = removed_by_id.get(exercise_id)
                if d is None:
                    bad.append(f"{exercise_id} not in removed ({sorted(removed_by_id)})")
                    continue
                codes = [str(r.code) for r in d.reasons]
                for code in spec.get("reasons_include", []):
                    want(code in codes, f"removed {exercise_id} lacks reason {code} ({codes})")
                for code in spec.get("reasons_exclude", []):
                    want(code not in codes, f"removed {exercise_id} carries {code} ({codes})")
        elif key in ("education_ids_include", "education_ids_exclude"):
            ids = {e.id for e in rec.education}
            for item in value:
                if key.endswith("include"):
                    want(item in ids, f"education {item} missing (got {sorted(ids)})")
                else:
                    want(item not in ids, f"education {item} given")
        elif key == "sections_include":
            sections = [d.section.value for d in rec.exercises if d.section is not None]
            for section in value:
                want(section in sections, f"no {section} section (got {sections})")
        elif key == "first_section":
            first = rec.exercises[0] if rec.exercises else None
            got = first.section.value if first is not None and first.section else None
            want(
                got == value,
                f"session opens with {got} ({first.exercise_id if first else None}) != {value}",
            )
        elif key in ("phase_not", "phase_at_most"):
            got = rec.programme.phase.value if rec.programme else None
            if key == "phase_not":
                want(got != value, f"phase is {value}")
            else:
                want(
                    got is not None and _PHASES.index(got) <= _PHASES.index(value),
                    f"phase {got} above {value}",
                )
        elif key == "min_minutes":
            want(rec.total_minutes >= value, f"{rec.total_minutes} minutes < {value}")
        elif key == "progressions_keep_work":
            for d in rec.exercises:
                if (
                    value
                    and d.change is Change.PROGRESSED
                    and d.exercise_id == d.previous_exercise_id
                ):
                    lowered = lowered_work(d)
                    want(lowered is None, lowered or "")
        elif key == "substitutes_were_tried":
            assert run is not None, f"{key} needs the case run"
            tried = _tried_without_trouble(run.history, run.catalog)
            by_catalog = run.catalog.by_id
            for d in rec.exercises:
                if not value or d.change not in (Change.SUBSTITUTED, Change.REGRESSED):
                    continue
                if d.previous_exercise_id in (None, d.exercise_id):
                    continue
                previous = by_catalog.get(d.previous_exercise_id)
                if (
                    previous is not None
                    and d.ladder == previous.ladder
                    and d.level < previous.level
                ):
                    continue  # down the same ladder
                want(
                    d.exercise_id in tried,
                    f"{d.exercise_id} ({d.change.value} for {d.previous_exercise_id}) was "
                    f"never done before",
                )
        elif key == "directional_reasons_truthful":
            assert run is not None, f"{key} needs the case run"
            preferred = run.condition.directional_preference.value
            for d in rec.exercises:
                if value and "directional_preference" in {r.code for r in d.reasons}:
                    direction = run.catalog.by_id[d.exercise_id].spinal_direction
                    want(
                        direction == preferred,
                        f"{d.exercise_id} cites the {preferred} preference but moves {direction}",
                    )
        elif key == "given_per_week":
            assert run is not None, f"{key} needs the case run"
            monday, sunday = _last_full_week(run.today)
            for name, times in value.items():
                days = {
                    s.date
                    for s in run.history
                    if s.completed and monday <= s.date <= sunday
                    for r in s.exercises
                    if r.performed is not None
                    and (
                        r.exercise_id == name
                        or getattr(run.catalog.by_id.get(r.exercise_id), "ladder", None) == name
                    )
                }
                want(
                    len(days) >= times,
                    f"{name} given on {len(days)} days in the week {monday}..{sunday} "
                    f"({sorted(d.isoformat() for d in days)}), not {times}",
                )
        else:
            bad.append(f"unknown expectation {key!r}")
    return bad
