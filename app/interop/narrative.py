"""Plain-words renderings of doses and red flags, shared by the FHIR mapping and the CDS
Hooks cards. Kept apart from ``app.interop.fhir`` so that the cards do not load the FHIR
models, which only an export needs.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.api.schemas import DoseOut
from app.domain.types import RedFlag

__all__ = ["FHIR_JSON", "RED_FLAG_WORDS", "dose_words", "plural"]

FHIR_JSON = "application/fhir+json"

RED_FLAG_WORDS: Mapping[RedFlag, str] = {
    RedFlag.MAJOR_TRAUMA: "major trauma",
    RedFlag.MINOR_TRAUMA: "minor trauma",
    RedFlag.HISTORY_OF_CANCER: "a history of cancer",
    RedFlag.FEVER_OR_CHILLS: "fever or chills",
    RedFlag.UNEXPLAINED_WEIGHT_LOSS: "unexplained weight loss",
    RedFlag.IV_DRUG_USE: "intravenous drug use",
    RedFlag.IMMUNOSUPPRESSION: "immunosuppression",
    RedFlag.SEVERE_NIGHT_PAIN: "severe pain at night",
    RedFlag.PAIN_WORSE_LYING_DOWN: "pain worse when lying down",
    RedFlag.SADDLE_NUMBNESS: "saddle numbness",
    RedFlag.BLADDER_OR_BOWEL_DYSFUNCTION: "bladder or bowel dysfunction",
    RedFlag.PROGRESSIVE_LEG_WEAKNESS: "progressive leg weakness",
    RedFlag.BILATERAL_LEG_SYMPTOMS: "symptoms in both legs",
}


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _duration(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds} s"


def dose_words(dose: DoseOut, *, schedule: bool = True) -> str:
    """A dose in plain words, only the parts it has: "2 sets of 10 reps, each side, rest
    30 s; 3 days a week". ``schedule=False`` leaves out how often (for one session)."""
    sets = plural(dose.sets, "set")
    if dose.reps is not None:
        parts = [f"{sets} of {plural(dose.reps, 'rep')}"]
        if dose.duration_seconds is not None:
            parts.append(f"{_duration(dose.duration_seconds)} each")
    elif dose.duration_seconds is not None:
        parts = [f"{sets} of {_duration(dose.duration_seconds)}"]
    else:
        parts = [sets]
    if dose.hold_seconds is not None:
        parts.append(f"hold {_duration(dose.hold_seconds)}")
    if dose.load_kg:
        parts.append(f"with {dose.load_kg:g} kg")
    if dose.per_side:
        parts.append("each side")
    if dose.rest_seconds:
        parts.append(f"rest {dose.rest_seconds} s")
    text = ", ".join(parts)
    if schedule:
        text += f"; {plural(dose.per_week, 'day')} a week"
        if dose.per_day > 1:
            text += f", {dose.per_day} times a day"
    return text
