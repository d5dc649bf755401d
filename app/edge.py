"""The HTTP edge: limits every connection meets before the application sees a request.

uvicorn with httptools is the fastest server for this app on this stack, but on its own
(uvicorn 0.55, httptools 0.9) it takes an 8 MB header, keeps a connection that trickles
headers or sends a short body open indefinitely, lets slow connections use up the worker's
file descriptors, and answers malformed requests with plain text. ``EdgeProtocol`` is its
HTTP protocol with what was missing, passed to uvicorn as ``http=`` by ``ladderback serve``:

- **sizes**: a request target over ``max_request_target_bytes`` → 414; a header line over
  ``max_header_line_bytes`` or a head (request line and headers) over ``max_header_bytes``
  → 431; a body over four times ``max_body_bytes`` on the wire (chunk framing and trailers
  included; the app refuses one over ``max_body_bytes`` itself) → 413. Bytes are counted
  as they arrive, so a huge header is refused after the limit, not buffered first: a
  connection's memory stays within the head limit (the body's wire limit for trailers,
  which are dropped, not served).
- **time**: a connection idle for ``keep_alive_seconds`` (before its first request too) is
  closed; headers not complete ``header_timeout_seconds`` after their first byte, or a body
  not complete ``body_timeout_seconds`` after the headers → 408; an answer the client has
  stopped reading for ``body_timeout_seconds`` → the connection is closed.
- **one request at a time**: a request pipelined behind one not yet answered is not read;
  the connection closes after that answer (with ``Connection: close`` if its headers are
  not sent yet), and the client resends on a new one (RFC 9112, 9.3.2). Queued requests
  would otherwise wait in memory without bound.
- **connections**: at most ``max_connections`` a worker (lowered to fit the open-file
  limit). At the cap, a connection without a request in the application is closed to
  admit the new one: the longest idle first, then the longest still sending its headers,
  then a body arriving slower than ``SLOW_BYTES_PER_SECOND`` or an answer its client has
  stopped reading. A body arriving faster is not cut off. So a slowloris cannot lock out a
  client that sends its request promptly. Only when none can be closed does the new
  connection get 503. Each such event is counted
  (``ladderback_edge_refusals_total``); a crowding episode is logged when it starts and
  when it ends (at most once a minute), never once a connection.
- **shutdown**: a body still arriving when the worker stops gets 503, rather than holding
  the stop until its deadline; a client not reading its answer is cut off.
- **errors**: every answer the edge gives (400 for malformed HTTP, 408, 413, 414, 431, 503)
  is problem+json with an ``X-Request-ID`` (logged with the refusal), ``Cache-Control:
  no-store`` and the security headers, like the application's own. After it the
  connection is closed gracefully: the write side first, then what the client still sends
  is read and dropped for a moment, so the answer reaches the client instead of being lost
  to a TCP reset.

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

from app.errors import PROBLEM_MEDIA_TYPE, PayloadTooLarge, ServiceUnavailable, problem_document
from app.logs import current_request_id
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
    body_wire_bytes: int  # a body on the wire, chunk framing and trailers included
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
            # The app refuses a body over max_body_bytes (413); this bounds what the edge
            # reads meanwhile, with room for the framing of chunks of a few bytes each.
            body_wire_bytes=4 * settings.max_body_bytes + settings.max_header_bytes,
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
    CLOSING = "closing"  # answered by the edge, or closing: what arrives is dropped


# Which connection goes first when one must be closed to admit another: those with no
# request at all, then those still sending their headers, then the slow (``is_slow``).
_CLOSE_FIRST = {Phase.CLOSING: 0, Phase.IDLE: 1, Phase.HEAD: 2, Phase.BODY: 3, Phase.APP: 3}
# A body arriving slower than this (on average since its headers, after a second) may be
# cut off at the cap: even a poor mobile link sends a hundred times more.
SLOW_BYTES_PER_SECOND = 512
# An answer its client has not read for this long may be cut off at the cap.
STALLED_SECONDS = 1.0


def problem_answer(
    status: int, detail: str, request_id: str, *, retry_after: int | None = None
) -> bytes:
    """A complete HTTP/1.1 answer with a problem+json body, closing the connection."""
    body = json.dumps(problem_document(status, detail, type_=_PROBLEM_TYPES[status])).encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"content-type: {PROBLEM_MEDIA_TYPE}",
        f"content-length: {len(body)}",
        f"x-request-id: {request_id}",
        "cache-control: no-store",
        *(f"{name.lower()}: {value}" for name, value in API_HEADERS),
        *([f"retry-after: {retry_after}"] if retry_after is not None else []),
        "connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# The app's own types where it has the same problem, so a client sees one type for it.
_PROBLEM_TYPES = {
    400: "/problems/malformed-request",
    408: "/problems/request-timeout",
    413: PayloadTooLarge.type,
    414: "/problems/request-target-too-long",
    431: "/problems/header-fields-too-large",
    503: ServiceUnavailable.type,
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
        self.episode_logged = False
        self.logged_at = float("-inf")
        self.closed_for_room = 0
        self.refused = 0
        # Connections already aborted or refused, not yet gone: they no longer count.
        self.leaving = 0
        self._sweeping = False

    def admit(self, newcomer: EdgeProtocol) -> bool:
        """Whether ``newcomer`` may stay; at the cap, close a connection with no request in
        the application to make room (see ``_CLOSE_FIRST``)."""
        if len(self.connections) - self.leaving <= self.cap:
            return True
        now = newcomer.loop.time()
        if not self.crowded:
            self.crowded = True
            # Swings around the cap are one episode in the log, not two lines a swing.
            if now - self.logged_at >= EPISODE_LOG_SECONDS:
                self.episode_logged, self.logged_at = True, now
                log.warning(
                    "connections at the cap of %d a worker: closing idle and slow "
                    "connections to admit new ones, refusing new ones when none is",
                    self.cap,
                )
        victim, rank = None, (len(_CLOSE_FIRST), 0.0)
        for connection in self.connections:
            if (
                not isinstance(connection, EdgeProtocol)
                or connection is newcomer
                or connection.leaving
            ):
                continue
            order = _CLOSE_FIRST[connection.phase]
            if order == 3 and not connection.is_slow(now):
                continue  # a body arriving, or an answer being read: at work
            if (order, connection.since) < rank:
                victim, rank = connection, (order, connection.since)
        if victim is not None:
            victim.close_for_room()
            self.closed_for_room += 1
            count_edge_refusal("closed_for_room")
            return True
        self.refused += 1
        count_edge_refusal("connection_cap")
        return False

    def released(self) -> None:
        if self.crowded and len(self.connections) < self.cap * CALM_SHARE:
            self.crowded = False
            if self.episode_logged:
                self.episode_logged = False
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
        try:
            now = loop.time()
            for connection in list(self.connections):
                if isinstance(connection, EdgeProtocol) and connection.due(now):
                    try:
                        connection.expire(now)
                    except Exception as exc:  # one connection must not stop the sweep
                        log.error("edge deadline failed: %s", type(exc).__name__)
                        connection.transport.abort()
        finally:
            loop.call_later(SWEEP_SECONDS, self._sweep, loop)


# The least time between two logged crowding episodes.
EPISODE_LOG_SECONDS = 60.0

_watches: weakref.WeakKeyDictionary[ServerState, ConnectionWatch] = weakref.WeakKeyDictionary()


class _Pipelined(Exception):
    """A request began before the previous one was answered (see ``on_message_begin``)."""


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
        # Bytes of this request's head (from the end of the last answer), or of its body.
        self.counted = 0
        self.discarding = False  # set once nothing more is to be read
        self.leaving = False  # aborted, or refused at the cap: gone at the next turn
        self.unsent_when_checked = float("inf")  # while writes are paused
        self.body_started_at = self.since
        self.body_bytes = 0
        # Since when the client has not read what was written (None: it reads).
        self.write_stalled_at: float | None = None
        self.unsent_at_idle = float("inf")  # bytes still unsent when last found idle
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
            # Not kept lingering: at the cap, a refused connection must not hold a place.
            self._leave()
            self.phase = Phase.CLOSING
            request_id = uuid.uuid4().hex
            detail = "The service is at its connection limit; retry shortly."
            transport.write(problem_answer(503, detail, request_id, retry_after=1))
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.leaving:
            self.watch.leaving -= 1
        self.watch.released()

    def _leave(self) -> None:
        if not self.leaving:
            self.leaving = True
            self.watch.leaving += 1

    def data_received(self, data: bytes) -> None:
        if self.answered or self.discarding:
            # Answered, closing or finishing its last answer: read and drop, since closing
            # with unread bytes would reset the connection and lose the answer.
            return
        self._unset_keepalive_if_required()
        while data:
            if self.phase is Phase.APP:
                part, data = data, b""  # the next request's first bytes: see on_message_begin
            else:
                limit = (
                    self.limits.body_wire_bytes
                    if self.phase is Phase.BODY
                    else self.limits.head_bytes
                )
                room = limit - self.counted
                if room <= 0:
                    self._refuse_oversized()
                    return
                # A body may end inside this part and the next request's head begin: that
                # head is counted from the end of the body, so at most this much escapes.
                room = min(room, self.limits.head_bytes)
                # Feed this part's share only: what follows may be the next part.
                part, data = (data, b"") if len(data) <= room else (data[:room], data[room:])
                self.counted += len(part)
                if self.phase is Phase.BODY:
                    self.body_bytes += len(part)
            try:
                self.parser.feed_data(part)
            except httptools.HttpParserUpgrade:
                # No upgrade is served: the request is answered as plain HTTP, and the
                # parser, stopped at the upgrade, can read nothing more: close after it.
                if self.cycle is not None:
                    self.cycle.keep_alive = False
                self._stop_reading()
                return
            except httptools.HttpParserError as exc:
                if isinstance(exc.__context__, _Pipelined):
                    self._stop_reading()
                    return
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
        """The edge has answered (or is closing) this connection: nothing more is read."""
        return self.phase is Phase.CLOSING

    def pause_writing(self) -> None:
        super().pause_writing()
        self.write_stalled_at = self.loop.time()
        self.unsent_when_checked = self.transport.get_write_buffer_size()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.write_stalled_at = None

    def due(self, now: float) -> bool:
        """Whether a deadline has passed: the phase's, or the one for reading an answer."""
        if self.write_stalled_at is not None:
            # Paused writes measure a full buffer, not a client that stopped: one that
            # reads, however slowly, starts the stall afresh at each sweep.
            unsent = self.transport.get_write_buffer_size()
            if unsent < self.unsent_when_checked:
                self.write_stalled_at = now
            self.unsent_when_checked = unsent
        stalled = self.write_stalled_at
        return self.deadline <= now or (
            stalled is not None and now - stalled > self.limits.body_seconds
        )

    def is_slow(self, now: float) -> bool:
        """A body arriving too slowly, or an answer its client has stopped reading."""
        stalled = self.write_stalled_at
        if stalled is not None and now - stalled > STALLED_SECONDS:
            return True
        if self.phase is not Phase.BODY or self.flow.read_paused:
            return False  # paused by the server (the app not reading yet): not the client
        if self.cycle is not None and self.cycle.waiting_for_100_continue:
            return False  # rightly waiting for the app's 100 Continue
        elapsed = now - self.body_started_at
        return elapsed > 1.0 and self.body_bytes / elapsed < SLOW_BYTES_PER_SECOND

    def shutdown(self) -> None:
        """The worker is stopping: a body still arriving is answered 503 at once, and a
        client not reading its answer is cut off, so the stop takes no longer than the
        requests in the application."""
        if self.write_stalled_at is not None:
            count_edge_refusal("answer_unread")
            self._stop_request()
            self._close(abort=True)
        elif self.phase is Phase.BODY:
            self._answer(503, "shutting_down", "The service is restarting; retry.", retry_after=1)
        else:
            super().shutdown()

    # Parser callbacks

    def on_message_begin(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            # HTTP/1.1 pipelining: the next request before this one's answer. Queued
            # requests would wait unbounded in memory, and an edge refusal of one could
            # not be ordered among the answers. Clients barely pipeline, and RFC 9112
            # (9.3.2) lets them resend on a new connection: this answer closes it.
            self.cycle.keep_alive = False
            raise _Pipelined
        super().on_message_begin()
        self.target_done = False
        self._enter(Phase.HEAD, self.limits.header_seconds)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.request_target_bytes:
            self.refusal = (414, "request_target_too_long", self._target_detail())
            raise ValueError("request target too long")  # stops the parser

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.phase is Phase.BODY:
            return  # a chunked body's trailers: counted as body bytes, and not served
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
        super().on_headers_complete()  # may refuse the target: then still in HEAD
        self._enter(Phase.BODY, self.limits.body_seconds)
        self.counted = self.body_bytes = 0
        self.body_started_at = self.since

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.cycle.response_complete:  # answered before its body arrived
            self._await_next_request()
        else:
            self.phase, self.deadline = Phase.APP, float("inf")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            # Closing once its last bytes are out: a client that never reads them would
            # hold the connection for good, so not longer than a body may take.
            self.phase = Phase.CLOSING
            self.deadline = self.loop.time() + self.limits.body_seconds
            return
        # With its body still arriving (an early answer, such as a 415), the connection
        # stays in BODY, under the body deadline, until the body is in.
        if self.phase is Phase.APP:
            self._await_next_request()

    def _await_next_request(self) -> None:
        self._enter(Phase.IDLE, self.limits.idle_seconds)
        self.counted = 0
        self.unsent_at_idle = float("inf")

    # The edge's own answers

    def _target_detail(self) -> str:
        return f"The request target is longer than {self.limits.request_target_bytes} bytes."

    def _refuse_oversized(self) -> None:
        if self.phase is Phase.BODY:
            detail = f"The request body exceeds {self.limits.body_wire_bytes} bytes on the wire."
            self._answer(413, "body_too_large", detail)
        elif not self.target_done and self.phase is Phase.HEAD:
            self._answer(414, "request_target_too_long", self._target_detail())
        else:
            detail = f"The request line and headers exceed {self.limits.head_bytes} bytes."
            self._answer(431, "headers_too_large", detail)

    def expire(self, now: float) -> None:
        """A deadline passed (``due``)."""
        if self.deadline > now:  # not the phase's: the client stopped reading its answer
            count_edge_refusal("answer_unread")
            self._stop_request()
            self._close(abort=True)
        elif self.phase is Phase.HEAD:
            detail = f"The headers did not arrive within {self.limits.header_seconds:g} s."
            self._answer(408, "header_timeout", detail)
        elif self.phase is Phase.BODY:
            detail = f"The body did not arrive within {self.limits.body_seconds:g} s."
            self._answer(408, "body_timeout", detail)
        elif self.phase is Phase.IDLE:
            unsent = self.transport.get_write_buffer_size()
            if 0 < unsent < self.unsent_at_idle:  # the last answer is still being read
                self.unsent_at_idle = unsent
                self.deadline = now + self.limits.idle_seconds
            else:  # nothing asked, nothing to answer
                self._close()
        else:  # the linger is over, or a close still waits on a client that does not read
            self._close(abort=True)

    def close_for_room(self) -> None:
        """Closed to admit a newer connection while the worker is at its cap."""
        self._stop_request()
        self._close(abort=True)

    def _close(self, *, abort: bool = False) -> None:
        # A graceful close waits for unsent bytes: not longer than the linger.
        self.phase, self.deadline = Phase.CLOSING, self.loop.time() + LINGER_SECONDS
        if abort:
            self._leave()
            self.transport.abort()
        else:
            self.transport.close()

    def _stop_reading(self) -> None:
        """Read nothing more; the answer in progress closes the connection when done."""
        self.phase, self.deadline = Phase.APP, float("inf")
        self.discarding = True

    def _answer(
        self, status: int, reason: str, detail: str, *, retry_after: int | None = None
    ) -> None:
        """Answer ``status`` as problem+json, then close gracefully (see the module)."""
        count_edge_refusal(reason)
        can_answer = self._stop_request()
        self.phase, self.deadline = Phase.CLOSING, self.loop.time() + LINGER_SECONDS
        if self.transport.is_closing():
            return
        if not can_answer:
            self.transport.close()
            return
        request_id = uuid.uuid4().hex
        token = current_request_id.set(request_id)
        log.info("edge refused a request: %d %s", status, reason)
        current_request_id.reset(token)
        self.transport.write(problem_answer(status, detail, request_id, retry_after=retry_after))
        if self.transport.can_write_eof():
            self.transport.write_eof()  # read until the client closes, or the linger ends
        else:
            self.transport.close()

    def _stop_request(self) -> bool:
        """Detach the application from the request being cut off; whether the edge may
        answer it (the application has not started an answer of its own)."""
        cycle = self.cycle
        if cycle is None or (cycle.response_complete and self.phase is not Phase.BODY):
            return True  # no request, or a new one whose head is refused
        if cycle.response_complete:
            return False  # answered early, its body still arriving: just close
        started = cycle.response_started
        # The application sees a disconnect and its later writes go nowhere.
        cycle.waiting_for_100_continue = False
        cycle.disconnected = True
        cycle.message_event.set()
        return not started


def _parser_message(exc: Exception) -> str:
    """llhttp's own words for what is wrong (they quote no request bytes)."""
    if isinstance(exc, httptools.HttpParserCallbackError):
        return "the request target is not a valid URL."  # uvicorn's parse of it failed
    message = str(exc).strip().rstrip(".")
    return (message or "unparsable request") + "."
