"""Half-open connections: a proxy on loopback that stops forwarding part-way without closing
anything (tests/support/cutproxy.py `stall_after`). No byte, no FIN, no RST reaches either side, so
only the client's idle timeout can notice; it must drop the connection, resume with its last
`since`, and end with every record exactly once (against a direct SQL query of the demo
database). The browser consumer's twin of this test is in frontend/test (node, against the
real service) and tests/test_frontend_e2e.py (Chromium)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from svc.client import AsyncTraceClient, Retry, TraceClient
from tests.support import DOMAINS, create_job, sql_truth
from tests.support.cutproxy import CutProxy, ProxyStats
from tests.support.servers import ServerProcess, start_server

Row = tuple[Any, ...]
FAST = Retry(attempts=8, base=0.01, cap=0.5)
IDLE = 1.5  # seconds; three of the server's heartbeat intervals, as in production (45 s / 15 s)
# The n-th stream connection goes half-open after this share of the whole stream's bytes
# (counted from that connection's start): the 4th connection is the first to complete.
STALL_SHARES = (0.05, 0.4, 0.3)


@pytest.fixture(scope="module")
def stalling_server(
    demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory.mktemp("half-open"),
        demo_db,
        {
            "TRACE_STREAM_BATCH_SIZE": "300",
            "TRACE_HEARTBEAT_SECONDS": str(IDLE / 3),
            # Stalled connections stay open on the server until the proxy closes.
            "TRACE_MAX_STREAMS_PER_CLIENT": "32",
        },
    )
    yield srv
    srv.stop()


def _job_and_stalls(srv: ServerProcess, cids: list[str]) -> tuple[str, list[int]]:
    """A job, and where its stream connections stall (bytes), from one whole plain read."""
    job_id = str(create_job(srv.url, cids)["job_id"])
    with httpx.stream("GET", f"{srv.url}/api/trace/job/{job_id}/stream", timeout=60) as r:
        size = sum(len(chunk) for chunk in r.iter_raw())
    return job_id, [int(size * share) for share in STALL_SHARES]


def _rows(pairs: list[tuple[str, dict[str, Any]]]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for domain, record in pairs:
        out.setdefault(domain, []).append(tuple(record[c] for c in DOMAINS[domain].columns))
    return out


def _assert_resumed_after_every_stall(stats: ProxyStats) -> None:
    assert stats.stalls == len(STALL_SHARES), stats
    assert stats.stream_connections == len(STALL_SHARES) + 1, stats
    # Each stall came after a records line had passed, and every resume carried its token.
    assert all(stats.delivered_since[: len(STALL_SHARES)]), stats
    assert "since=" not in stats.stream_requests[0]
    assert all("since=" in line for line in stats.stream_requests[1:]), stats.stream_requests


def test_sync_client_notices_a_half_open_connection_and_resumes_exactly(
    stalling_server: ServerProcess, demo_db: Path, demo_cids: list[str]
) -> None:
    job_id, stalls = _job_and_stalls(stalling_server, demo_cids)
    port = int(stalling_server.url.rsplit(":", 1)[1])
    with CutProxy(port, stall_after=stalls, marker=b"/stream") as proxy:
        with TraceClient(proxy.url, idle_timeout=IDLE, retries=FAST) as client:
            pairs = list(client.iter_records(job_id))
        stats = proxy.stats
    _assert_resumed_after_every_stall(stats)
    assert _rows(pairs) == sql_truth(demo_db, demo_cids, DOMAINS)


def test_async_client_notices_a_half_open_connection_and_resumes_exactly(
    stalling_server: ServerProcess, demo_db: Path, demo_cids: list[str]
) -> None:
    cids = demo_cids[::2]
    job_id, stalls = _job_and_stalls(stalling_server, cids)
    port = int(stalling_server.url.rsplit(":", 1)[1])

    async def run(url: str) -> list[tuple[str, dict[str, Any]]]:
        async with AsyncTraceClient(url, idle_timeout=IDLE, retries=FAST) as client:
            return [pair async for pair in client.iter_records(job_id)]

    with CutProxy(port, stall_after=stalls, marker=b"/stream") as proxy:
        pairs = asyncio.run(run(proxy.url))
        stats = proxy.stats
    _assert_resumed_after_every_stall(stats)
    assert _rows(pairs) == sql_truth(demo_db, cids, DOMAINS)
