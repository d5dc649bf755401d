"""What a progression rule reads and returns: the exercise's state, and an outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from app.domain.catalog import Exercise, Slot
from app.domain.dosing import DoseBounds
from app.domain.history import Appearance, HistoryView
from app.domain.rules.base import Reads
from app.domain.rules.context import Recent
from app.domain.types import Condition, Dose, Reason

__all__ = ["Action", "ExerciseState", "RuleOutcome", "dose_key"]


class Action(StrEnum):
    STEP_BACK_LEVEL = "step_back_level"
    STOP_DIRECTION = "stop_direction"
    LOWER_DOSE = "lower_dose"
    HOLD = "hold"
    PROGRESS = "progress"


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    action: Action
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class ExerciseState:
    exercise: Exercise
    dose: Dose
    bounds: DoseBounds
    appearances: list[Appearance]  # newest first
    latest: Appearance  # appearances[0], or the alternative the slot was last swapped to
    th: Reads
    slot: Slot
    condition: Condition
    history: HistoryView
    recent: Recent
    today: date


def dose_key(dose: Dose) -> tuple[object, ...]:
    """The parts of a dose that define "the same dose" for the green gate."""
    return (
        dose.sets,
        dose.reps,
        dose.hold_seconds,
        dose.duration_seconds,
        dose.load_kg,
        dose.per_week,
        dose.per_day,
    )
