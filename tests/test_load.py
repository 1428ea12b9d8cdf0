"""Load and abuse against a real server on loopback, each bounded in time and count.

Slow readers, admission caps, abandoned page reads, HEAD, bodies of millions of tiny
CIDs and malformed numbers: each asserts the bound that matters (RSS growth, CPU seconds
from /proc, status codes, a small request's latency meanwhile).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import DOMAINS, create_job, iter_lines, records_of, records_union, sql_truth
from tests.support.servers import ServerProcess, start_server

MB = 1024 * 1024


def rss(server: ServerProcess) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1]) * 1024


def cpu_seconds(server: ServerProcess) -> float:
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def active_streams(server: ServerProcess) -> int:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("trace_active_streams "))
    return int(float(line.split()[1]))


def open_stream(server: ServerProcess, path: str, rcvbuf: int = 4096) -> socket.socket:
    """A raw connection with a small receive buffer that asked for `path`."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(x.lower().split(": ", 1) for x in lines[1:] if ": " in x)
    return int(lines[0].split()[1]), headers, rest


def healthz_seconds(server: ServerProcess) -> float:
    started = time.monotonic()
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    return time.monotonic() - started


def wait_until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


@pytest.fixture
def loaded(demo_db: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path,
        demo_db,
        {
            "TRACE_STREAM_BATCH_SIZE": "2000",
            "TRACE_MAX_STREAMS": "10",
            "TRACE_MAX_STREAMS_PER_CLIENT": "100",
            "TRACE_SLOW_READER_SECONDS": "0",
        },
    )
    yield srv
    srv.stop()


@pytest.mark.slow
def test_slow_readers_hold_bounded_memory_and_the_cap_answers_503(
    loaded: ServerProcess, demo_cids: list[str]
) -> None:
    job = create_job(loaded.url, demo_cids)
    list(iter_lines(loaded.url, job["job_id"]))  # warm: counted, code paths loaded
    before = rss(loaded)
    socks = [open_stream(loaded, job["links"]["stream"]) for _ in range(16)]
    try:
        heads = [read_head(s) for s in socks]
        statuses = sorted(h[0] for h in heads)
        assert statuses == [200] * 10 + [503] * 6
        for status, headers, _ in heads:
            if status == 503:
                assert headers["retry-after"] == "1"
                assert headers["content-type"] == "application/problem+json"
        peak, slow = 0, [s for s, h in zip(socks, heads, strict=True) if h[0] == 200]
        latencies = []
        for _ in range(5):  # read 1 KB a second from each admitted stream
            for s in slow:
                s.recv(1024)
            peak = max(peak, rss(loaded))
            latencies.append(healthz_seconds(loaded))
            time.sleep(1)
        assert peak - before < 80 * MB, (before, peak)
        assert max(latencies) < 1.0, latencies
    finally:
        for s in socks:
            s.close()
    assert wait_until(lambda: active_streams(loaded) == 0, 10)  # every slot is given back
    assert list(iter_lines(loaded.url, job["job_id"]))[-1]["type"] == "complete"


def test_a_client_over_its_own_cap_gets_429(
    demo_db: Path, tmp_path: Path, demo_cids: list[str]
) -> None:
    srv = start_server(
        tmp_path, demo_db, {"TRACE_STREAM_BATCH_SIZE": "500", "TRACE_MAX_STREAMS_PER_CLIENT": "3"}
    )
    try:
        job = create_job(srv.url, demo_cids)
        socks = [open_stream(srv, job["links"]["stream"]) for _ in range(4)]
        heads = [read_head(s) for s in socks]
        assert sorted(h[0] for h in heads) == [200, 200, 200, 429]
        refused = next(h for h in heads if h[0] == 429)
        assert refused[1]["retry-after"] == "1"
        assert json.loads(refused[2].split(b"\r\n")[0] or b"{}").get("code", "") in (
            "too_many_requests",
            "",
        )
        page = httpx.get(f"{srv.url}{job['links']['result']}?domain=history&limit=5")
        assert page.status_code == 429 and page.json()["code"] == "too_many_requests"
        for s in socks:
            s.close()
        assert wait_until(lambda: active_streams(srv) == 0, 10)
        assert httpx.get(f"{srv.url}{job['links']['result']}?domain=history").status_code == 200
    finally:
        srv.stop()


def test_a_reader_that_stops_is_ended_and_resumes_exactly(
    demo_db: Path, tmp_path: Path, demo_cids: list[str]
) -> None:
    srv = start_server(
        tmp_path,
        demo_db,
        {"TRACE_STREAM_BATCH_SIZE": "2000", "TRACE_SLOW_READER_SECONDS": "1"},
    )
    try:
        job = create_job(srv.url, demo_cids)
        sock = open_stream(srv, job["links"]["stream"], rcvbuf=4096)  # objects: ~6 MB
        status, _, body = read_head(sock)
        assert status == 200
        assert wait_until(lambda: active_streams(srv) == 0, 10), "a stuck reader kept its slot"
        while chunk := sock.recv(65536):  # what the server had written, then the end
            body += chunk
        sock.close()
        text = body.decode()
        lines = []  # de-chunk: keep the NDJSON lines that arrived whole
        for raw in "".join(part for i, part in enumerate(text.split("\r\n")) if i % 2 == 1).split(
            "\n"
        ):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                break
        assert lines[0]["type"] == "meta" and lines[-1]["type"] != "complete"
        if lines[-1]["type"] == "reconnect":
            assert lines[-1]["reason"] == "slow_reader"
        since = [x["since"] for x in lines if x["type"] == "records"][-1]
        rest = list(iter_lines(srv.url, job["job_id"], since))
        union = records_union(lines, rest)
        assert union == sql_truth(demo_db, demo_cids, union)
    finally:
        srv.stop()


def metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return sum(float(x.split()[-1]) for x in text.splitlines() if x.startswith(f"{name} "))


def dechunk(body: bytes) -> bytes:
    """A whole chunked HTTP/1.1 body's data."""
    out, at = b"", 0
    while True:
        end = body.index(b"\r\n", at)
        size = int(body[at:end], 16)
        if size == 0:
            return out
        out += body[end + 2 : end + 2 + size]
        at = end + 4 + size


def test_a_stalled_reader_drops_its_read_ahead_then_goes_on_exactly(
    demo_db: Path, tmp_path: Path, demo_cids: list[str]
) -> None:
    """A client that stops reading for a few seconds: its stream drops the pages it read
    ahead (trace_read_ahead_shed_total), then reads them again, and the client that
    reads on gets every record once, through to `complete`."""
    srv = start_server(
        tmp_path, demo_db, {"TRACE_STREAM_BATCH_SIZE": "500", "TRACE_SLOW_READER_SECONDS": "0"}
    )
    try:
        job = create_job(srv.url, demo_cids)
        before = metric(srv, "trace_read_ahead_shed_total")
        with open_stream(srv, job["links"]["stream"], rcvbuf=4096) as sock:
            status, _, body = read_head(sock)
            assert status == 200
            assert wait_until(lambda: metric(srv, "trace_read_ahead_shed_total") > before, 10)
            while not body.endswith(b"\r\n0\r\n\r\n"):
                chunk = sock.recv(1 << 16)
                assert chunk, "the server closed the stream"
                body += chunk
        lines = [json.loads(x) for x in dechunk(body).splitlines()]
        assert lines[-1]["type"] == "complete"
        assert records_of(lines) == sql_truth(demo_db, demo_cids, DOMAINS)
    finally:
        srv.stop()


def test_abandoned_page_reads_and_head_cost_little_cpu(
    server: ServerProcess, demo_cids: list[str]
) -> None:
    job = create_job(server.url, demo_cids)
    page = f"{job['links']['result']}?domain=history&limit=50000"
    assert httpx.get(server.url + page, timeout=30).status_code == 200  # warm: counted
    before = cpu_seconds(server)
    for _ in range(5):
        assert httpx.get(server.url + page, timeout=30).status_code == 200
    per_page = (cpu_seconds(server) - before) / 5
    before = cpu_seconds(server)
    for _ in range(20):  # ask, then leave at once
        s = open_stream(server, page)
        s.close()
    time.sleep(1.0)
    abandoned = cpu_seconds(server) - before
    # ~0.05 of a page each (the request's own overhead and a query cut short); a page
    # read to the end would be 1.0
    assert abandoned < 0.4 * 20 * per_page, (abandoned, per_page)

    before = cpu_seconds(server)
    for _ in range(20):
        head = httpx.head(server.url + job["links"]["stream"], timeout=10)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "application/x-ndjson"
    heads = cpu_seconds(server) - before
    before = cpu_seconds(server)
    list(iter_lines(server.url, job["job_id"]))
    one_stream = cpu_seconds(server) - before
    assert heads < one_stream, (heads, one_stream)  # 20 HEADs cost less than one GET


def test_a_body_of_millions_of_tiny_cids_is_refused_cheaply(server: ServerProcess) -> None:
    body = b'{"container_ids": [' + b",".join([b'"a"'] * 2_300_000) + b"]}"
    before = rss(server)
    for _ in range(3):
        r = httpx.post(
            f"{server.url}/api/trace/job",
            content=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 400 and r.json()["code"] == "too_many_cids"
    assert rss(server) - before < 100 * MB


@pytest.mark.parametrize(
    "query",
    ["limit=%C2%B2", "limit=%E2%91%A0", "offset=%C2%B2", "limit=" + "9" * 5000, "offset=-1"],
)
def test_malformed_numbers_are_400s_without_a_stack_trace(
    server: ServerProcess, demo_cids: list[str], query: str
) -> None:
    job = create_job(server.url, demo_cids[:10])
    r = httpx.get(f"{server.url}{job['links']['result']}?domain=history&{query}", timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    r = httpx.get(f"{server.url}/api/demo/cids?n=%C2%B2", timeout=10)
    assert r.status_code in (400, 404)
    assert "Traceback" not in server.log()


def test_bad_bodies_are_400s_and_the_media_type_is_required(server: ServerProcess) -> None:
    url = f"{server.url}/api/trace/job"
    r = httpx.post(
        url, content=b'{"container_ids": ["a\xff"]}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    r = httpx.post(url, content=b'{"container_ids": ["a"]}', headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    r = httpx.get(url)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert "Traceback" not in server.log()
