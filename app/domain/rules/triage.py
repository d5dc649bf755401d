"""Triage: red flags lead to referral, and nothing else is decided (AHCPR table, NBK52120).

Triage runs before any other stage: a red flag that applies to this person ends the decision
with a referral and no exercise.
"""

from __future__ import annotations

from app.domain.catalog import Catalog
from app.domain.reasons import ReasonCode, reason
from app.domain.rules.base import Reads, Stage, rule
from app.domain.types import (
    Condition,
    ConditionKind,
    Contraindication,
    Profile,
    RedFlag,
    Referral,
    ReferralUrgency,
    Side,
    TraceStep,
)

__all__ = [
    "applicable_red_flags",
    "derive_bilateral_flag",
    "flag_needs_fracture_risk",
    "has_fracture_risk",
    "triage_red_flags",
]

_URGENCY_ORDER = (ReferralUrgency.EMERGENCY, ReferralUrgency.URGENT, ReferralUrgency.SOON)
# Flags are listed in the order of ``RedFlag``, never in set iteration order.
_RED_FLAG_ORDER = {flag: index for index, flag in enumerate(RedFlag)}
_MESSAGE = {
    ReferralUrgency.EMERGENCY: "Seek emergency care today. Do not start or continue exercise.",
    ReferralUrgency.URGENT: "See a doctor within 24 hours before any exercise.",
    ReferralUrgency.SOON: "Book a doctor's appointment within a week before starting exercise.",
}


def has_fracture_risk(profile: Profile, th: Reads) -> bool:
    """Older age or osteoporosis: minor trauma may have fractured a vertebra."""
    return (
        profile.age >= th.fracture_risk_age.value
        or Contraindication.OSTEOPOROSIS in profile.contraindications
    )


@rule(Stage.TRIAGE, "AHCPR red-flag table (bilateral leg symptoms: possible cauda equina)")
def derive_bilateral_flag(condition: Condition, th: Reads) -> RedFlag | None:
    """Sciatica in both legs is bilateral leg symptoms, a cauda equina red flag."""
    if (
        condition.kind is ConditionKind.SCIATICA
        and condition.side is Side.BOTH
        and th.sciatica_single_side_required.value
    ):
        return RedFlag.BILATERAL_LEG_SYMPTOMS
    return None


@rule(Stage.TRIAGE, "AHCPR red-flag table (minor trauma in older or osteoporotic people)")
def flag_needs_fracture_risk(flag: RedFlag, profile: Profile, catalog: Catalog, th: Reads) -> bool:
    """A fracture flag from minor trauma counts only with fracture risk (age or osteoporosis)."""
    return catalog.red_flag_spec[flag].only_with_fracture_risk and not has_fracture_risk(
        profile, th
    )


def applicable_red_flags(
    profile: Profile, condition: Condition, catalog: Catalog
) -> tuple[tuple[RedFlag, ...], list[TraceStep]]:
    """The reported red flags that apply to this person, plus any the condition implies."""
    th = Reads(catalog.thresholds)
    flags = set(condition.red_flags)
    trace: list[TraceStep] = []
    derived = derive_bilateral_flag(condition, th)
    if derived is not None:
        flags.add(derived)
        trace.append(
            TraceStep(
                derive_bilateral_flag.__name__, "condition", "flagged", "sciatica on both sides"
            )
        )
    for flag in sorted(flags, key=_RED_FLAG_ORDER.__getitem__):
        if flag_needs_fracture_risk(flag, profile, catalog, th):
            flags.discard(flag)
            trace.append(
                TraceStep(
                    flag_needs_fracture_risk.__name__,
                    flag.value,
                    "not_applicable",
                    "age below fracture_risk_age and no osteoporosis",
                )
            )
    return tuple(sorted(flags, key=_RED_FLAG_ORDER.__getitem__)), trace


@rule(Stage.TRIAGE, "AHCPR red-flag table, NCBI NBK52120; clinical rules §1 step 1")
def triage_red_flags(
    profile: Profile, condition: Condition, catalog: Catalog
) -> tuple[Referral | None, list[TraceStep]]:
    """Any red flag that applies refers the person, at the most urgent level among the flags,
    and no exercise is given."""
    flags, trace = applicable_red_flags(profile, condition, catalog)
    if not flags:
        trace.append(TraceStep(triage_red_flags.__name__, "condition", "clear"))
        return None, trace
    specs = [catalog.red_flag_spec[f] for f in flags]
    urgency = min((s.urgency for s in specs), key=_URGENCY_ORDER.index)
    reasons = tuple(
        reason(ReasonCode.RED_FLAG, triage_red_flags, detail=spec.text) for spec in specs
    )
    trace.append(
        TraceStep(
            triage_red_flags.__name__, "condition", "refer", f"{urgency.value}: {', '.join(flags)}"
        )
    )
    return Referral(urgency, flags, _MESSAGE[urgency], reasons), trace
