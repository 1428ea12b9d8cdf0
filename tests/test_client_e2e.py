"""The Python client against real servers on loopback: a proxy cutting the stream 100+
times, a replica drained with SIGTERM part-way, three async jobs at once, pages, batches.
Every result is compared with a direct SQL query of the job's rows."""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from svc.client import AsyncTraceClient, Retry, TraceClient
from tests.support import DOMAINS, Row, sql_truth
from tests.support.cutproxy import CutProxy
from tests.support.redis_server import redis_url  # noqa: F401
from tests.support.servers import ServerProcess, start_server

FAST = Retry(attempts=8, base=0.01, cap=0.5)  # tests: short waits


def rows_by_domain(pairs: list[tuple[str, dict[str, Any]]]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for domain, record in pairs:
        out.setdefault(domain, []).append(tuple(record[c] for c in DOMAINS[domain].columns))
    return out


@pytest.fixture(scope="module")
def small_batches(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with 50 records a line (~10 KB lines), so 100 cuts fit in one job."""
    srv = start_server(
        tmp_path_factory.mktemp("client-e2e"), demo_db, {"TRACE_STREAM_BATCH_SIZE": "50"}
    )
    yield srv.url
    srv.stop()


def test_a_hundred_cuts_in_one_job(small_batches: str, demo_db: Path, demo_cids: list[str]) -> None:
    rng = random.Random(12)
    # The client takes gzip (httpx asks for it): cuts fall inside the compressed stream.
    # Every cut leaves room for at least one records line (~10 KB, ~1.5 KB compressed), so
    # each connection makes progress; 130 cuts of 2.5-6 KB end before the job's ~600 KB.
    cuts = [rng.randint(2_500, 6_000) for _ in range(130)]
    port = int(small_batches.rsplit(":", 1)[1])
    with CutProxy(port, cuts, marker=b"/stream") as proxy:
        with TraceClient(proxy.url, retries=FAST) as client:
            job = client.create_job(demo_cids)
            pairs = list(client.iter_records(job.job_id))
        assert proxy.stats.cuts >= 100
        assert proxy.stats.stream_connections == proxy.stats.cuts + 1
        assert set(proxy.stats.encodings) == {"gzip"}
    assert rows_by_domain(pairs) == sql_truth(demo_db, demo_cids, job.domains)


def test_batches_and_pages_are_exact(
    server: ServerProcess, demo_db: Path, demo_cids: list[str]
) -> None:
    cids = demo_cids[:400]
    expected = sql_truth(demo_db, cids)
    with TraceClient(server.url) as client:
        job = client.create_job(cids, ["history", "materials"])
        got: dict[str, list[Row]] = {}
        checkpoints = []
        for batch in client.iter_batches(job.job_id):
            assert batch.columns == list(DOMAINS[batch.domain].columns)
            got.setdefault(batch.domain, []).extend(tuple(r) for r in batch.rows)
            checkpoints.append((batch.domain, sum(map(len, got.values())), batch.since))
        assert got == expected
        # resume from a checkpoint in the middle: exactly the rest
        domain, done, since = checkpoints[len(checkpoints) // 2]
        rest = rows_by_domain(list(client.iter_records(job.job_id, since=since)))
        flat = [r for d in job.domains for r in expected[d]]
        assert [r for d in job.domains for r in rest.get(d, [])] == flat[done:]
        for name in job.domains:
            pages = list(client.iter_pages(job.job_id, name, limit=333))
            assert all(p.total == len(expected[name]) for p in pages)
            rows = [tuple(rec[c] for c in DOMAINS[name].columns) for p in pages for rec in p.data]
            assert rows == expected[name]
        described = client.job(job.job_id)
        assert described.totals["history"].records == len(expected["history"])


def test_async_client_streams_three_jobs_at_once(
    server: ServerProcess, demo_db: Path, demo_cids: list[str]
) -> None:
    subsets = [demo_cids[:500], demo_cids[500:900], demo_cids[::3]]

    async def one(client: AsyncTraceClient, cids: list[str]) -> dict[str, list[Row]]:
        job = await client.create_job(cids)
        return rows_by_domain([pair async for pair in client.iter_records(job.job_id)])

    async def main() -> list[dict[str, list[Row]]]:
        async with AsyncTraceClient(server.url) as client:
            return list(await asyncio.gather(*(one(client, c) for c in subsets)))

    results = asyncio.run(main())
    for cids, result in zip(subsets, results, strict=True):
        assert result == sql_truth(demo_db, cids, DOMAINS)


class Failover(httpx.BaseTransport):
    """A load balancer in a transport: the first replica that accepts the connection."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.transport = httpx.HTTPTransport()
        self.served: list[str] = []  # replica of each stream request

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for url in self.urls:
            target = request.url.copy_with(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]))
            try:
                response = self.transport.handle_request(
                    httpx.Request(
                        request.method,
                        target,
                        headers=request.headers,
                        content=request.content,
                        extensions=request.extensions,
                    )  # fmt: skip
                )
            except httpx.ConnectError:
                continue
            if request.url.path.endswith("/stream"):
                self.served.append(url)
            return response
        raise httpx.ConnectError("no replica accepts connections", request=request)

    def close(self) -> None:
        self.transport.close()


def test_a_drained_replica_hands_over_to_the_other(
    redis_url: str,  # noqa: F811
    demo_db: Path,
    demo_cids: list[str],
    tmp_path: Path,
) -> None:
    env = {
        "TRACE_REDIS_URL": redis_url,
        "TRACE_REDIS_PREFIX": f"client-{uuid.uuid4().hex[:8]}:",
        "TRACE_STREAM_BATCH_SIZE": "100",
    }
    a = start_server(tmp_path / "a", demo_db, env)
    b = start_server(tmp_path / "b", demo_db, env)
    try:
        transport = Failover([a.url, b.url])
        pairs: list[tuple[str, dict[str, Any]]] = []
        with TraceClient("http://replicas", transport=transport, retries=FAST) as client:
            job = client.create_job(demo_cids, ["history", "materials"])
            for pair in client.iter_records(job.job_id):
                pairs.append(pair)
                if len(pairs) == 150:  # part-way through the first domain
                    a.proc.send_signal(signal.SIGTERM)
        assert a.proc.wait(20) in (0, -signal.SIGTERM)
        assert transport.served[0] == a.url and transport.served[-1] == b.url
    finally:
        a.stop()
        b.stop()
    assert rows_by_domain(pairs) == sql_truth(demo_db, demo_cids)
