"""Per-client request budgets: a fixed one-minute window.

In-process by default; with ``REDIS_URL`` set the counters live in Redis, so several
instances share one budget per client. A Redis that cannot be reached does not take the
API down: the limiter lets requests through and says so in the log (once a minute), and
leaves Redis alone for a few seconds before trying again, so a Redis that hangs costs one
slow request, not every request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime
from typing import Protocol

__all__ = ["LocalRateLimiter", "RateLimiter", "RedisRateLimiter", "rate_limiter"]

log = logging.getLogger("ladderback.ratelimit")
WINDOW_SECONDS = 60
REDIS_REST_SECONDS = 5.0


class RateLimiter(Protocol):
    limit: int
    remote: bool  # asks another server: never call it on the event loop

    def wait_for(self, client_id: str, now: datetime) -> int | None:
        """Count a request; ``None`` when within budget, else seconds until the next window."""

    def close(self) -> None: ...


def _window(now: datetime) -> tuple[int, int]:
    """The window's number and the whole seconds left in it (at least 1)."""
    seconds = now.timestamp()
    window = int(seconds // WINDOW_SECONDS)
    left = max(1, math.ceil((window + 1) * WINDOW_SECONDS - seconds))
    return window, left


class LocalRateLimiter:
    """Counters in this process: right for one instance, or for tests."""

    remote = False

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}

    def wait_for(self, client_id: str, now: datetime) -> int | None:
        window, left = _window(now)
        with self._lock:
            seen_window, count = self._counts.get(client_id, (window, 0))
            count = count + 1 if seen_window == window else 1
            self._counts[client_id] = (window, count)
            if len(self._counts) > 10_000:  # forget clients from earlier windows
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        return left if count > self.limit else None

    def close(self) -> None:
        self._counts.clear()


class RedisRateLimiter:
    """Counters in Redis (``INCR`` + ``EXPIRE`` in one round trip), shared by instances."""

    remote = True

    def __init__(self, limit: int, url: str, prefix: str = "ladderback:rate") -> None:
        import redis  # only instances that share a budget load the client

        self.limit = limit
        self.prefix = prefix
        self._error = redis.RedisError
        self._redis = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=None
        )
        self._warned_window = -1
        self._resting_until = 0.0  # monotonic time before which Redis is not asked

    def wait_for(self, client_id: str, now: datetime) -> int | None:
        window, left = _window(now)
        key = f"{self.prefix}:{client_id}:{window}"
        if time.monotonic() < self._resting_until:
            return None
        try:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS * 2)
            count = int(pipe.execute()[0])
        except self._error as exc:
            self._resting_until = time.monotonic() + REDIS_REST_SECONDS
            if self._warned_window != window:
                self._warned_window = window
                log.warning("rate limit not enforced: Redis unavailable (%s)", type(exc).__name__)
            return None
        return left if count > self.limit else None

    def close(self) -> None:
        self._redis.close()


def rate_limiter(limit: int, redis_url: str | None) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(limit, redis_url)
    return LocalRateLimiter(limit)
