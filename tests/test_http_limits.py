"""The HTTP server under abuse, against a real server on loopback: pipelining, header
floods, slowloris, short bodies and too many connections are bounded in memory and time,
answered with problem+json where a response is possible, and /healthz stays fast."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import ServerProcess, start_server

HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
SLACK = 1.5  # scheduling on a shared machine
MB = 1 << 20
ENV = {
    "TRACE_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
    "TRACE_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
}
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture(scope="module")
def srv(small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("http-limits"), small_demo_db, ENV)
    yield server
    server.stop()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self, status: int, code: str) -> dict[str, Any]:
        assert self.status == status, (self.status, self.body)
        assert self.headers["content-type"] == "application/problem+json"
        assert self.headers["connection"].lower() == "close"
        body: dict[str, Any] = json.loads(self.body)
        assert body["code"] == code and body["status"] == status and body["title"]
        return body


def connect(server: ServerProcess, timeout: float = 10) -> socket.socket:
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def read_reply(sock: socket.socket) -> Reply | None:
    """One response, or None when the server closed (or reset) without one."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "-1"))
        while length < 0 or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except ConnectionResetError:
        return None
    return Reply(int(lines[0].split()[1]), headers, body)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (reading and dropping any data)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            try:
                if not sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
    return False


def rss_mb(server: ServerProcess) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def assert_healthz_fast(server: ServerProcess) -> None:
    t = time.monotonic()
    r = httpx.get(server.url + "/healthz", timeout=5)
    assert r.status_code == 200
    assert time.monotonic() - t < 1.0, "a small request waited behind the abuse"


