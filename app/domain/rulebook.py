"""``RULEBOOK``: every clinical rule, in stage order, as data.

Each entry is the rule function itself, so a reason cites its rule by name and every name
it can cite is listed here (a test checks both ways). ``GET /v1/ruleset`` publishes it.
Within the progression stage the order is precedence: the first rule with an outcome wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.domain.rules import (
    easing,
    programme,
    progression,
    review,
    scheduling,
    selection,
    stepping,
    triage,
)
from app.domain.rules.base import Stage, rule_source, rule_stage

__all__ = ["RULEBOOK", "RuleEntry", "rule_entries"]

RULEBOOK: tuple[Callable[..., Any], ...] = (
    # triage
    triage.triage_red_flags,
    triage.derive_bilateral_flag,
    triage.flag_needs_fracture_risk,
    # review
    *review.REVIEW_CHECKS,
    # programme
    programme.read_history_window,
    programme.select_phase,
    programme.require_capability_to_maintain,
    programme.flexion_bias_for_stenosis,
    programme.episode_stage,
    programme.build_session_from_phase,
    # selection
    *selection.EXCLUSIONS,
    selection.start_by_ability,
    selection.follow_directional_preference,
    selection.cap_level_by_phase,
    selection.sliders_before_tensioners,
    selection.stand_ins_keep_their_level,
    selection.is_stand_in_family,
    selection.fit_to_person,
    selection.return_to_the_slot_ladder,
    selection.one_exercise_per_slot,
    selection.hold_stretches_longer_for_older_adults,
    selection.repeat_stretches_to_a_minute,
    selection.leave_out_what_the_protocol_leaves_out,
    # progression, in precedence order, then how a step is carried out
    *progression.RULES,
    progression.note_centralisation,
    stepping.progress_one_variable,
    stepping.cap_weekly_volume_growth,
    # easing
    easing.ease_down,
    easing.keep_a_warm_up,
    easing.step_back_one_level,
    easing.stop_the_direction,
    # scheduling and layout
    scheduling.rest_between_loading_days,
    scheduling.fit_to_minutes_available,
    scheduling.lay_out_session,
    scheduling.schedule_next_session,
    scheduling.schedule_rest_days,
)


@dataclass(frozen=True, slots=True)
class RuleEntry:
    """One rule as published: its name, stage, plain-words statement and source."""

    name: str
    stage: Stage
    statement: str
    source: str


def _statement(function: Callable[..., Any]) -> str:
    doc = " ".join((function.__doc__ or "").split())
    # The first sentence: what a clinician checks against the source.
    end = doc.find(". ")
    return doc if end < 0 else doc[: end + 1]


def rule_entries() -> tuple[RuleEntry, ...]:
    """The rulebook as data, in stage order."""
    return tuple(
        RuleEntry(f.__name__, rule_stage(f), _statement(f), rule_source(f)) for f in RULEBOOK
    )
