"""Review: one function per signal that asks a clinician to look at the plan.

Review checks never stop exercise by themselves; they raise ``clinician_review`` alongside
what the other stages decide. ``REVIEW_CHECKS`` runs in order, and each check's reason cites
the thresholds it read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.domain.catalog import Catalog
from app.domain.reasons import ReasonCode, reason
from app.domain.rules.base import Reads, Stage, rule
from app.domain.rules.triage import has_fracture_risk
from app.domain.signals import PAIN_RISEN, REPEATED_FLARES, TrainingDay
from app.domain.trends import PainRise
from app.domain.types import (
    Condition,
    Profile,
    ProgrammePosition,
    Reason,
    RedFlag,
    SessionRecord,
    SymptomChange,
)

__all__ = ["REVIEW_CHECKS", "ReviewFacts", "review_reasons"]


@dataclass(frozen=True, slots=True)
class ReviewFacts:
    """What the review checks read: the person, their last training day and the trends."""

    profile: Profile
    condition: Condition
    catalog: Catalog
    today: date
    last_days: tuple[TrainingDay, ...]  # the last training day and any log after it
    pain_rise: PainRise | None
    flare_days: int
    position: ProgrammePosition | None
    latest_pain: int | None


@rule(Stage.REVIEW, "AHCPR red-flag table (minor trauma is a fracture flag only with risk)")
def review_minor_trauma(f: ReviewFacts, th: Reads) -> Reason | None:
    """Minor trauma without fracture risk is not a referral, but a clinician should know."""
    if RedFlag.MINOR_TRAUMA not in f.condition.red_flags or has_fracture_risk(f.profile, th):
        return None
    return reason(ReasonCode.MINOR_TRAUMA_WITHOUT_FRACTURE_RISK, review_minor_trauma, th.cited())


@rule(Stage.REVIEW, "AHCPR red-flag table; Downie 2013 (age alone is a weak signal)")
def review_age_with_new_pain(f: ReviewFacts, th: Reads) -> Reason | None:
    """New pain above or below the risk ages asks for review (not referral on its own)."""
    if (f.today - f.condition.onset_date).days > th.new_pain_days.value:
        return None
    age = f.profile.age
    if not (age > th.risk_age_over.value or age < th.risk_age_under.value):
        return None
    return reason(ReasonCode.AGE_WITH_NEW_PAIN, review_age_with_new_pain, th.cited(), age=age)


@rule(Stage.REVIEW, "Catalog profile advice (each contraindication that needs a clinician)")
def review_profile(f: ReviewFacts, th: Reads) -> Reason | None:  # noqa: ARG001
    """A contraindication marked for review (recent surgery, for one) asks for a clinician."""
    for advice in f.catalog.advice_about(f.profile.contraindications):
        if advice.clinician_review:
            item = advice.contraindication.value.replace("_", " ").capitalize()
            return reason(
                ReasonCode.PROFILE_NEEDS_REVIEW,
                review_profile,
                detail=f"{item}: a clinician should confirm the plan fits your limits.",
            )
    return None


def _sessions(f: ReviewFacts) -> list[SessionRecord]:
    return [s for day in f.last_days for s in day.sessions]


def _day_pains(f: ReviewFacts) -> list[int]:
    pains: list[int] = []
    for session in _sessions(f):
        for pain in (session.pain_before, session.pain_after, session.next_day_pain):
            if pain is not None:
                pains.append(pain)
        for result in session.exercises:
            for pain in (result.pain_during, result.pain_after):
                if pain is not None:
                    pains.append(pain)
    return pains


@rule(Stage.REVIEW, "Commercial alert conventions (OktaHealth pain >= 7; PhysiApp)")
def review_pain_alert(f: ReviewFacts, th: Reads) -> Reason | None:
    """Pain at the alert level at any point of the last training day (or a log after it)."""
    pains = _day_pains(f)
    limit = th.pain_alert_min.value
    if not pains or max(pains) < limit:
        return None
    return reason(
        ReasonCode.PAIN_ALERT, review_pain_alert, th.cited(), value=max(pains), limit=int(limit)
    )


@rule(Stage.REVIEW, "OktaHealth clinician alert convention (effort >= 9)")
def review_effort_alert(f: ReviewFacts, th: Reads) -> Reason | None:
    """Effort at the too-hard level in any exercise of the last training day."""
    efforts = [r.effort for s in _sessions(f) for r in s.exercises if r.effort is not None]
    limit = th.effort_too_hard_min.value
    if not efforts or max(efforts) < limit:
        return None
    return reason(
        ReasonCode.EFFORT_ALERT,
        review_effort_alert,
        th.cited(),
        value=max(efforts),
        limit=int(limit),
    )


@rule(Stage.REVIEW, "Clinical rules §1 step 2 (new numbness or tingling is a yellow signal)")
def review_new_numbness(f: ReviewFacts, th: Reads) -> Reason | None:  # noqa: ARG001
    """New numbness or tingling reported on the last training day (or a log after it)."""
    if not any(s.new_numbness_or_tingling for s in _sessions(f)):
        return None
    return reason(ReasonCode.NEW_NUMBNESS_OR_TINGLING, review_new_numbness)


@rule(Stage.REVIEW, "Hebert 2011; May 2018 (peripheralisation: stop that direction, review)")
def review_peripheralisation(f: ReviewFacts, th: Reads) -> Reason | None:  # noqa: ARG001
    """Symptoms spreading down the leg on the last training day (or a log after it)."""
    if not any(
        s.symptom_change is SymptomChange.PERIPHERALISING
        or any(r.symptom_change is SymptomChange.PERIPHERALISING for r in s.exercises)
        for s in _sessions(f)
    ):
        return None
    return reason(ReasonCode.PERIPHERALISATION, review_peripheralisation)


@rule(Stage.REVIEW, "Ostelo 2008; Farrar 2001 (2 points or 30 %); clinical rules §10")
def review_pain_above_baseline(f: ReviewFacts, th: Reads) -> Reason | None:
    """Pain risen by the important change over the baseline or the first weeks."""
    rise = f.pain_rise
    if rise is None:
        return None
    th.signal(PAIN_RISEN)
    return reason(
        ReasonCode.PAIN_ABOVE_BASELINE,
        review_pain_above_baseline,
        th.cited(),
        recent=rise.recent,
        reference=rise.reference,
        against=rise.against,
        measure=rise.measure,
    )


@rule(Stage.REVIEW, "MedBridge Pathways escalation tiers (convention); clinical rules §10")
def review_repeated_flares(f: ReviewFacts, th: Reads) -> Reason | None:
    """Repeated flares within the window ask for a clinician, not for one more easing."""
    if f.flare_days < th.repeated_flares_count.value:
        return None
    th.signal(REPEATED_FLARES)
    return reason(
        ReasonCode.REPEATED_FLARES,
        review_repeated_flares,
        th.cited(),
        count=f.flare_days,
        days=int(th.repeated_flares_window_days.value),
    )


@rule(Stage.REVIEW, "Ostelo 2008 (meaningful change); flag after 6-8 weeks (clinical rules §8)")
def review_no_meaningful_change(f: ReviewFacts, th: Reads) -> Reason | None:
    """After the review period, pain has not fallen by the meaningful-change margin."""
    pain, position = f.latest_pain, f.position
    if pain is None or position is None or position.week <= th.no_change_review_weeks.value:
        return None
    baseline = f.condition.baseline_pain
    needed = min(th.meaningful_change_points.value, baseline * th.meaningful_change_pct.value / 100)
    if baseline == 0 or baseline - pain >= needed:
        return None
    return reason(
        ReasonCode.NO_MEANINGFUL_CHANGE,
        review_no_meaningful_change,
        th.cited(),
        weeks=position.week - 1,
        points=int(th.meaningful_change_points.value),
        pct=int(th.meaningful_change_pct.value),
    )


REVIEW_CHECKS = (
    review_minor_trauma,
    review_age_with_new_pain,
    review_profile,
    review_pain_alert,
    review_effort_alert,
    review_new_numbness,
    review_peripheralisation,
    review_pain_above_baseline,
    review_repeated_flares,
    review_no_meaningful_change,
)


def review_reasons(facts: ReviewFacts) -> list[Reason]:
    """Every review check's reason, in ``REVIEW_CHECKS`` order."""
    th = Reads(facts.catalog.thresholds)
    out: list[Reason] = []
    for check in REVIEW_CHECKS:
        found = check(facts, th.fresh())
        if found is not None:
            out.append(found)
    return out
