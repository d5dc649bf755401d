"""The HTTP edge: limits every connection meets before the application sees a request.

uvicorn with httptools is the fastest server for this app on this stack, but on its own
(uvicorn 0.55, httptools 0.9) it takes an 8 MB header, keeps a connection that trickles
headers or sends a short body open indefinitely, lets slow connections use up the worker's
file descriptors, and answers malformed requests with plain text. ``EdgeProtocol`` is its
HTTP protocol with what was missing, passed to uvicorn as ``http=`` by ``ladderback serve``:

- **sizes**: a request target over ``max_request_target_bytes`` → 414; a header line over
  ``max_header_line_bytes`` or a head (request line and headers) over ``max_header_bytes``
  → 431. Bytes are counted as they arrive, so a huge header is refused after the limit,
  not buffered first: a connection's memory stays within the head limit.
- **time**: a connection idle for ``keep_alive_seconds`` (before its first request too) is
  closed; headers not complete ``header_timeout_seconds`` after their first byte, or a body
  not complete ``body_timeout_seconds`` after the headers → 408.
- **connections**: at most ``max_connections`` a worker (lowered to fit the open-file
  limit). At the cap, the connection that has waited longest without a request in the
  application (idle, or slow to send its request) is closed to admit the new one, so a
  slowloris cannot lock out a client that sends its request promptly; only when every
  connection has a request in progress does the new one get 503. Each such event is
  counted (``ladderback_edge_refusals_total``); the episode is logged when it starts and
  when it ends, never once a connection.
- **errors**: every answer the edge gives (400 for malformed HTTP, 408, 414, 431, 503) is
  problem+json with an ``X-Request-ID``, ``Cache-Control: no-store`` and the security
  headers, like the application's own. After it the connection is closed gracefully:
  the write side first, then what the client still sends is read and dropped for a moment,
  so the answer reaches the client instead of being lost to a TCP reset.

It subclasses uvicorn's protocol, whose internals are not a public API: ``pyproject.toml``
pins uvicorn and httptools to the versions it was written and tested against.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import resource
import uuid
import weakref
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.errors import PROBLEM_MEDIA_TYPE, problem_document
from app.security_headers import API_HEADERS
from app.settings import Settings, get_settings
from app.telemetry import count_edge_refusal

__all__ = ["EdgeLimits", "EdgeProtocol", "edge_limits"]

log = logging.getLogger("ladderback.edge")

# How often deadlines are checked: timeouts are enforced to within this.
SWEEP_SECONDS = 0.5
# How long a refused connection is read (and its bytes dropped) before it is closed.
LINGER_SECONDS = 1.0
# File descriptors kept free of connections: database connections, logs, the listener.
RESERVED_DESCRIPTORS = 64
# The end of a crowding episode: open connections back under this share of the cap.
CALM_SHARE = 0.9


@dataclass(frozen=True)
class EdgeLimits:
    request_target_bytes: int
    header_line_bytes: int
    head_bytes: int
    header_seconds: float
    body_seconds: float
    idle_seconds: float
    connections: int

    @classmethod
    def of(cls, settings: Settings) -> EdgeLimits:
        return cls(
            request_target_bytes=settings.max_request_target_bytes,
            header_line_bytes=settings.max_header_line_bytes,
            head_bytes=settings.max_header_bytes,
            header_seconds=settings.header_timeout_seconds,
            body_seconds=settings.body_timeout_seconds,
            idle_seconds=settings.keep_alive_seconds,
            connections=settings.max_connections,
        )


@lru_cache(maxsize=1)
def edge_limits() -> EdgeLimits:
    return EdgeLimits.of(get_settings())


class Phase(enum.Enum):
    IDLE = "idle"  # no request begun: just connected, or between requests
    HEAD = "head"  # request line and headers arriving
    BODY = "body"  # headers done, body arriving
    APP = "app"  # the whole request is with the application
    CLOSING = "closing"  # answered by the edge; what arrives is dropped


# Phases in which bytes count towards the head limit, and a connection may be closed to
# make room: none of them has a request in the application.
_HEAD_PHASES = (Phase.IDLE, Phase.HEAD)
_WAITING_PHASES = (Phase.IDLE, Phase.HEAD, Phase.BODY, Phase.CLOSING)


def problem_answer(status: int, detail: str, *, retry_after: int | None = None) -> bytes:
    """A complete HTTP/1.1 answer with a problem+json body, closing the connection."""
    body = json.dumps(
        problem_document(status, detail, type_=f"/problems/{_PROBLEM_TYPES[status]}")
    ).encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"content-type: {PROBLEM_MEDIA_TYPE}",
        f"content-length: {len(body)}",
        f"x-request-id: {uuid.uuid4().hex}",
        "cache-control: no-store",
        *(f"{name.lower()}: {value}" for name, value in API_HEADERS),
        *([f"retry-after: {retry_after}"] if retry_after is not None else []),
        "connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_PROBLEM_TYPES = {
    400: "malformed-request",
    408: "request-timeout",
    414: "request-target-too-long",
    431: "header-fields-too-large",
    503: "service-unavailable",
}


class ConnectionWatch:
    """One worker's connections: the cap, the deadline sweep, and crowding episodes."""

    def __init__(self, connections: set[Any], limits: EdgeLimits) -> None:
        self.connections = connections
        self.cap = limits.connections
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft - RESERVED_DESCRIPTORS < self.cap:
            self.cap = max(8, soft - RESERVED_DESCRIPTORS)
            log.warning("connection cap lowered to %d by the open-file limit of %d", self.cap, soft)
        self.crowded = False
        self.closed_for_room = 0
        self.refused = 0
        self._sweeping = False

    def admit(self, newcomer: EdgeProtocol) -> bool:
        """Whether ``newcomer`` may stay; at the cap, close the longest-waiting connection
        with no request in the application to make room."""
        if len(self.connections) <= self.cap:
            return True
        if not self.crowded:
            self.crowded = True
            log.warning(
                "connections at the cap of %d a worker: closing the longest-waiting idle or "
                "slow connections, refusing new ones when none is",
                self.cap,
            )
        waiting = [
            c
            for c in self.connections
            if isinstance(c, EdgeProtocol) and c is not newcomer and c.phase in _WAITING_PHASES
        ]
        if waiting:
            oldest = min(waiting, key=lambda c: (c.phase is not Phase.CLOSING, c.since))
            oldest.close_for_room()
            self.closed_for_room += 1
            count_edge_refusal("closed_for_room")
            return True
        self.refused += 1
        count_edge_refusal("connection_cap")
        return False

    def released(self) -> None:
        if self.crowded and len(self.connections) < self.cap * CALM_SHARE:
            self.crowded = False
            log.warning(
                "connections back under the cap (%d open): %d closed to make room, %d refused",
                len(self.connections),
                self.closed_for_room,
                self.refused,
            )
            self.closed_for_room = self.refused = 0

    def start_sweeping(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(SWEEP_SECONDS, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for connection in list(self.connections):
            if isinstance(connection, EdgeProtocol) and connection.deadline <= now:
                connection.expire()
        loop.call_later(SWEEP_SECONDS, self._sweep, loop)


_watches: weakref.WeakKeyDictionary[ServerState, ConnectionWatch] = weakref.WeakKeyDictionary()


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with size, time and connection limits (see the module)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = edge_limits()
        watch = _watches.get(server_state)
        if watch is None:
            watch = _watches[server_state] = ConnectionWatch(server_state.connections, self.limits)
        self.watch = watch
        self.phase = Phase.IDLE
        self.since = self.loop.time()
        self.deadline = self.since + self.limits.idle_seconds
        self.head_bytes = 0
        self.target_done = False
        # Set by a parser callback that refuses the request: (status, reason, detail).
        self.refusal: tuple[int, str, str] | None = None

    def _enter(self, phase: Phase, seconds: float) -> None:
        self.phase = phase
        self.since = self.loop.time()
        self.deadline = self.since + seconds

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.watch.start_sweeping(self.loop)
        if not self.watch.admit(self):
            self._answer(
                503,
                "connection_cap",
                "The service is at its connection limit; retry shortly.",
                retry_after=1,
            )

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.watch.released()

    def data_received(self, data: bytes) -> None:
        if self.phase is Phase.CLOSING:
            return  # answered already: drop what still arrives
        self._unset_keepalive_if_required()
        while data:
            if self.phase in _HEAD_PHASES:
                room = self.limits.head_bytes - self.head_bytes
                if room <= 0:
                    self._refuse_oversized_head()
                    return
                if len(data) <= room:
                    part, data = data, b""
                else:  # feed the head's share only: the rest may be its body
                    part, data = data[:room], data[room:]
                self.head_bytes += len(part)
            else:
                part, data = data, b""
            try:
                self.parser.feed_data(part)
            except httptools.HttpParserUpgrade:
                # No upgrade is served: the request is answered as plain HTTP, and the
                # parser, stopped at the upgrade, can read nothing more: close after it.
                if self.cycle is not None:
                    self.cycle.keep_alive = False
                self.phase, self.deadline = Phase.APP, float("inf")
                return
            except httptools.HttpParserError as exc:
                status, reason, detail = self.refusal or (
                    400,
                    "malformed",
                    f"The request is not valid HTTP/1.1: {_parser_message(exc)}",
                )
                self._answer(status, reason, detail)
                return
            if self.answered or self.transport.is_closing():
                return

    @property
    def answered(self) -> bool:
        """The edge has answered (or closed) this connection: nothing more is read."""
        return self.phase is Phase.CLOSING

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.target_done = False
        if self.phase is Phase.IDLE:
            self._enter(Phase.HEAD, self.limits.header_seconds)
        else:  # the next request of a pipeline, read while one is with the application
            self.head_bytes = 0
            self.phase, self.since = Phase.HEAD, self.loop.time()
            self.deadline = self.since + self.limits.header_seconds

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.request_target_bytes:
            self.refusal = (414, "request_target_too_long", self._target_detail())
            raise ValueError("request target too long")  # stops the parser

    def on_header(self, name: bytes, value: bytes) -> None:
        self.target_done = True
        if len(name) + len(value) > self.limits.header_line_bytes:
            self.refusal = (
                431,
                "header_too_large",
                f"A header is longer than {self.limits.header_line_bytes} bytes.",
            )
            raise ValueError("header too long")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.target_done = True
        self._enter(Phase.BODY, self.limits.body_seconds)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.phase = Phase.APP
        self.deadline = float("inf")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.phase is Phase.APP and not self.transport.is_closing():
            self.head_bytes = 0
            self._enter(Phase.IDLE, self.limits.idle_seconds)

    # The edge's own answers

    def _target_detail(self) -> str:
        return f"The request target is longer than {self.limits.request_target_bytes} bytes."

    def _refuse_oversized_head(self) -> None:
        if not self.target_done and self.phase is Phase.HEAD:
            self._answer(414, "request_target_too_long", self._target_detail())
        else:
            detail = f"The request line and headers exceed {self.limits.head_bytes} bytes."
            self._answer(431, "headers_too_large", detail)

    def expire(self) -> None:
        """The phase's deadline passed."""
        if self.phase is Phase.CLOSING or self.phase is Phase.IDLE:
            self.transport.close()  # nothing asked: nothing to answer
        elif self.phase is Phase.HEAD:
            detail = f"The headers did not arrive within {self.limits.header_seconds:g} s."
            self._answer(408, "header_timeout", detail)
        elif self.phase is Phase.BODY:
            detail = f"The body did not arrive within {self.limits.body_seconds:g} s."
            self._answer(408, "body_timeout", detail)

    def close_for_room(self) -> None:
        """Closed to admit a newer connection while the worker is at its cap."""
        self._stop_request()
        self.phase = Phase.CLOSING
        self.transport.abort()

    def _answer(
        self, status: int, reason: str, detail: str, *, retry_after: int | None = None
    ) -> None:
        """Answer ``status`` as problem+json, then close gracefully (see the module)."""
        if reason != "connection_cap":  # counted by the watch, with its other outcomes
            count_edge_refusal(reason)
        log.debug("edge answered %d (%s)", status, reason)
        can_answer = self._stop_request()
        self.phase, self.deadline = Phase.CLOSING, self.loop.time() + LINGER_SECONDS
        if self.transport.is_closing():
            return
        if can_answer:
            self.transport.write(problem_answer(status, detail, retry_after=retry_after))
        if can_answer and self.transport.can_write_eof():
            self.transport.write_eof()  # keep reading until the client closes, or the linger ends
        else:
            self.transport.close()

    def _stop_request(self) -> bool:
        """Detach the application from a request being cut off; whether the connection may
        still be answered (no response of the application started on it)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return True
        started = cycle.response_started
        # The application sees a disconnect and its later writes go nowhere.
        cycle.disconnected = True
        cycle.message_event.set()
        return not started and self.phase is Phase.BODY


def _parser_message(exc: Exception) -> str:
    """llhttp's own words for what is wrong (they quote no request bytes)."""
    message = str(exc).strip().rstrip(".")
    return (message or "unparsable request") + "."
