"""The audit vocabulary: every decision cites one or more of these codes.

Codes are stable API values; messages are plain words for the person and may be reworded
between ruleset versions. ``reason()`` fills a message's ``{placeholders}``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import lru_cache
from typing import Any

from app.domain.types import Reason

__all__ = ["MESSAGES", "ReasonCode", "reason"]


class ReasonCode(StrEnum):
    # triage and review
    RED_FLAG = "red_flag"
    MINOR_TRAUMA_WITHOUT_FRACTURE_RISK = "minor_trauma_without_fracture_risk"
    AGE_WITH_NEW_PAIN = "age_with_new_pain"
    PAIN_ALERT = "pain_alert"
    EFFORT_ALERT = "effort_alert"
    NEW_NUMBNESS_OR_TINGLING = "new_numbness_or_tingling"
    NO_MEANINGFUL_CHANGE = "no_meaningful_change"
    PROFILE_NEEDS_REVIEW = "profile_needs_review"
    ALREADY_TRAINED_TODAY = "already_trained_today"
    NOTHING_DUE_TODAY = "nothing_due_today"
    # programme
    NEW_IN_PROGRAMME = "new_in_programme"
    NOT_IN_PHASE = "not_in_phase"
    PHASE_CEILING = "phase_ceiling"
    DIRECTIONAL_PREFERENCE = "directional_preference"
    FLEXION_BIAS_FOR_AGE = "flexion_bias_for_age"
    # progression
    TWO_GREEN_SESSIONS = "two_green_sessions"
    PROGRESS_REPS = "progress_reps"
    PROGRESS_HOLD = "progress_hold"
    PROGRESS_DURATION = "progress_duration"
    PROGRESS_SETS = "progress_sets"
    PROGRESS_LOAD = "progress_load"
    PROGRESS_VARIANT = "progress_variant"
    PROGRESS_FREQUENCY = "progress_frequency"
    AT_CEILING = "at_ceiling"
    SLIDERS_NOT_SYMPTOM_FREE = "sliders_not_symptom_free"
    VOLUME_CAP = "volume_cap"
    # holding
    GREEN_STREAK_TOO_SHORT = "green_streak_too_short"
    NOT_GREEN = "not_green"
    NO_EFFORT_HEADROOM = "no_effort_headroom"
    EFFORT_NOT_REPORTED = "effort_not_reported"
    MISSED_SESSION = "missed_session"
    SESSION_FLARE_HOLD = "session_flare_hold"
    ALERT_HOLD = "alert_hold"
    WEEKLY_PAIN_RISING = "weekly_pain_rising"
    CENTRALISING = "centralising"
    PAIN_ABOVE_BASELINE = "pain_above_baseline"
    REPEATED_FLARES = "repeated_flares"
    NOT_YET_CAPABLE = "not_yet_capable"
    # stepping back
    LONG_GAP = "long_gap"
    PAIN_FLARE = "pain_flare"
    NEXT_DAY_PAIN_UP = "next_day_pain_up"
    PERIPHERALISATION = "peripheralisation"
    TOO_HARD = "too_hard"
    # availability
    EQUIPMENT_MISSING = "equipment_missing"
    CONTRAINDICATED = "contraindicated"
    AVOID_FOR_CONDITION = "avoid_for_condition"
    NO_SAFE_OPTION = "no_safe_option"
    NO_EXERCISE_IN_DIRECTION = "no_exercise_in_direction"
    NO_TRIED_STAND_IN = "no_tried_stand_in"
    WARM_UP_KEPT = "warm_up_kept"
    DIRECTION_STOPPED = "direction_stopped"
    STAND_IN_HOLDS_LEVEL = "stand_in_holds_level"
    BACK_TO_LADDER = "back_to_ladder"
    LEFT_OUT_FOR_TIME = "left_out_for_time"
    STRETCH_HOLD_FOR_AGE = "stretch_hold_for_age"
    STRETCH_A_MINUTE_IN_ALL = "stretch_a_minute_in_all"
    LEFT_OUT_BY_PROTOCOL = "left_out_by_protocol"


MESSAGES: dict[ReasonCode, str] = {
    ReasonCode.RED_FLAG: "{detail}",
    ReasonCode.MINOR_TRAUMA_WITHOUT_FRACTURE_RISK: (
        "Minor trauma was reported; at your age and without osteoporosis it is not a fracture "
        "warning on its own, but see a clinician if pain is severe or keeps you awake."
    ),
    ReasonCode.AGE_WITH_NEW_PAIN: (
        "New back pain at {age} is worth a clinician's look if it is not clearly easing within a "
        "few weeks."
    ),
    ReasonCode.PAIN_ALERT: "Pain reached {value}/10 in the last session (alert level {limit}).",
    ReasonCode.EFFORT_ALERT: "Effort reached {value}/10 in the last session (alert level {limit}).",
    ReasonCode.NEW_NUMBNESS_OR_TINGLING: (
        "New numbness or tingling was reported: movements that load the spine or the nerve "
        "stop for now."
    ),
    ReasonCode.NO_MEANINGFUL_CHANGE: (
        "After {weeks} weeks pain has not fallen by {points} points or {pct}% from the start."
    ),
    ReasonCode.PROFILE_NEEDS_REVIEW: "{detail}",
    ReasonCode.ALREADY_TRAINED_TODAY: "You already completed a session today; rest until {date}.",
    ReasonCode.NOTHING_DUE_TODAY: "Today is a recovery day; the next session is on {date}.",
    ReasonCode.NEW_IN_PROGRAMME: "Added at level {level} of {ladder}, the start for your ability.",
    ReasonCode.NOT_IN_PHASE: "Not part of the {phase} phase of your programme.",
    ReasonCode.PHASE_CEILING: "Level {level} is the highest for the {phase} phase.",
    ReasonCode.DIRECTIONAL_PREFERENCE: "Chosen because {direction} movements ease your symptoms.",
    ReasonCode.FLEXION_BIAS_FOR_AGE: (
        "Over {age} with stenosis-like symptoms, bending movements usually ease the leg; "
        "the plan starts with them."
    ),
    ReasonCode.TWO_GREEN_SESSIONS: (
        "The last {count} sessions at this dose were complete, with pain at or below {pain}/10, "
        "effort at or below {effort}/10 and pain settled by the next morning."
    ),
    ReasonCode.PROGRESS_REPS: "Reps raised from {before} to {after}.",
    ReasonCode.PROGRESS_HOLD: "Hold raised from {before} s to {after} s.",
    ReasonCode.PROGRESS_DURATION: "Duration raised from {before} s to {after} s.",
    ReasonCode.PROGRESS_SETS: "Sets raised from {before} to {after}; reps start again from {reps}.",
    ReasonCode.PROGRESS_LOAD: "Load raised from {before} kg to {after} kg; reps start again low.",
    ReasonCode.PROGRESS_VARIANT: "Moved up to a harder variant: {name}.",
    ReasonCode.PROGRESS_FREQUENCY: "Frequency raised from {before} to {after} {unit}.",
    ReasonCode.SLIDERS_NOT_SYMPTOM_FREE: (
        "The next variant waits until this one is symptom-free for the whole green streak."
    ),
    ReasonCode.AT_CEILING: "This is the top dose and level for now; keep it up.",
    ReasonCode.VOLUME_CAP: (
        "Weekly volume already rose {pct}% in {days} days; the next step waits (cap {limit}%)."
    ),
    ReasonCode.GREEN_STREAK_TOO_SHORT: (
        "{count} of {needed} green sessions at this dose so far; repeat it."
    ),
    ReasonCode.NOT_GREEN: "Pain was {response} when it was last done; the dose stays the same.",
    ReasonCode.NO_EFFORT_HEADROOM: (
        "Effort was {value}/10; progress waits until it is {limit} or less."
    ),
    ReasonCode.EFFORT_NOT_REPORTED: (
        "Effort was not reported; progress waits for a report of {limit}/10 or less."
    ),
    ReasonCode.MISSED_SESSION: "The last session was missed; repeat before moving on.",
    ReasonCode.SESSION_FLARE_HOLD: (
        "Symptoms flared in the last session, so nothing is made harder today."
    ),
    ReasonCode.ALERT_HOLD: (
        "Pain or effort reached the alert level last session; nothing is made harder, and "
        "progress needs two calm sessions after it."
    ),
    ReasonCode.WEEKLY_PAIN_RISING: (
        "Pain before sessions averaged {after}/10 this week against {before}/10 last week; "
        "nothing is made harder until it settles."
    ),
    ReasonCode.CENTRALISING: "Leg symptoms moved towards the spine: a good sign; keep going.",
    ReasonCode.PAIN_ABOVE_BASELINE: (
        "Pain {measure} {recent}/10, against {reference}/10 at the {against}: nothing is made "
        "harder and the phase holds while it stays this high; a clinician should look at it."
    ),
    ReasonCode.REPEATED_FLARES: (
        "Symptoms flared on {count} days in the last {days} days: nothing new is added and "
        "nothing is made harder while flares are this frequent; a clinician should review "
        "the plan."
    ),
    ReasonCode.NOT_YET_CAPABLE: (
        "The {phase} phase waits until {ladder} reaches level {level} (now level {current})."
    ),
    ReasonCode.LONG_GAP: "{days} days since the last session (more than {limit}): one step back.",
    ReasonCode.PAIN_FLARE: "Pain during this exercise reached {value}/10 (limit {limit}).",
    ReasonCode.NEXT_DAY_PAIN_UP: (
        "Pain the next morning was {after}/10 against {before}/10 before the session: load reduced."
    ),
    ReasonCode.PERIPHERALISATION: (
        "Symptoms spread further down the leg: this movement stops, for an easier or "
        "spine-neutral one where there is one."
    ),
    ReasonCode.TOO_HARD: "{detail}",
    ReasonCode.EQUIPMENT_MISSING: "{name} needs {equipment}, which you do not have.",
    ReasonCode.CONTRAINDICATED: "{name} is not advised with {item}: {note}",
    ReasonCode.AVOID_FOR_CONDITION: "{name} is avoided for {condition}: {note}",
    ReasonCode.BACK_TO_LADDER: "Back to the programme's own exercise for this slot: {name}.",
    ReasonCode.DIRECTION_STOPPED: (
        "Movements into {direction} spread your symptoms on {date}; they stay out for {days} days."
    ),
    ReasonCode.STAND_IN_HOLDS_LEVEL: (
        "It stands in for the {slot} exercise, so it keeps its level until that one returns."
    ),
    ReasonCode.NO_SAFE_OPTION: "No suitable variant or alternative fits you, so it is left out.",
    ReasonCode.NO_EXERCISE_IN_DIRECTION: (
        "No {direction} exercise is permitted for you, so this slot is left out; a clinician "
        "can suggest one."
    ),
    ReasonCode.NO_TRIED_STAND_IN: (
        "Left out until symptoms settle: no easier step remains and no stand-in you have "
        "already done without trouble fits."
    ),
    ReasonCode.WARM_UP_KEPT: (
        "A session always opens with a warm-up: this one stays at its gentlest dose."
    ),
    ReasonCode.LEFT_OUT_FOR_TIME: "Left out today to fit your {minutes} minutes.",
    ReasonCode.STRETCH_HOLD_FOR_AGE: (
        "Stretch holds are {low}-{high} s for people aged {age} and over."
    ),
    ReasonCode.STRETCH_A_MINUTE_IN_ALL: (
        "Each stretch is repeated until the holds add up to about {total} s."
    ),
    ReasonCode.LEFT_OUT_BY_PROTOCOL: "Left out for now: {why}.",
}


@lru_cache(maxsize=8192)
def reason(
    code: ReasonCode,
    rule: Callable[..., Any],
    thresholds: tuple[str, ...] = (),
    **values: object,
) -> Reason:
    """Build a ``Reason`` whose message is the code's template filled with ``values``.

    ``rule`` is the rule function itself (listed in ``app.domain.rulebook.RULEBOOK``), never a
    string, so every reason maps to a listed rule; ``thresholds`` are those it read
    (``Reads.cited``). Reasons are immutable and most repeat from one decision to the next,
    so they are memoised.
    """
    return Reason(
        code=code,  # a StrEnum member is the code string itself
        message=MESSAGES[code].format(**values) if values else MESSAGES[code],
        rule=rule.__name__,
        thresholds=thresholds,
    )
