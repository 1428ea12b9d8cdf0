"""gzip on a real server: streams and pages compressed when asked, each stream line decodable
as it arrives (shown against a stalled database), and the Python client resuming gzip
streams cut mid-member by a proxy."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Any

import httpx

from svc.client import Retry, TraceClient
from tests.support import DOMAINS, create_job, records_of, sql_truth
from tests.support.cutproxy import CutProxy
from tests.support.servers import ServerProcess, start_server

GZIP = {"Accept-Encoding": "gzip"}


def _gunzip_lines(raw: bytes) -> list[dict[str, Any]]:
    text = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
    return [json.loads(x) for x in text.split(b"\n") if x]


def test_a_stream_is_gzip_when_asked_and_equals_the_query(
    server: ServerProcess, demo_db: Path, demo_cids: list[str]
) -> None:
    job = create_job(server.url, demo_cids)
    url = f"{server.url}/api/trace/job/{job['job_id']}/stream"
    with httpx.stream("GET", url, headers=GZIP, timeout=60) as r:
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["vary"] == "Accept-Encoding"
        raw = b"".join(r.iter_raw())
    lines = _gunzip_lines(raw)  # one complete gzip member: trailer and CRC check out
    assert lines[-1]["type"] == "complete"
    truth = sql_truth(demo_db, demo_cids, DOMAINS)
    assert records_of(lines) == truth
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=60)
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    assert len(raw) * 4 < len(plain.content)  # JSON lines shrink several times
    refused = httpx.get(url, headers={"Accept-Encoding": "gzip;q=0, br"}, timeout=60)
    assert "content-encoding" not in refused.headers
    head = httpx.head(url, headers=GZIP)  # the headers of the GET, no body
    assert head.headers["content-encoding"] == "gzip" and head.content == b""


def test_pages_are_gzip_when_worth_it(server: ServerProcess, demo_cids: list[str]) -> None:
    job = create_job(server.url, demo_cids)
    base = f"{server.url}/api/trace/job/{job['job_id']}/result?domain=history"
    big = httpx.get(f"{base}&limit=500", headers=GZIP)
    assert big.headers["content-encoding"] == "gzip" and big.headers["vary"] == "Accept-Encoding"
    plain = httpx.get(f"{base}&limit=500", headers={"Accept-Encoding": "identity"})
    assert big.json() == plain.json()  # httpx decoded it
    with httpx.stream("GET", f"{base}&limit=500", headers=GZIP) as r:
        raw = b"".join(r.iter_raw())
        assert int(r.headers["content-length"]) == len(raw) < len(plain.content) / 4
    assert json.loads(zlib.decompress(raw, 16 + zlib.MAX_WBITS)) == plain.json()
    tiny = httpx.get(f"{base}&limit=1", headers=GZIP)  # under 1 KiB: not worth it
    assert "content-encoding" not in tiny.headers and tiny.headers["vary"] == "Accept-Encoding"
    assert len(tiny.content) < 1024
    problem = httpx.get(f"{server.url}/api/trace/job/nope/result?domain=history", headers=GZIP)
    assert problem.status_code == 404 and "content-encoding" not in problem.headers


def test_gzip_off_sends_identity_without_vary(small_demo_db: Path, tmp_path: Path) -> None:
    srv = start_server(tmp_path, small_demo_db, {"TRACE_GZIP": "off"})
    try:
        cids = [
            r[0]
            for r in sqlite3.connect(small_demo_db).execute(
                "SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS LIMIT 200"
            )
        ]
        job = create_job(srv.url, cids)
        url = f"{srv.url}/api/trace/job/{job['job_id']}"
        for r in (
            httpx.get(f"{url}/stream", headers=GZIP),
            httpx.get(f"{url}/result?domain=history&limit=500", headers=GZIP),
        ):
            assert r.status_code == 200
            assert "content-encoding" not in r.headers and "vary" not in r.headers
    finally:
        srv.stop()


def test_each_line_decodes_as_it_is_written_while_the_database_stalls(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    """Once the client has decoded the first records line, the database is locked: the
    next page query waits. Meanwhile the client decodes from the gzip stream every line the
    server wrote before, and then heartbeats, one by one: the next records line cannot
    exist yet, so nothing it decoded waited for more data in the compressor."""
    db = tmp_path / "demo.sqlite3"
    shutil.copy(demo_db, db)
    env = {"TRACE_STREAM_BATCH_SIZE": "500", "TRACE_HEARTBEAT_SECONDS": "0.3"}
    srv = start_server(tmp_path / "data", db, env)
    locker = sqlite3.connect(db, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        job = create_job(srv.url, demo_cids)
        while len(httpx.get(f"{srv.url}/api/trace/job/{job['job_id']}").json()["totals"]) < 2:
            time.sleep(0.05)  # the counts need the database: let them finish first
        locked_at: float | None = None
        released = False
        lines: list[dict[str, Any]] = []
        while_locked: list[str] = []
        gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        text = b""
        url = f"{srv.url}/api/trace/job/{job['job_id']}/stream"
        with httpx.stream("GET", url, headers=GZIP, timeout=30) as r:
            assert r.headers["content-encoding"] == "gzip"
            for chunk in r.iter_raw():  # the compressed bytes, as they arrive
                text += gunzip.decompress(chunk)
                *whole, text = text.split(b"\n")
                for raw in whole:
                    lines.append(json.loads(raw))
                    if locked_at is not None and not released:
                        while_locked.append(lines[-1]["type"])
                if locked_at is None and lines and lines[-1]["type"] == "records":
                    locker.execute("BEGIN EXCLUSIVE")  # the next page query now waits
                    locked_at = time.monotonic()
                beats = while_locked.count("heartbeat")
                # Released after 3 heartbeats, or after 3 s (under the 5 s busy timeout).
                if locked_at is not None and not released:
                    if beats >= 3 or time.monotonic() - locked_at > 3:
                        locker.execute("ROLLBACK")
                        released = True
        # Before the heartbeats, at most the records lines of pages read before the lock.
        assert while_locked.count("heartbeat") >= 3, while_locked
        first_beat = while_locked.index("heartbeat")
        assert set(while_locked[:first_beat]) <= {"records"}, while_locked
        assert set(while_locked[first_beat:]) == {"heartbeat"}, while_locked
        assert [x["type"] for x in lines[:3]] == ["meta", "domain_start", "records"]
        assert lines[-1]["type"] == "complete"
        truth = sql_truth(demo_db, demo_cids, DOMAINS)
        assert records_of(lines) == truth
    finally:
        locker.close()
        srv.stop()


def test_the_client_resumes_gzip_streams_cut_mid_member(
    server: ServerProcess, demo_db: Path, demo_cids: list[str]
) -> None:
    """httpx (under svc.client) asks for gzip and decodes it; a cut inside the compressed
    stream is a retryable error, and the client resumes from its last since."""
    cuts = [25_000, 30_000, 4_000, 55_000, 21_000]  # compressed bytes; the job: ~400 KB
    port = int(server.url.rsplit(":", 1)[1])
    with CutProxy(port, cuts, marker=b"/stream") as proxy:
        with TraceClient(proxy.url, retries=Retry(attempts=8, base=0.01, cap=0.2)) as client:
            job = client.create_job(demo_cids)
            got: dict[str, list[tuple[Any, ...]]] = {}
            for domain, record in client.iter_records(job.job_id):
                got.setdefault(domain, []).append(tuple(record[c] for c in DOMAINS[domain].columns))
        stats = proxy.stats
    assert stats.cuts == len(cuts), stats
    assert stats.stream_connections == len(cuts) + 1
    assert set(stats.encodings) == {"gzip"}, stats.encodings
    # Each reconnect resumed from a token once a whole line with one had passed the proxy.
    had_token = [any(stats.delivered_since[:i]) for i in range(len(stats.stream_requests))]
    assert ["since=" in r for r in stats.stream_requests] == had_token, stats
    assert sum(had_token) >= len(cuts) - 1, stats
    assert got == sql_truth(demo_db, demo_cids, DOMAINS)


def test_a_high_level_compresses_large_lines_in_a_thread_and_stays_exact(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    env = {"TRACE_GZIP": "9", "TRACE_STREAM_BATCH_SIZE": "3000"}  # lines of ~400 KB
    srv = start_server(tmp_path, demo_db, env)
    try:
        job = create_job(srv.url, demo_cids)
        url = f"{srv.url}/api/trace/job/{job['job_id']}/stream?format=arrays"
        with httpx.stream("GET", url, headers=GZIP, timeout=60) as r:
            assert r.headers["content-encoding"] == "gzip"
            lines = _gunzip_lines(b"".join(r.iter_raw()))
        assert lines[-1]["type"] == "complete"
        assert records_of(lines) == sql_truth(demo_db, demo_cids, DOMAINS)
    finally:
        srv.stop()
