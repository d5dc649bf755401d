"""Red-flag triage and the signals that ask a clinician to review the plan.

Triage runs before any dosing rule: a red flag that applies to this person ends the decision
with a referral and no exercise. Review signals never stop exercise by themselves; they raise
``clinician_review`` alongside the regressions the rules make.
"""

from __future__ import annotations

from datetime import date

from app.domain.catalog import Catalog
from app.domain.reasons import ReasonCode, reason
from app.domain.types import (
    Condition,
    ConditionKind,
    Contraindication,
    Profile,
    Reason,
    RedFlag,
    Referral,
    ReferralUrgency,
    SessionRecord,
    Side,
    SymptomChange,
    TraceStep,
)

__all__ = ["applicable_red_flags", "review_reasons", "triage_red_flags"]

_URGENCY_ORDER = (ReferralUrgency.EMERGENCY, ReferralUrgency.URGENT, ReferralUrgency.SOON)
# Flags are listed in the order of ``RedFlag``, never in set iteration order.
_RED_FLAG_ORDER = {flag: index for index, flag in enumerate(RedFlag)}
_CLEAR = TraceStep("triage_red_flags", "condition", "clear")


def has_fracture_risk(profile: Profile, catalog: Catalog) -> bool:
    """Older age or osteoporosis: minor trauma may have fractured a vertebra."""
    return (
        profile.age >= catalog.thresholds.fracture_risk_age.value
        or Contraindication.OSTEOPOROSIS in profile.contraindications
    )


def applicable_red_flags(
    profile: Profile, condition: Condition, catalog: Catalog
) -> tuple[tuple[RedFlag, ...], list[TraceStep]]:
    """The reported red flags that apply to this person, plus any the condition implies."""
    flags = set(condition.red_flags)
    trace: list[TraceStep] = []
    if (
        condition.kind is ConditionKind.SCIATICA
        and condition.side is Side.BOTH
        and catalog.thresholds.sciatica_single_side_required.value
    ):
        flags.add(RedFlag.BILATERAL_LEG_SYMPTOMS)
        trace.append(
            TraceStep("derive_bilateral_flag", "condition", "flagged", "sciatica on both sides")
        )
    if flags and not has_fracture_risk(profile, catalog):
        for flag in sorted(flags, key=_RED_FLAG_ORDER.__getitem__):
            if catalog.red_flag_spec[flag].only_with_fracture_risk:
                flags.discard(flag)
                trace.append(
                    TraceStep(
                        "flag_needs_fracture_risk",
                        flag.value,
                        "not_applicable",
                        "age below fracture_risk_age and no osteoporosis",
                    )
                )
    return tuple(sorted(flags, key=_RED_FLAG_ORDER.__getitem__)), trace


def triage_red_flags(
    profile: Profile, condition: Condition, catalog: Catalog
) -> tuple[Referral | None, list[TraceStep]]:
    """Refer, with the most urgent level among the flags, when any red flag applies."""
    flags, trace = applicable_red_flags(profile, condition, catalog)
    if not flags:
        trace.append(_CLEAR)
        return None, trace
    specs = [catalog.red_flag_spec[f] for f in flags]
    urgency = min((s.urgency for s in specs), key=_URGENCY_ORDER.index)
    reasons = tuple(
        reason(ReasonCode.RED_FLAG, "triage_red_flags", detail=spec.text) for spec in specs
    )
    message = {
        ReferralUrgency.EMERGENCY: "Seek emergency care today. Do not start or continue exercise.",
        ReferralUrgency.URGENT: "See a doctor within 24 hours before any exercise.",
        ReferralUrgency.SOON: "Book a doctor's appointment within a week before starting exercise.",
    }[urgency]
    trace.append(
        TraceStep("triage_red_flags", "condition", "refer", f"{urgency.value}: {', '.join(flags)}")
    )
    return Referral(urgency=urgency, flags=flags, message=message, reasons=reasons), trace


def review_reasons(
    profile: Profile,
    condition: Condition,
    last_day: tuple[SessionRecord, ...],
    catalog: Catalog,
    today: date,
) -> list[Reason]:
    """Signals from the person and their last training day (every session logged that day)
    that a clinician should look at."""
    th = catalog.thresholds
    rule = "flag_for_clinician_review"
    out: list[Reason] = []
    if RedFlag.MINOR_TRAUMA in condition.red_flags and not has_fracture_risk(profile, catalog):
        out.append(
            reason(ReasonCode.MINOR_TRAUMA_WITHOUT_FRACTURE_RISK, rule, ("fracture_risk_age",))
        )
    new_pain = (today - condition.onset_date).days <= th.new_pain_days.value
    if new_pain and (profile.age > th.risk_age_over.value or profile.age < th.risk_age_under.value):
        out.append(
            reason(
                ReasonCode.AGE_WITH_NEW_PAIN,
                rule,
                ("risk_age_over", "risk_age_under", "new_pain_days"),
                age=profile.age,
            )
        )
    for advice in catalog.advice_about(profile.contraindications):
        if advice.clinician_review:
            item = advice.contraindication
            out.append(
                reason(
                    ReasonCode.PROFILE_NEEDS_REVIEW,
                    rule,
                    detail=f"{item.value.replace('_', ' ').capitalize()}: a clinician should "
                    "confirm the plan fits your limits.",
                )
            )
    if not last_day:
        return out
    pains: list[int] = []
    efforts: list[int] = []
    for session in last_day:
        for pain in (session.pain_before, session.pain_after, session.next_day_pain):
            if pain is not None:
                pains.append(pain)
        for result in session.exercises:
            for pain in (result.pain_during, result.pain_after):
                if pain is not None:
                    pains.append(pain)
            if result.effort is not None:
                efforts.append(result.effort)
    if pains and max(pains) >= th.pain_alert_min.value:
        out.append(
            reason(
                ReasonCode.PAIN_ALERT,
                rule,
                ("pain_alert_min",),
                value=max(pains),
                limit=int(th.pain_alert_min.value),
            )
        )
    if efforts and max(efforts) >= th.effort_too_hard_min.value:
        out.append(
            reason(
                ReasonCode.EFFORT_ALERT,
                rule,
                ("effort_too_hard_min",),
                value=max(efforts),
                limit=int(th.effort_too_hard_min.value),
            )
        )
    if any(session.new_numbness_or_tingling for session in last_day):
        out.append(reason(ReasonCode.NEW_NUMBNESS_OR_TINGLING, rule))
    if any(
        session.symptom_change is SymptomChange.PERIPHERALISING
        or any(r.symptom_change is SymptomChange.PERIPHERALISING for r in session.exercises)
        for session in last_day
    ):
        out.append(reason(ReasonCode.PERIPHERALISATION, rule))
    return out
