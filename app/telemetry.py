"""What operators watch: Prometheus metrics and the access log.

Metrics (``GET /metrics``):

- ``ladderback_http_requests_total`` and ``ladderback_http_request_duration_seconds``, by
  method, route template and status;
- ``ladderback_recommendations_total`` by source (stateless, stored, cds) and status, and
  ``ladderback_recommended_exercises_total`` by source and change type;
- ``ladderback_database_errors_total`` by kind (unavailable, invalid_value);
- ``ladderback_edge_refusals_total`` by reason: requests and connections the HTTP edge
  (``app.edge``) answered or closed before the application saw them.

Labels hold route templates, never paths: a path carries ids, and one series per id would
grow without bound. With several worker processes, ``ladderback serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder and each scrape adds up every worker's counts.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.domain.types import Recommendation

__all__ = [
    "METRICS_MEDIA_TYPE",
    "RequestTelemetry",
    "count_database_error",
    "count_edge_refusal",
    "count_recommendation",
    "metrics_text",
    "route_pattern",
]

METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST
log = logging.getLogger("ladderback.access")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes and scrapes arrive every few seconds: their access lines are debug-level noise.
_OPERATIONS = frozenset({"/healthz", "/readyz", "/metrics"})

REQUESTS = Counter(
    "ladderback_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "ladderback_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RECOMMENDATIONS = Counter(
    "ladderback_recommendations",
    "Recommendations decided, by source (stateless, stored, cds) and status.",
    ["source", "status"],
)
EXERCISE_CHANGES = Counter(
    "ladderback_recommended_exercises",
    "Exercises in decided recommendations, by source and change type.",
    ["source", "change"],
)
DATABASE_ERRORS = Counter(
    "ladderback_database_errors",
    "Database operations that failed: unavailable (unreachable, lock timeout) or "
    "invalid_value (a value the database refused).",
    ["kind"],
)


EDGE_REFUSALS = Counter(
    "ladderback_edge_refusals",
    "Requests and connections the HTTP edge refused or closed, by reason: malformed, "
    "request_target_too_long, header_too_large, headers_too_large, body_too_large, "
    "header_timeout, body_timeout, answer_unread (a client that stopped reading), "
    "shutting_down (a body still arriving at a stop), connection_cap (503 at the cap), "
    "closed_for_room (an idle or slow connection closed at the cap to admit a new one).",
    ["reason"],
)


def route_pattern(template: str) -> re.Pattern[str]:
    """The paths a route template such as ``/v1/users/{user_id}`` matches."""
    return re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$")


def count_recommendation(decision: Recommendation, source: str) -> None:
    RECOMMENDATIONS.labels(source, decision.status.value).inc()
    # One update a change type, not one an exercise: each update takes a lock.
    for change, count in Tally(e.change.value for e in decision.exercises).items():
        EXERCISE_CHANGES.labels(source, change).inc(count)


def count_database_error(kind: str) -> None:
    DATABASE_ERRORS.labels(kind).inc()


def count_edge_refusal(reason: str) -> None:
    EDGE_REFUSALS.labels(reason).inc()


def metrics_text() -> bytes:
    """The exposition of every metric; summed over all workers in multi-process mode."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


class RequestTelemetry:
    """Time each request, count it by route template and status, and log one line for it.

    The line holds method, route template, status, duration and the request id (added by
    the log filter): no path, query or body, since those can carry ids and health data.
    """

    def __init__(self, app: ASGIApp, templates: Iterable[str]) -> None:
        self.app = app
        # Every route's path template, as a pattern: to name the route of a request that
        # was refused before routing (no route in its scope).
        self._templates = [(route_pattern(t), t) for t in templates]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app fails before it starts answering
        responded = False

        async def send_and_note(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
            if not responded and scope.get("state", {}).get("client_left"):
                # Unanswered because the client left, or the edge cut off its slow body:
                # 499 (client closed request), not a server error.
                status = 499
        finally:
            elapsed = time.perf_counter() - start
            route = self._route(scope)
            # A made-up method must not make a series of its own.
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            REQUESTS.labels(method, route, status).inc()
            LATENCY.labels(method, route, status).observe(elapsed)
            level = logging.DEBUG if route in _OPERATIONS else logging.INFO
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "request",
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )

    def _route(self, scope: Scope) -> str:
        """The template of the route that served the request, else of the route it was
        meant for (a request refused before routing), else ``unmatched``."""
        served = getattr(scope.get("route"), "path", None)
        if isinstance(served, str):
            return served
        path = scope["path"]
        return next((t for pattern, t in self._templates if pattern.match(path)), "unmatched")
