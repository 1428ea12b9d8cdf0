"""Job-store limits against a real server on loopback: creation under load keeps /readyz
fast, over quota or over the rate answers 429 problem+json with Retry-After, and the
periodic purge deletes expired jobs from the embedded store."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.problems import assert_problem
from tests.support.servers import ServerProcess, start_server

JOBS = 500
AT_ONCE = 8
QUOTA = 450


@pytest.fixture(scope="module")
def loaded(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with two API keys, a quota of 450 live jobs a key and no practical rate."""
    srv = start_server(
        tmp_path_factory.mktemp("limits"),
        demo_db,
        {
            "TRACE_API_KEYS": "load-key,other-key",
            "TRACE_MAX_JOBS_PER_KEY": str(QUOTA),
            "TRACE_JOB_CREATE_RATE": "1000000",
            "TRACE_JOB_CREATE_BURST": "1000",
        },
    )
    yield srv
    srv.stop()


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


async def _load(url: str, cids: list[str]) -> dict[str, Any]:
    """Create JOBS jobs AT_ONCE at a time while /readyz and a stream's first byte are timed."""
    auth = {"Authorization": "Bearer load-key"}
    rng = random.Random(5)
    done = asyncio.Event()
    ready_ms: list[float] = []
    lookup_ms: list[float] = []
    first_byte_ms: list[float] = []
    responses: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=AT_ONCE + 4)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        probe = await client.post("/api/trace/job", json={"container_ids": cids[:20]}, headers=auth)
        assert probe.status_code == 201, probe.text
        stream_path = probe.json()["links"]["stream"]
        job_path = probe.json()["links"]["self"]

        async def poll_ready() -> None:
            while not done.is_set():
                started = time.perf_counter()
                r = await client.get("/readyz")
                ready_ms.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200, r.text
                started = time.perf_counter()
                r = await client.get(job_path, headers=auth)  # the job store alone
                lookup_ms.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200, r.text
                await asyncio.sleep(0.02)

        async def time_first_byte() -> None:
            while not done.is_set():
                started = time.perf_counter()
                async with client.stream("GET", stream_path, headers=auth) as r:
                    async for _ in r.aiter_bytes():
                        first_byte_ms.append((time.perf_counter() - started) * 1000)
                        break
                await asyncio.sleep(0.2)

        async def create(n: int, gate: asyncio.Semaphore) -> None:
            async with gate:
                body = {"container_ids": rng.sample(cids, 5)}
                responses.append(await client.post("/api/trace/job", json=body, headers=auth))

        watchers = [asyncio.ensure_future(poll_ready()), asyncio.ensure_future(time_first_byte())]
        gate = asyncio.Semaphore(AT_ONCE)
        started = time.perf_counter()
        await asyncio.gather(*(create(n, gate) for n in range(JOBS)))
        seconds = time.perf_counter() - started
        done.set()
        await asyncio.gather(*watchers)
    return {
        "responses": responses,
        "ready_ms": ready_ms,
        "lookup_ms": lookup_ms,
        "first_byte_ms": first_byte_ms,
        "seconds": seconds,
    }


@pytest.mark.slow
def test_creation_under_load_keeps_readiness_fast_and_stops_at_the_quota(
    loaded: ServerProcess, demo_cids: list[str]
) -> None:
    result = asyncio.run(asyncio.wait_for(_load(loaded.url, demo_cids), 120))
    responses: list[httpx.Response] = result["responses"]
    ready_ms: list[float] = result["ready_ms"]
    lookup_ms: list[float] = result["lookup_ms"]
    first_byte_ms: list[float] = result["first_byte_ms"]
    print(
        f"\n{JOBS} jobs, {AT_ONCE} at a time: {result['seconds']:.1f} s; /readyz "
        f"median {statistics.median(ready_ms):.0f} ms, p95 {_p95(ready_ms):.0f} ms, "
        f"max {max(ready_ms):.0f} ms ({len(ready_ms)} probes); job lookup median "
        f"{statistics.median(lookup_ms):.0f} ms, p95 {_p95(lookup_ms):.0f} ms; stream first "
        f"byte median {statistics.median(first_byte_ms):.0f} ms, max {max(first_byte_ms):.0f} ms "
        f"({len(first_byte_ms)} probes)"
    )
    created = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(created) == QUOTA - 1  # the probe job holds one place
    assert len(refused) == JOBS - QUOTA + 1
    for r in refused:
        assert_problem(r, 429, "too_many_jobs")
        assert int(r.headers["retry-after"]) > 86000  # until the oldest job expires (1 day)
    assert len(ready_ms) >= 10
    # Generous bounds: this runs on a shared 2-core machine next to its own client. With a
    # load average near 2, p95 was 140-170 ms for /readyz (which also pings the source,
    # whose queries share the default thread pool with the counting every new job starts)
    # and ~100 ms for a job lookup (the job store alone); near 4.5, up to 470 and 350 ms.
    assert _p95(ready_ms) < 600, sorted(ready_ms)[-10:]
    assert _p95(lookup_ms) < 500, sorted(lookup_ms)[-10:]
    assert result["seconds"] < 90
    # the quota is per key: another key still creates
    other = httpx.post(
        f"{loaded.url}/api/trace/job",
        json={"container_ids": demo_cids[:3]},
        headers={"Authorization": "Bearer other-key"},
    )
    assert other.status_code == 201, other.text


def test_anonymous_quota_and_rate_limit(demo_db: Path, tmp_path: Path) -> None:
    """Keys off: all jobs share one quota, and the rate is per client address."""
    srv = start_server(
        tmp_path,
        demo_db,
        {
            "TRACE_MAX_JOBS_PER_KEY": "1",
            "TRACE_JOB_CREATE_RATE": "2",
            "TRACE_JOB_CREATE_BURST": "2",
        },
    )
    try:
        url = f"{srv.url}/api/trace/job"
        body = {"container_ids": ["a", "b"]}
        assert httpx.post(url, json=body).status_code == 201
        over = httpx.post(url, json=body)
        assert_problem(over, 429, "too_many_jobs")
        assert int(over.headers["retry-after"]) > 86000
        limited = httpx.post(url, json=body)
        assert_problem(limited, 429, "rate_limited")
        assert 25 <= int(limited.headers["retry-after"]) <= 30  # 2 a minute: one per 30 s
        big = httpx.post(url, content=b"x" * 10_000_000)  # refused before the body is read
        assert_problem(big, 429, "rate_limited")
    finally:
        srv.stop()


def test_expired_jobs_are_purged_periodically(demo_db: Path, tmp_path: Path) -> None:
    srv = start_server(
        tmp_path, demo_db, {"TRACE_JOB_TTL_SECONDS": "1", "TRACE_JOB_PURGE_SECONDS": "1"}
    )
    try:
        for _ in range(3):
            r = httpx.post(f"{srv.url}/api/trace/job", json={"container_ids": ["a"]})
            assert r.status_code == 201, r.text

        def rows() -> int:
            with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
                return int(conn.execute("SELECT COUNT(*) FROM trace_jobs").fetchone()[0])

        assert rows() == 3
        deadline = time.monotonic() + 10
        while rows():
            assert time.monotonic() < deadline, "expired jobs were not purged"
            time.sleep(0.2)
    finally:
        srv.stop()
