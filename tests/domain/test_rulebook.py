"""The rulebook is complete and honest: every reason and trace step names a listed rule,
every listed rule acts in some scenario, and every reason cites exactly the thresholds its
rule read.

All scenarios run once under a profiler that knows each rule's code object. While a rule's
frame is the innermost rule on the stack, every threshold read from a spying ``Thresholds``
is charged to it; when the frame returns, the reasons it made (in its return value or in a
list it was handed) must cite those thresholds and no others, except the thresholds of the
signals (``app.domain.signals``) that define what it relied on, which were read when the
signals were computed.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pytest

from app.catalog.loader import default_catalog
from app.domain import signals
from app.domain.catalog import Catalog, Thresholds
from app.domain.reasons import MESSAGES, ReasonCode
from app.domain.rulebook import RULEBOOK, rule_entries
from app.domain.rules.base import Stage
from app.domain.types import Reason, Recommendation
from tests.domain.scenario import CASES_DIR, load_case, run_case

FIELDS = frozenset(Thresholds.model_fields)
RULE_NAMES = {f.__name__ for f in RULEBOOK}
RULE_CODES = {f.__code__: f.__name__ for f in RULEBOOK}
# Rules whose outcome is a value the next stage reads (a phase, a bool, a stage, a layout),
# so they never write a reason of their own; they must still run in the scenarios.
VALUE_RULES = frozenset(
    {
        "is_stand_in_family",
        "episode_stage",
        "schedule_next_session",
        "ease_down",
        "step_back_one_level",
        "stop_the_direction",
    }
)
# Memoised dose arithmetic reads the age bands only on a cache miss, whichever rule asks:
# those reads are the dose bounds', not the rule's (hold_stretches_longer_for_older_adults
# cites them).
_UNCHARGED_FRAMES = frozenset({"_prescription"})


class _Spy(Thresholds):
    """Thresholds that report every field read to the profiler below."""

    def __getattribute__(self, name: str) -> Any:
        if name in FIELDS and _STACK:
            _STACK[-1].read.add(name)
        return super().__getattribute__(name)


@dataclass
class _Frame:
    rule: str
    read: set[str] = field(default_factory=set)


_STACK: list[_Frame] = []


@dataclass
class Watch:
    ran: set[str] = field(default_factory=set)
    # Every reason seen coming out of its own rule's frame: (rule, code, message).
    made: set[tuple[str, str, str]] = field(default_factory=set)
    cited: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    wrong: list[str] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)


def _reasons_in(value: Any, depth: int = 0) -> Iterator[Reason]:
    if isinstance(value, Reason):
        yield value
    elif depth < 3 and isinstance(value, list | tuple):
        for item in value:
            yield from _reasons_in(item, depth + 1)
    elif depth < 3 and hasattr(value, "reasons") and isinstance(value.reasons, tuple):
        yield from _reasons_in(value.reasons, depth + 1)


def _signal_thresholds(code_names: set[str]) -> set[str]:
    """The thresholds of the signals a rule's code names (``th.signal(FLARE)``)."""
    out: set[str] = set()
    for name in code_names:
        signal = getattr(signals, name, None)
        if isinstance(signal, signals.Signal):
            out |= set(signal.thresholds)
    return out


def _profile(watch: Watch) -> Any:
    def hook(frame: FrameType, event: str, arg: Any) -> None:
        code = frame.f_code
        rule = RULE_CODES.get(code)
        if rule is None:
            if code.co_name in _UNCHARGED_FRAMES and event == "call":
                _STACK.append(_Frame("(dose bounds)"))
            elif code.co_name in _UNCHARGED_FRAMES and event == "return":
                _STACK.pop()
            return
        if event == "call":
            watch.ran.add(rule)
            _STACK.append(_Frame(rule))
        elif event == "return":
            top = _STACK.pop()
            made = [r for r in _reasons_in(arg) if r.rule == rule]
            for value in frame.f_locals.values():
                if isinstance(value, list):
                    made += [r for r in _reasons_in(value) if r.rule == rule]
            allowed = top.read | _signal_thresholds(set(code.co_names))
            for r in made:
                watch.made.add((r.rule, r.code, r.message))
                cited = set(r.thresholds)
                watch.cited[rule] |= cited
                if not top.read <= cited or not cited <= allowed:
                    watch.wrong.append(
                        f"{rule} ({r.code}): cited {sorted(cited)}, read {sorted(top.read)}"
                    )

    return hook


