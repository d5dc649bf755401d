"""The HTTP edge (``app/edge.py``), spoken to in raw HTTP on a real server.

What a hostile scanner sends before any key is checked: oversized request lines and
headers, malformed framing, trickled headers, short bodies, idle connections, and a
slowloris of hundreds of connections against a worker with few file descriptors. Each
answer must be problem+json with the headers every answer carries, the worker's memory
must not grow with what it refuses, and a prompt client must still be served.
"""

from __future__ import annotations

import contextlib
import json
import re
import resource
import signal
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.requests import Request

from app.api.deps import _failure_budget
from app.settings import Settings
from tests.service import Server, running_service

# Short limits, so each timeout is seen within seconds.
QUICK = {
    "LADDERBACK_HEADER_TIMEOUT_SECONDS": "1",
    "LADDERBACK_BODY_TIMEOUT_SECONDS": "1",
    "LADDERBACK_KEEP_ALIVE_SECONDS": "1",
}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the first byte sent to the first byte of the answer (or close)

    def problem(self) -> dict[str, Any]:
        assert self.headers.get("content-type") == "application/problem+json", self
        document: dict[str, Any] = json.loads(self.body)
        assert document["status"] == self.status
        assert all(document[field] for field in ("title", "detail", "type")), document
        return document


def _port(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def exchange(server: Server, *parts: bytes, pause: float = 0.0, timeout: float = 10) -> Answer:
    """Send ``parts`` (``pause`` seconds apart) on a new connection, then read until the
    server closes it. Sending stops quietly once the server has stopped reading."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=timeout) as conn:
        for part in parts:
            try:
                conn.sendall(part)
            except OSError:
                break  # the server answered and closed: read what it said
            time.sleep(pause)
        received = b""
        seconds = None
        try:
            while chunk := conn.recv(65_536):
                seconds = seconds or time.monotonic() - started
                received += chunk
        except ConnectionResetError:
            pass
    seconds = seconds or time.monotonic() - started
    if not received:
        return Answer(0, {}, b"", seconds)
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body, seconds)


def _assert_like_every_answer(answer: Answer) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers.get("x-request-id", "")), answer
    assert answer.headers.get("cache-control") == "no-store"
    assert answer.headers.get("x-content-type-options") == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers.get("content-security-policy", "")
    assert answer.headers.get("connection") == "close"


def _request(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_service(tmp_path_factory.mktemp("edge"), env=QUICK) as running:
        yield running


def _worker_rss_kb(server: Server) -> int:
    # One worker: the served process itself.
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def _refusals(server: Server) -> dict[str, float]:
    text = httpx.get(f"{server.base_url}/metrics").text
    found = re.findall(r'^ladderback_edge_refusals_total\{reason="(\w+)"\} (\S+)$', text, re.M)
    return {reason: float(count) for reason, count in found}


def test_a_request_target_over_8_kb_gets_414_as_a_problem(server: Server) -> None:
    long_path = exchange(server, _request(f"GET /v1/users/{'a' * 9000} HTTP/1.1\nHost: x\n"))
    assert long_path.status == 414
    assert "8192" in long_path.problem()["detail"]
    _assert_like_every_answer(long_path)
    # A 1 MB query string: refused after its first 8 KB, not read whole first.
    query = exchange(server, b"GET /healthz?q=", b"a" * 1_000_000, b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert query.status == 414
    _assert_like_every_answer(query)


def test_a_header_over_16_kb_or_headers_over_64_kb_get_431(server: Server) -> None:
    one_long = exchange(
        server, _request(f"GET /healthz HTTP/1.1\nHost: x\nX-Pad: {'a' * 17_000}\n")
    )
    assert one_long.status == 431
    assert "16384" in one_long.problem()["detail"]
    _assert_like_every_answer(one_long)
    many = "".join(f"X-Pad-{i}: {'b' * 1000}\n" for i in range(70))  # each fine, 70 KB in all
    many_short = exchange(server, _request(f"GET /healthz HTTP/1.1\nHost: x\n{many}"))
    assert many_short.status == 431
    assert "65536" in many_short.problem()["detail"]
    _assert_like_every_answer(many_short)
    # Just inside the limits: served.
    near = "".join(f"X-Pad-{i}: {'c' * 1000}\n" for i in range(50))
    assert (
        exchange(
            server, _request(f"GET /healthz HTTP/1.1\nHost: x\nConnection: close\n{near}")
        ).status
        == 200
    )


def test_huge_headers_are_refused_without_the_worker_growing(server: Server) -> None:
    """Four connections each sending an 8 MB header: before, an 8 MB header got 200, and
    four 32 MB ones took a worker from 138 MB to 320 MB."""
    before = _worker_rss_kb(server)
    answers: list[Answer] = []

    def send_huge() -> None:
        chunk = b"a" * 1_048_576
        answers.append(
            exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ", *[chunk] * 8)
        )

    threads = [threading.Thread(target=send_huge) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status for a in answers] == [431] * 4
    for answer in answers:
        _assert_like_every_answer(answer)
    grown_mb = (_worker_rss_kb(server) - before) / 1024
    assert grown_mb < 16, f"the worker grew by {grown_mb:.0f} MB refusing four 8 MB headers"
    # And it still serves.
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


@pytest.mark.parametrize(
    ("name", "request_bytes"),
    [
        (
            "a Content-Length that is not a number",
            _request("POST /v1/recommendations HTTP/1.1\nHost: x\nContent-Length: abc\n"),
        ),
        (
            "Content-Length beside Transfer-Encoding",
            _request(
                "POST /v1/recommendations HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                "Content-Length: 4\nTransfer-Encoding: chunked\n",
                b"0\r\n\r\n",
            ),
        ),
        ("a NUL in a header", _request("GET /healthz HTTP/1.1\nHost: x\nX-Bad: a\x00b\n")),
        (
            "a broken chunk size",
            _request(
                "POST /v1/recommendations HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                "Transfer-Encoding: chunked\n",
                b"zz\r\n{}\r\n0\r\n\r\n",
            ),
        ),
        ("not HTTP at all", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
    ],
)
def test_malformed_http_gets_400_as_a_problem(
    server: Server, name: str, request_bytes: bytes
) -> None:
    answer = exchange(server, request_bytes)
    assert answer.status == 400, name
    assert answer.problem()["type"] == "/problems/malformed-request"
    _assert_like_every_answer(answer)


def test_headers_trickled_past_the_header_timeout_get_408(server: Server) -> None:
    lines = [b"GET /healthz HTTP/1.1\r\n"] + [b"X-Slow: 1\r\n"] * 20
    answer = exchange(server, *lines, pause=0.2)
    assert answer.status == 408
    assert "headers" in answer.problem()["detail"]
    _assert_like_every_answer(answer)
    assert answer.seconds < 3.5, f"cut off only after {answer.seconds:.1f} s (limit 1 s)"


def test_a_body_shorter_than_its_length_gets_408_and_no_server_error(server: Server) -> None:
    head = _request(
        "POST /v1/recommendations HTTP/1.1\nHost: x\nContent-Type: application/json\n"
        "Content-Length: 400\n",
        b'{"profile": ',
    )
    answer = exchange(server, head)
    assert answer.status == 408
    assert "body" in answer.problem()["detail"]
    _assert_like_every_answer(answer)
    assert answer.seconds < 3.5, f"cut off only after {answer.seconds:.1f} s (limit 1 s)"
    # The application saw its client leave (499), not a failure of its own (500).
    counted = httpx.get(f"{server.base_url}/metrics").text
    assert 'route="/v1/recommendations",status="499"' in counted
    assert 'status="500"' not in counted
    assert "unhandled" not in server.log_text()


def test_an_idle_connection_is_closed_without_an_answer(server: Server) -> None:
    nothing = exchange(server, b"")
    assert (nothing.status, nothing.body) == (0, b"")
    assert nothing.seconds < 3.5
    # After an answer, the connection may wait for the next request only as long.
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        received = b""
        while chunk := conn.recv(65_536):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        assert time.monotonic() - started < 3.5


def _few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_a_slowloris_does_not_stop_a_prompt_client(tmp_path: Path) -> None:
    """300 connections trickling headers against a worker allowed 256 file descriptors
    (before, 600 slow connections against 512 made every other request fail for 30 s,
    logging nothing). A client that sends its request promptly is served throughout; the
    crowding is counted, and logged once, not once a connection."""
    slow_count, cap = 300, 256 - 64
    with running_service(tmp_path, preexec_fn=_few_descriptors) as server:
        slow = []
        for _ in range(slow_count):
            conn = socket.create_connection(("127.0.0.1", _port(server)), timeout=5)
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            slow.append(conn)
        stop = threading.Event()

        def trickle() -> None:
            while not stop.is_set():
                for conn in slow:
                    with contextlib.suppress(OSError):  # closed to make room
                        conn.send(b"X-Slow: 1\r\n")
                stop.wait(0.5)

        trickler = threading.Thread(target=trickle)
        trickler.start()
        timings, statuses = [], []
        try:
            with httpx.Client(base_url=server.base_url, timeout=5) as client:
                for _ in range(20):
                    started = time.monotonic()
                    statuses.append(client.get("/healthz").status_code)
                    timings.append(time.monotonic() - started)
                    time.sleep(0.05)
        finally:
            stop.set()
            trickler.join()
            for conn in slow:
                conn.close()
        assert statuses == [200] * 20
        median_ms = statistics.median(timings) * 1000
        assert median_ms < 500, f"prompt client's median {median_ms:.0f} ms under the slowloris"
        refusals = _refusals(server)
        assert refusals.get("closed_for_room", 0) >= slow_count - cap, refusals
        log = server.log_text()
        assert log.count("connection cap lowered to 192 by the open-file limit of 256") == 1
        assert log.count("connections at the cap of 192") == 1, log


def _inside_one_minute() -> None:
    """The budgets are one-minute windows: keep a short burst inside one of them."""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def _failed_keys(server: Server, forwarded_for: list[str]) -> list[int]:
    statuses = []
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        for i, chain in enumerate(forwarded_for):
            headers = {"Authorization": f"Bearer not-a-key-{i}", "X-Forwarded-For": chain}
            statuses.append(client.get("/v1/users", headers=headers).status_code)
    return statuses


BUDGET = {"LADDERBACK_RATE_LIMIT_PER_MINUTE": "5"}


def test_a_forged_forwarded_address_does_not_renew_the_failed_key_budget(
    tmp_path: Path,
) -> None:
    """No proxy is believed by default: a fresh X-Forwarded-For on every guess still
    spends the connection's own budget."""
    with running_service(tmp_path, env=BUDGET) as server:
        _inside_one_minute()
        forged = [f"203.0.113.{i}" for i in range(7)]
        assert _failed_keys(server, forged) == [401] * 5 + [429] * 2


def test_behind_a_listed_proxy_the_address_it_appended_is_counted(tmp_path: Path) -> None:
    """This test plays a listed proxy that appends the address it saw: what a client wrote
    before it does not matter; the appended address does."""
    env = {**BUDGET, "LADDERBACK_FORWARDED_ALLOW_IPS": "127.0.0.1, ::1"}
    with running_service(tmp_path, env=env) as server:
        _inside_one_minute()
        written_by_client = [f"198.51.100.{i}, 203.0.113.7" for i in range(7)]
        assert _failed_keys(server, written_by_client) == [401] * 5 + [429] * 2
        # Another client behind the same proxy has a budget of its own.
        assert _failed_keys(server, ["203.0.113.8"]) == [401]


@pytest.mark.parametrize(
    "proxies", ["*", "10.0.0.1, *", "proxy.internal", "10.0.0.300", "10.0.0.1/8"]
)
def test_proxy_settings_that_would_let_clients_choose_their_address_are_refused(
    proxies: str,
) -> None:
    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        Settings(forwarded_allow_ips=proxies)


def test_proxies_are_listed_by_address_or_network() -> None:
    assert Settings(forwarded_allow_ips=" 10.0.0.0/8, 192.168.1.7 ,::1").forwarded_allow_ips == (
        "10.0.0.0/8,192.168.1.7,::1"
    )
    assert Settings(forwarded_allow_ips="").forwarded_allow_ips is None


def test_ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() -> None:
    """One host may hold a whole IPv6 /64: counting each address apart would give it
    billions of failed-key budgets."""

    def budget(host: str) -> str:
        return _failure_budget(Request({"type": "http", "client": (host, 1), "headers": []}))

    assert budget("2001:db8:1:2::1") == budget("2001:db8:1:2:ffff::9")
    assert budget("2001:db8:1:2::1") != budget("2001:db8:1:3::1")
    assert budget("::ffff:192.0.2.7") == budget("192.0.2.7")
    assert budget("192.0.2.7") != budget("192.0.2.8")


def _read_answer(conn: socket.socket) -> bytes:
    """One answer with a Content-Length body, read off a connection that stays open."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += conn.recv(65_536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += conn.recv(65_536)
    return head


def test_a_body_sent_after_an_early_answer_leaves_the_connection_reusable(
    server: Server,
) -> None:
    """The app answers 415 before the body has arrived; the body then arrives. The
    connection serves its next request, and is closed once idle: not held open forever."""
    early = (
        b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 10\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as conn:
        conn.sendall(early)
        assert _read_answer(conn).startswith(b"HTTP/1.1 415")
        conn.sendall(b"0123456789")
        started = time.monotonic()
        assert conn.recv(65_536) == b""  # closed when idle past the keep-alive limit
        assert time.monotonic() - started < 3.5
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as conn:
        conn.sendall(early)
        assert _read_answer(conn).startswith(b"HTTP/1.1 415")
        conn.sendall(b"0123456789")
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_answer(conn).startswith(b"HTTP/1.1 200")


def test_trailers_count_against_the_body_and_are_refused_past_its_limit(
    server: Server,
) -> None:
    """A chunked body's trailers are not headers the app sees, and not unlimited either
    (before, a gigabyte of them grew a worker to 1.3 GB)."""
    before = _worker_rss_kb(server)
    head = (
        b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
    )
    trailer_lines = b"X-Trailer: " + b"t" * 1000 + b"\r\n"
    answer = exchange(server, head, *[trailer_lines * 1000] * 8)  # 8 MB of trailers
    assert answer.status == 413
    assert answer.problem()["type"] == "/problems/payload-too-large"
    _assert_like_every_answer(answer)
    assert (_worker_rss_kb(server) - before) / 1024 < 16
    # A few trailers are fine: the request is served (here: refused for its missing key).
    small = exchange(server, head + b"X-Checksum: 1\r\n\r\n")
    assert small.status == 401


def test_a_pipelined_request_is_not_read_and_the_first_answer_closes(server: Server) -> None:
    """Requests sent before the first answer: the first is answered with
    ``Connection: close`` and the others are left for the client to resend."""
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
        received = b""
        while chunk := conn.recv(65_536):
            received += chunk
    assert received.count(b"HTTP/1.1 ") == 1
    assert received.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in received.lower()


def test_at_the_cap_idle_connections_are_closed_before_an_upload_in_progress(
    tmp_path: Path,
) -> None:
    """A client uploading steadily keeps its connection while a flood of idle connections
    arrives at a worker capped at 20: the idle ones make room for each other."""
    with (
        running_service(tmp_path, env={"LADDERBACK_MAX_CONNECTIONS": "20"}) as server,
        socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as upload,
    ):
        upload.sendall(
            b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
        )
        body = b'{"pad": "' + b"a" * 3989 + b'"}'  # 4000 bytes over 2 s: 2 KB/s
        flood: list[socket.socket] = []
        try:
            for piece in range(20):
                upload.sendall(body[piece * 200 : piece * 200 + 200])
                flood += [
                    socket.create_connection(("127.0.0.1", _port(server)), timeout=10)
                    for _ in range(5)
                ]
                time.sleep(0.1)
            head = _read_answer(upload)
        finally:
            for conn in flood:
                conn.close()
        assert head.startswith(b"HTTP/1.1 401")  # the app read the whole body, then the key
        assert _refusals(server).get("closed_for_room", 0) >= 100 - 20


def test_a_stop_answers_bodies_still_arriving_instead_of_waiting_for_them(
    tmp_path: Path,
) -> None:
    """SIGTERM with slow uploads in progress: each gets 503 at once, and the worker stops
    well within the container's grace period (before, it waited out their deadlines)."""
    with running_service(tmp_path) as server:
        uploads = []
        for _ in range(5):
            conn = socket.create_connection(("127.0.0.1", _port(server)), timeout=10)
            conn.sendall(
                b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            uploads.append(conn)
        time.sleep(0.5)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=15)
        stopped_in = time.monotonic() - started
        answers = []
        for conn in uploads:
            with conn:
                answers.append(conn.recv(65_536).split(b"\r\n", 1)[0])
        assert answers == [b"HTTP/1.1 503 Service Unavailable"] * 5
        assert stopped_in < 4, f"the stop took {stopped_in:.1f} s"
        assert "Exception in ASGI application" not in server.log_text()


def test_a_reused_connection_gets_the_same_answers_as_a_fresh_one(server: Server) -> None:
    """After an answer on the same connection: a target uvicorn cannot parse still gets
    its 400, and a head over the limit sent in one piece with the end of an early-answered
    body still gets its 431."""
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_answer(conn).startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET http://[::1/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_answer(conn).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 10\r\n\r\n"
        )
        assert _read_answer(conn).startswith(b"HTTP/1.1 415")
        pad = "".join(f"X-Pad-{i}: {'p' * 1000}\r\n" for i in range(150)).encode()
        with contextlib.suppress(OSError):
            conn.sendall(b"0123456789GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n")
        assert _read_answer(conn).startswith(b"HTTP/1.1 431")