@pytest.mark.slow
def test_pipelined_requests_never_read_do_not_grow_memory(srv: ServerProcess) -> None:
    before = rss_mb(srv)
    sock = connect(srv)
    sock.setblocking(False)
    payload = HEALTHZ * (8 * MB // len(HEALTHZ))
    sent = 0
    deadline = time.monotonic() + 5
    while sent < len(payload) and time.monotonic() < deadline:
        if select.select([], [sock], [], 0.2)[1]:
            sent += sock.send(payload[sent : sent + 65536])
    assert_healthz_fast(srv)
    during = rss_mb(srv)
    sock.close()
    time.sleep(0.5)
    after = rss_mb(srv)
    assert sent > 256 * 1024, "the server did not read the pipelined requests"
    assert during - before < 50, f"{sent} bytes of pipelining grew RSS {before:.0f} -> {during:.0f}"
    assert after - before < 50, f"RSS kept after close: {before:.0f} -> {after:.0f} MB"


@pytest.mark.slow
def test_header_floods_get_431_and_do_not_grow_memory(srv: ServerProcess) -> None:
    before = rss_mb(srv)
    socks = [connect(srv, timeout=5) for _ in range(10)]
    chunk = b"X-Flood: " + b"a" * 32760 + b"\r\n"
    for sock in socks:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
    flooded = [0] * len(socks)
    for _ in range(4 * MB // len(chunk)):  # a few MB each, until the server answers
        open_socks = [i for i, s in enumerate(socks) if flooded[i] >= 0]
        if not open_socks:
            break
        for i in open_socks:
            if select.select([socks[i]], [], [], 0)[0]:
                flooded[i] = -1  # answered: read it below
                continue
            try:
                socks[i].sendall(chunk)
                flooded[i] += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                flooded[i] = -1
    during = rss_mb(srv)
    replies = [read_reply(sock) for sock in socks]
    for sock in socks:
        assert closed_within(sock, 2)
        sock.close()
    answered = [r for r in replies if r is not None]
    assert len(answered) >= 8, replies  # the rest were reset while still sending
    for reply in answered:
        reply.problem(431, "headers_too_large")
    assert during - before < 50, f"header floods grew RSS {before:.0f} -> {during:.0f} MB"
    assert_healthz_fast(srv)


@pytest.mark.slow
def test_slowloris_connections_are_closed_after_the_header_timeout(srv: ServerProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 100
    socks = [connect(srv) for _ in range(5)]
    # One of them first finishes a request: its timeout runs from the end of that response.
    socks[0].sendall(HEALTHZ)
    reply = read_reply(socks[0])
    assert reply is not None and reply.status == 200
    start = time.monotonic()
    closed_at: dict[int, float] = {}
    replies: dict[int, bytes] = {}
    sent = 0
    while len(closed_at) < len(socks) and time.monotonic() - start < HEADER_TIMEOUT + 2 * SLACK:
        for i, sock in enumerate(socks):
            if i in closed_at:
                continue
            try:
                if select.select([sock], [], [], 0)[0]:
                    data = sock.recv(65536)
                    replies[i] = replies.get(i, b"") + data
                    if not data:
                        closed_at[i] = time.monotonic() - start
                        continue
                sock.send(head[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed_at[i] = time.monotonic() - start
        sent += 1
        time.sleep(0.25)  # four bytes a second: a slow client, never a complete head
    if len(closed_at) > 1:
        assert_healthz_fast(srv)
    for sock in socks:
        sock.close()
    assert len(closed_at) == len(socks), f"still open after {HEADER_TIMEOUT + 2 * SLACK} s"
    assert max(closed_at.values()) <= HEADER_TIMEOUT + SLACK, closed_at
    for data in replies.values():  # a 408 when it could be delivered before the close
        if data:
            assert data.startswith(b"HTTP/1.1 408 ") and b'"code":"request_timeout"' in data


@pytest.mark.slow
def test_a_body_shorter_than_its_content_length_gets_408(srv: ServerProcess) -> None:
    sock = connect(srv)
    t = time.monotonic()
    sock.sendall(
        b"POST /api/trace/job HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"container_ids": ['
    )
    reply = read_reply(sock)
    took = time.monotonic() - t
    assert reply is not None
    reply.problem(408, "request_timeout")
    assert BODY_TIMEOUT - 0.1 <= took <= BODY_TIMEOUT + SLACK
    assert closed_within(sock, SLACK)
    sock.close()


@pytest.mark.slow
def test_a_body_still_arriving_after_its_response_is_cut_off(srv: ServerProcess) -> None:
    """The app answers without reading the body; the rest may not trickle in for ever."""
    sock = connect(srv)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nx")
    reply = read_reply(sock)
    assert reply is not None and reply.status == 200
    t = time.monotonic()
    closed = False
    while time.monotonic() - t < HEADER_TIMEOUT + 2 * SLACK:
        if closed_within(sock, 0.25):
            closed = True
            break
        try:
            sock.send(b"x")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    sock.close()
    assert closed and time.monotonic() - t <= HEADER_TIMEOUT + SLACK


def test_a_malformed_request_gets_a_problem_400(srv: ServerProcess) -> None:
    for head in (
        b"GARBAGE\r\n\r\n",
        b"GET  HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nno colon\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    ):
        with connect(srv) as sock:
            sock.sendall(head)
            reply = read_reply(sock)
            assert reply is not None, head
            reply.problem(400, "invalid_request")
            assert closed_within(sock, 1)


def test_connections_beyond_the_limit_get_503(small_demo_db: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, small_demo_db, {**ENV, "TRACE_MAX_CONNECTIONS": "3"})
    try:
        held = [connect(server) for _ in range(3)]
        for sock in held:  # each answered, so each is counted, and kept alive
            sock.sendall(HEALTHZ)
            reply = read_reply(sock)
            assert reply is not None and reply.status == 200
        over = connect(server)
        over.sendall(HEALTHZ)
        reply = read_reply(over)
        assert reply is not None
        reply.problem(503, "overloaded")
        assert int(reply.headers["retry-after"]) >= 1
        assert closed_within(over, 1)
        over.close()
        held.pop().close()
        time.sleep(0.2)
        again = connect(server)  # a freed place is taken again
        again.sendall(HEALTHZ)
        reply = read_reply(again)
        assert reply is not None and reply.status == 200
        for sock in [*held, again]:
            sock.close()
    finally:
        server.stop()


def problems_counted(server: ServerProcess, code: str) -> float:
    r = httpx.get(f"{server.url}/metrics")
    assert r.status_code == 200
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == "trace_problem_responses_total" and sample.labels["code"] == code:
                return sample.value
    return 0.0


def test_protocol_problems_are_counted_like_the_apps(srv: ServerProcess) -> None:
    """h11's own 400 and 431 are built by `svc.http.problems`, which counts every one."""
    malformed, too_large = (
        problems_counted(srv, "invalid_request"),
        problems_counted(srv, "headers_too_large"),
    )
    with connect(srv) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        reply = read_reply(sock)
        assert reply is not None
        reply.problem(400, "invalid_request")
    with connect(srv) as sock:
        # A head that is not complete and already over the limit.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 65536)
        reply = read_reply(sock)
        assert reply is not None
        reply.problem(431, "headers_too_large")
    assert problems_counted(srv, "invalid_request") == malformed + 1
    assert problems_counted(srv, "headers_too_large") == too_large + 1