@pytest.fixture(scope="module")
def watch() -> Watch:
    base = default_catalog()
    spy = _Spy.model_validate(base.thresholds.model_dump())
    fields = {name: getattr(base, name) for name in Catalog.model_fields}
    catalog = Catalog.model_validate({**fields, "thresholds": spy})
    assert isinstance(catalog.thresholds, _Spy)
    result = Watch()
    previous = sys.getprofile()
    sys.setprofile(_profile(result))
    try:
        for path in sorted(CASES_DIR.glob("*.yaml")):
            result.recommendations.append(run_case(load_case(path), catalog))
    finally:
        sys.setprofile(previous)
        _STACK.clear()
    return result


def _all_reasons(rec: Recommendation) -> Iterator[Reason]:
    for decision in (*rec.exercises, *rec.removed):
        yield from decision.reasons
    yield from rec.clinician_review.reasons
    yield from rec.status_reasons
    if rec.referral is not None:
        yield from rec.referral.reasons


def test_the_rulebook_lists_each_rule_once_in_stage_order() -> None:
    entries = rule_entries()
    assert len({e.name for e in entries}) == len(entries)
    stages = [list(Stage).index(e.stage) for e in entries]
    assert stages == sorted(stages)
    for entry in entries:
        assert entry.statement.endswith("."), entry.name  # a sentence a clinician can check
        assert len(entry.source) >= 10, entry.name


def test_every_reason_and_trace_step_names_a_listed_rule(watch: Watch) -> None:
    for rec in watch.recommendations:
        for r in _all_reasons(rec):
            assert r.rule in RULE_NAMES, (r.code, r.rule)
        for step in rec.trace:
            assert step.rule in RULE_NAMES, step


def test_every_listed_rule_acts_in_some_scenario(watch: Watch) -> None:
    """A rule either cites itself in a reason or a trace step of some scenario, or is one of
    the few that hand a value to the next stage (and then it must at least have run)."""
    named = {r.rule for rec in watch.recommendations for r in _all_reasons(rec)}
    named |= {s.rule for rec in watch.recommendations for s in rec.trace}
    silent = RULE_NAMES - named
    assert silent <= VALUE_RULES, f"rules with no scenario: {sorted(silent - VALUE_RULES)}"
    assert watch.ran >= VALUE_RULES, sorted(VALUE_RULES - watch.ran)


def test_every_reason_cites_exactly_the_thresholds_its_rule_read(watch: Watch) -> None:
    assert not watch.wrong, "\n".join(sorted(set(watch.wrong)))
    # Every reason a person sees was made by its own rule, so the check above saw it.
    outside = {
        (r.rule, r.code)
        for rec in watch.recommendations
        for r in _all_reasons(rec)
        if (r.rule, r.code, r.message) not in watch.made
    }
    assert not outside, f"reasons made outside their rule: {sorted(outside)}"
    # Not vacuous: the rules that compare against numbers did cite them.
    assert "pain_acceptable_max" in watch.cited["regress_on_pain_flare"]
    assert "green_sessions_to_progress" in watch.cited["progress_after_green_sessions"]


def test_every_reason_code_has_a_message() -> None:
    assert set(MESSAGES) == set(ReasonCode)


def test_the_profiler_sees_reads(watch: Watch) -> None:
    """The spy is wired in: without it every citation check above would pass vacuously."""
    assert watch.cited, "no reason was made under the profiler"
    assert any(watch.cited.values())
