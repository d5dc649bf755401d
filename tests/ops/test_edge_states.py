"""The edge's protocol (``app/edge.py``) driven in-process, on a transport that records
what it is asked to do: states that a real socket reaches only under conditions a test
cannot stage reliably on loopback (a client that stops reading, whose kernel buffers
fill only after megabytes)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from app.edge import EdgeProtocol, Phase, edge_limits


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = self.aborted = self.eof_written = False
        self.unsent = 0  # bytes the "kernel" has not taken yet

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("203.0.113.9", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer_with_a_large_body(scope: Any, _receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b"x" * 200_000
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


def _connected(
    loop: asyncio.AbstractEventLoop, state: ServerState | None = None
) -> tuple[EdgeProtocol, RecordingTransport]:
    config = Config(app=answer_with_a_large_body, http=EdgeProtocol, lifespan="off")
    config.load()
    protocol = EdgeProtocol(config, state or ServerState(), {}, _loop=loop)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


def _settle(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0.01))


def test_a_client_that_stops_reading_an_answer_is_cut_off_after_the_body_time(
    loop: asyncio.AbstractEventLoop,
) -> None:
    protocol, transport = _connected(loop)
    protocol.pause_writing()  # its buffers are full: the answer waits to be written
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    _settle(loop)
    now = loop.time()
    limit = edge_limits().body_seconds
    assert not protocol.due(now + limit - 1)
    assert protocol.is_slow(now + 2)  # at the cap, it may make room for a prompt client
    assert protocol.due(now + limit + 1)
    protocol.expire(now + limit + 1)
    assert transport.aborted


def test_a_reader_that_keeps_reading_is_not_cut_off(loop: asyncio.AbstractEventLoop) -> None:
    protocol, transport = _connected(loop)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    protocol.pause_writing()
    protocol.resume_writing()  # it read: the buffer drained
    _settle(loop)
    assert transport.written.startswith(b"HTTP/1.1 200")
    assert protocol.phase is Phase.IDLE
    assert not protocol.is_slow(loop.time() + 60)
    assert not protocol.due(loop.time() + 1)


def test_an_answer_that_closes_its_connection_is_not_left_open_forever(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """``Connection: close``: the last bytes may wait on a client that does not read; the
    connection is aborted after the body time rather than held."""
    protocol, transport = _connected(loop)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    _settle(loop)
    assert transport.closed
    assert protocol.phase is Phase.CLOSING
    later = loop.time() + edge_limits().body_seconds + 1
    assert protocol.due(later)
    protocol.expire(later)
    assert transport.aborted


def test_a_slow_reader_is_not_taken_for_one_that_stopped(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Writes stay paused while a large answer drains to a slow client: as long as each
    sweep finds less unsent, the client is reading, and keeps its connection."""
    protocol, transport = _connected(loop)
    limit = edge_limits().body_seconds
    transport.unsent = 1_000_000
    protocol.pause_writing()
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    _settle(loop)  # its answer waits for the buffer to drain
    start = loop.time()
    for step in range(1, 6):  # five sweeps, each a body time apart, each finding less
        transport.unsent -= 100_000
        assert not protocol.due(start + step * limit)
    stopped = start + 5 * limit
    assert not protocol.due(stopped + limit - 1)  # it stops reading: unsent stays put
    assert protocol.due(stopped + limit + 1)


def test_a_burst_of_connections_at_the_cap_keeps_within_it(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Connections accepted in one turn of the loop: each newcomer over the cap closes a
    different waiting connection; one already closed is not closed again for room."""
    state = ServerState()
    first, _ = _connected(loop, state)
    first.watch.cap = 8
    arrivals = [first] + [_connected(loop, state)[0] for _ in range(11)]
    staying = [p for p in arrivals if not p.leaving]
    assert len(staying) == 8
    assert sum(p.transport.aborted for p in arrivals) == 4  # type: ignore[attr-defined]
