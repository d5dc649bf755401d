"""Reading a session history: the decision window, the index over it, and the phase fold
that carries everything older (see the modules' docstrings)."""

from app.domain.history.fold import (
    PhaseFold,
    fold_training_days,
    phase_for_day,
    phase_reached,
    resume_fold,
    summarise_history,
)
from app.domain.history.view import Appearance, HistoryView, reported_pain
from app.domain.history.window import ordered_sessions, split_history, window_start

__all__ = [
    "Appearance",
    "HistoryView",
    "PhaseFold",
    "fold_training_days",
    "ordered_sessions",
    "phase_for_day",
    "phase_reached",
    "reported_pain",
    "resume_fold",
    "split_history",
    "summarise_history",
    "window_start",
]
