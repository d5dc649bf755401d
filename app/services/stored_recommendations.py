"""Recommendations decided from what is stored, kept with their exact inputs, and replayed.

A decision reads a bounded window of the episode's newest sessions (an index range scan)
plus the episode's history summary: everything older, folded once and kept. So a decision
costs the same for 10 or 10,000 stored sessions. The summary is extended as sessions leave
the window and rebuilt from scratch only when it is stale (a session written on or before
its last folded day, or a change to the ruleset or to what the fold depends on).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.api.resources import (
    Difference,
    RecommendationInputs,
    ReplayOut,
    StoredRecommendationDetail,
    StoredRecommendationOut,
    StoredRecommendationPage,
)
from app.api.schemas import RecommendationOut
from app.db.codec import (
    condition_from_json,
    condition_json,
    profile_from_json,
    profile_json,
    session_from_json,
    session_json,
    summary_from_json,
    summary_json,
)
from app.db.models import RecommendationRecord
from app.db.repositories import (
    HistorySummaries,
    Recommendations,
    Sessions,
    condition_of,
    profile_of,
)
from app.domain.catalog import Catalog
from app.domain.engine import next_session
from app.domain.history import summarise_history, window_start
from app.domain.types import Condition, HistorySummary, Recommendation
from app.errors import Conflict, NotFound
from app.services.conditions import active_episode
from app.services.users import find_user
from app.telemetry import count_recommendation

__all__ = [
    "get_recommendation",
    "list_recommendations",
    "recommend_for_user",
    "replay_recommendation",
    "stored_out",
]

# Bump when the fold itself changes in code without a ruleset change: stored summaries are
# then folded again rather than reused.
SUMMARY_FORMAT = "summary-2"
# Enough differences to see what moved, few enough to stay readable.
MAX_DIFFERENCES = 100


def summary_basis(catalog: Catalog, condition: Condition) -> str:
    """What a history summary depends on: the ruleset and the episode's kind, onset and
    baseline pain (the phase fold reads all of them)."""
    text = "|".join(
        (
            SUMMARY_FORMAT,
            catalog.ruleset_version,
            condition.kind.value,
            condition.onset_date.isoformat(),
            str(condition.baseline_pain),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _history_for(
    session: Session, episode_id: str, condition: Condition, catalog: Catalog, today: date
) -> tuple[list[Any], HistorySummary | None]:
    th = catalog.thresholds
    sessions = Sessions(session)
    days = int(th.history_window_days.value)
    cap = int(th.history_window_sessions.value)
    since = today - timedelta(days=days - 1)
    start = window_start(sessions.newest_dates(episode_id, since, today, cap + 1), today, th)

    summaries = HistorySummaries(session)
    basis = summary_basis(catalog, condition)
    summary = summaries.get(episode_id, basis)
    if summary is not None and summary.through >= start:
        summary = None  # the window reaches back into what was folded: rebuild
    older = list(sessions.between(episode_id, summary.through if summary else None, start))
    if older:
        summary = summarise_history(summary, older, condition, catalog)
        assert summary is not None
        summaries.save(episode_id, basis, summary)
    return sessions.window(episode_id, start, today), summary


def stored_out(record: RecommendationRecord) -> StoredRecommendationOut:
    return StoredRecommendationOut(
        id=record.id,
        user_id=record.user_id,
        condition_id=record.condition_id,
        created_at=record.created_at,
        ruleset_version=record.ruleset_version,
        recommendation=RecommendationOut.model_validate(record.output),
    )


def _output(decision: Recommendation) -> dict[str, Any]:
    return RecommendationOut.model_validate(decision).model_dump(mode="json")


def recommend_for_user(
    session: Session,
    client_id: str,
    user_id: str,
    catalog: Catalog,
    now: datetime,
    *,
    source: str = "stored",
) -> StoredRecommendationOut:
    """Decide the next session from the stored profile, episode and history; store it.
    ``source`` names the caller in the metrics (``stored``, or ``cds`` for a hook call)."""
    user = find_user(session, client_id, user_id, for_update=True)
    episode = active_episode(session, user.id)
    today = now.date()
    profile = profile_of(user)
    condition = condition_of(episode)
    window, summary = _history_for(session, episode.id, condition, catalog, today)
    decision = next_session(profile, condition, tuple(window), catalog, today, summary=summary)
    count_recommendation(decision, source)
    record = RecommendationRecord(
        id=str(uuid.uuid4()),
        user_id=user.id,
        condition_id=episode.id,
        today=today,
        ruleset_version=decision.ruleset_version,
        status=decision.status.value,
        inputs={
            "profile": profile_json(profile),
            "condition": condition_json(condition),
            "history": [session_json(s) for s in window],
            "summary": None if summary is None else summary_json(summary),
            "today": today.isoformat(),
        },
        output=_output(decision),
        created_at=now,
    )
    Recommendations(session).add(record)
    return stored_out(record)


def _find(session: Session, client_id: str, user_id: str, rec_id: str) -> RecommendationRecord:
    user = find_user(session, client_id, user_id)
    record = Recommendations(session).get(user.id, rec_id)
    if record is None:
        raise NotFound(f"No recommendation {rec_id!r} for this user.")
    return record


def list_recommendations(
    session: Session, client_id: str, user_id: str, limit: int, offset: int
) -> StoredRecommendationPage:
    user = find_user(session, client_id, user_id)
    rows, total = Recommendations(session).page(user.id, limit, offset)
    return StoredRecommendationPage(
        items=[stored_out(r) for r in rows], total=total, limit=limit, offset=offset
    )


def get_recommendation(
    session: Session, client_id: str, user_id: str, rec_id: str
) -> StoredRecommendationDetail:
    record = _find(session, client_id, user_id, rec_id)
    return StoredRecommendationDetail(
        **stored_out(record).model_dump(),
        inputs=RecommendationInputs.model_validate(record.inputs),
    )


def _differences(stored: Any, replayed: Any, path: str, out: list[Difference]) -> None:
    if len(out) >= MAX_DIFFERENCES or stored == replayed:
        return
    if isinstance(stored, dict) and isinstance(replayed, dict):
        for key in sorted(stored.keys() | replayed.keys()):
            where = f"{path}.{key}" if path else key
            _differences(stored.get(key), replayed.get(key), where, out)
    elif isinstance(stored, list) and isinstance(replayed, list):
        for i in range(max(len(stored), len(replayed))):
            left = stored[i] if i < len(stored) else None
            right = replayed[i] if i < len(replayed) else None
            _differences(left, right, f"{path}[{i}]", out)
    else:
        out.append(Difference(path=path or "$", stored=stored, replayed=replayed))


def replay_recommendation(
    session: Session, client_id: str, user_id: str, rec_id: str, catalog: Catalog
) -> ReplayOut:
    """Run the stored inputs through today's ruleset and compare the answers.

    The ruleset version itself is reported, not counted as a difference: a new version
    that decides this case the same way gives ``same: true``.
    """
    record = _find(session, client_id, user_id, rec_id)
    inputs = record.inputs
    history = tuple(session_from_json(s) for s in inputs["history"])
    known = catalog.by_id
    missing = sorted(
        {r.exercise_id for s in history for r in s.exercises if r.exercise_id not in known}
    )
    if missing:
        raise Conflict(
            "inputs.history",
            f"refers to exercises no longer in the catalog ({', '.join(missing)}); "
            "it cannot be replayed",
        )
    summary = None if inputs["summary"] is None else summary_from_json(inputs["summary"])
    decision = next_session(
        profile_from_json(inputs["profile"]),
        condition_from_json(inputs["condition"]),
        history,
        catalog,
        date.fromisoformat(inputs["today"]),
        summary=summary,
    )
    replayed = _output(decision)
    stored = dict(record.output)
    differences: list[Difference] = []
    _differences(
        {k: v for k, v in stored.items() if k != "ruleset_version"},
        {k: v for k, v in replayed.items() if k != "ruleset_version"},
        "",
        differences,
    )
    return ReplayOut(
        recommendation_id=record.id,
        stored_ruleset_version=record.ruleset_version,
        current_ruleset_version=decision.ruleset_version,
        same=not differences,
        differences=differences,
        replayed=RecommendationOut.model_validate(replayed),
    )
