"""What every rule shares: its stage, its source, and the record of the thresholds it read.

A rule is a plain function marked with ``@rule(stage, source)``: the mark adds nothing to a
call, it only lets ``app.domain.rulebook`` list the rule with where it comes from. A rule
reads thresholds through ``Reads``, which records every name read, so a reason cites exactly
the thresholds its rule used (as OpenFisca's tracer does) instead of a hand-written list.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from app.domain.catalog import Threshold, Thresholds
from app.domain.signals import Signal

__all__ = ["Reads", "Stage", "rule", "rule_name", "rule_source", "rule_stage"]


class Stage(StrEnum):
    """The decision's stages, in the order the engine runs them."""

    TRIAGE = "triage"
    REVIEW = "review"
    PROGRAMME = "programme"
    SELECTION = "selection"
    PROGRESSION = "progression"
    EASING = "easing"
    SCHEDULING = "scheduling"


F = TypeVar("F", bound=Callable[..., Any])


def rule(stage: Stage, source: str) -> Callable[[F], F]:
    """Mark a function as a clinical rule of ``stage``, with the source it rests on."""

    def mark(function: F) -> F:
        function.__dict__["rule_stage"] = stage
        function.__dict__["rule_source"] = source
        return function

    return mark


def rule_name(function: Callable[..., Any]) -> str:
    return function.__name__


def rule_stage(function: Callable[..., Any]) -> Stage:
    stage: Stage = function.__dict__["rule_stage"]
    return stage


def rule_source(function: Callable[..., Any]) -> str:
    source: str = function.__dict__["rule_source"]
    return source


class Reads:
    """The thresholds, recording each one read (and each signal relied on) since ``fresh``.

    Each threshold is a property of this class (installed below from ``Thresholds``' fields):
    a property costs a fraction of a ``__getattr__`` fallback, and rules read thresholds in
    every decision.
    """

    __slots__ = ("_th", "names", "plain")

    def __init__(self, th: Thresholds) -> None:
        self._th = th
        # The thresholds themselves, for arithmetic that cites nothing (dose bounds).
        self.plain = th
        self.names: list[str] = []  # every threshold read since the last ``fresh``

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Threshold: ...

    def fresh(self) -> Reads:
        """Forget what was read: a new rule starts citing."""
        self.names.clear()
        return self

    def signal(self, *signals: Signal) -> None:
        """Record that a rule relied on signals: it cites the thresholds defining them."""
        for signal in signals:
            self.names.extend(signal.thresholds)

    def cited(self) -> tuple[str, ...]:
        """Every threshold read so far, in the order first read."""
        return tuple(dict.fromkeys(self.names))


def _reader(name: str) -> property:
    def read(self: Reads) -> Threshold:
        self.names.append(name)
        value: Threshold = getattr(self._th, name)
        return value

    return property(read, doc=f"The threshold ``{name}``, recorded as read.")


for _name in Thresholds.model_fields:
    setattr(Reads, _name, _reader(_name))
