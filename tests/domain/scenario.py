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
      - days_ago: 6
        pain_before: 3        # session-level fields as in SessionIn
        next_day_pain: 2
        outcome: {pain_during: 1, pain_after: 1, effort: 5}      # every exercise
        exercise_outcomes: {prone-press-up: {symptom_change: peripheralising}}
        performed: as_prescribed | short | skipped               # default as_prescribed
        completed: true
    expect: {...}             # see check()
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from app.api.schemas import ConditionIn, ProfileIn, SessionIn
from app.domain.catalog import Catalog
from app.domain.engine import next_session
from app.domain.types import (
    Change,
    Dose,
    ExerciseResult,
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


def simulate(case: dict[str, Any], catalog: Catalog, today: date) -> tuple[SessionRecord, ...]:
    profile = to_profile(ProfileIn.model_validate(case["profile"]))
    condition = to_condition(ConditionIn.model_validate(case["condition"]), today)
    history: list[SessionRecord] = []
    for step in case.get("simulate", []):
        day = today - timedelta(days=int(step["days_ago"]))
        plan = next_session(profile, condition, tuple(history), catalog, day)
        performed_mode = step.get("performed", "as_prescribed")
        completed = bool(step.get("completed", True))
        base = dict(step.get("outcome", {}))
        named = set(step.get("exercise_outcomes", {}))
        given = {d.exercise_id for d in plan.exercises}
        assert named <= given, (
            f"simulate day -{step['days_ago']}: outcomes for {sorted(named - given)} but the "
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
        history.append(
            SessionRecord(
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
        )
    return tuple(history)


def run_case(case: dict[str, Any], catalog: Catalog) -> Recommendation:
    today = date.fromisoformat(str(case["today"]))
    profile = to_profile(ProfileIn.model_validate(case["profile"]))
    condition = to_condition(ConditionIn.model_validate(case["condition"]), today)
    if "history" in case:
        sessions = [SessionIn.model_validate(s) for s in _jsonable(case["history"])]
        history = to_history(sessions, today, catalog, 200)
    else:
        history = simulate(case, catalog, today)
    return next_session(profile, condition, history, catalog, today)


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


def check(rec: Recommendation, expect: dict[str, Any]) -> list[str]:
    """Every way the recommendation differs from ``expect``; empty when it matches."""
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
                for field, number in spec.get("dose", {}).items():
                    got = getattr(d.dose, field)
                    want(got == number, f"{exercise_id} dose {field} {got} != {number}")
                if "side" in spec:
                    want(d.side.value == spec["side"], f"{exercise_id} side {d.side.value}")
        else:
            bad.append(f"unknown expectation {key!r}")
    return bad
