"""Limits that hold across replicas: with Redis as the job store, the creation rate is one
bucket per client for every replica and worker, not one per process.

Two real replicas share one Redis; a client with a burst of 2 jobs gets its two jobs on
either replica, then 429 on both (with buckets per process it would get 2 on each). The
bucket script also runs on a Redis Cluster (one key, its own slot). The per-client stream
cap too: a client's stream held open on one replica is its only one on the other.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from svc.store.redis import RedisJobStore
from tests.support import all_cids, create_job
from tests.support.redis_cluster import RedisCluster
from tests.support.servers import start_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_creation_rate_is_shared_by_two_replicas(
    small_demo_db: Path, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    env = {
        "TRACE_REDIS_URL": redis_url,
        "TRACE_REDIS_PREFIX": redis_prefix,
        "TRACE_JOB_CREATE_RATE": "1",  # a token a minute: none comes back during the test
        "TRACE_JOB_CREATE_BURST": "2",
    }
    a = start_server(tmp_path / "a", small_demo_db, env)
    b = start_server(tmp_path / "b", small_demo_db, env)
    try:
        body = {"container_ids": all_cids(small_demo_db)[:5]}

        def create(base: str) -> httpx.Response:
            return httpx.post(f"{base}/api/trace/job", json=body, timeout=10)

        assert create(a.url).status_code == 201
        assert create(b.url).status_code == 201
        for server in (a, b):
            refused = create(server.url)
            assert refused.status_code == 429, refused.text
            assert 1 <= int(refused.headers["retry-after"]) <= 60
    finally:
        a.stop()
        b.stop()


async def test_the_bucket_on_a_cluster(redis_cluster: RedisCluster) -> None:
    prefix = f"rate-{uuid.uuid4().hex[:8]}:"
    stores = [RedisJobStore(url, prefix=prefix, ttl=60) for url in redis_cluster.urls]
    try:
        waits = [await stores[i % 3].take_token("client-1", 60, 3) for i in range(4)]
        assert waits[:3] == [0.0, 0.0, 0.0]
        assert waits[3] is not None and 0 < waits[3] <= 1.0  # a token a second
        assert await stores[0].take_token("client-2", 60, 3) == 0.0  # its own bucket
    finally:
        for store in stores:
            await store.close()


def test_the_per_client_stream_cap_holds_across_replicas(
    medium_demo_db: Path, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    env = {
        "TRACE_REDIS_URL": redis_url,
        "TRACE_REDIS_PREFIX": redis_prefix,
        "TRACE_MAX_STREAMS_PER_CLIENT": "1",
        "TRACE_STREAM_BATCH_SIZE": "500",
    }
    a = start_server(tmp_path / "a", medium_demo_db, env)
    b = start_server(tmp_path / "b", medium_demo_db, env)
    try:
        job = create_job(a.url, all_cids(medium_demo_db))
        stream = f"/api/trace/job/{job['job_id']}/stream"
        identity = {"Accept-Encoding": "identity"}  # ~25 MB, more than socket buffers hold
        with httpx.stream("GET", a.url + stream, headers=identity, timeout=30) as held:
            assert held.status_code == 200
            lines = held.iter_lines()  # kept: a dropped iterator closes the response
            next(lines)
            refused = httpx.get(b.url + stream, timeout=10)
            assert refused.status_code == 429, refused.text
            assert refused.json()["code"] == "too_many_requests"
        deadline = time.monotonic() + 10  # the slot is given back as the first stream ends
        while True:
            with httpx.stream("GET", b.url + stream, timeout=30) as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the slot was never given back"
            time.sleep(0.1)
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_with_keys_off_the_job_quota_counts_per_address(
    small_demo_db: Path, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    env = {
        "TRACE_MAX_JOBS_PER_KEY": "1",
        "TRACE_JOB_CREATE_RATE": "0",
        "TRACE_FORWARDED_ALLOW_IPS": "127.0.0.1",  # the test names its client addresses
    }
    if store == "redis":
        env["TRACE_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["TRACE_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    srv = start_server(tmp_path / "data", small_demo_db, env)
    try:
        body = {"container_ids": all_cids(small_demo_db)[:5]}

        def create(address: str) -> httpx.Response:
            headers = {"X-Forwarded-For": address}
            return httpx.post(f"{srv.url}/api/trace/job", json=body, headers=headers, timeout=10)

        assert create("198.51.100.7").status_code == 201
        refused = create("198.51.100.7")
        assert refused.status_code == 429 and refused.json()["code"] == "too_many_jobs"
        assert create("203.0.113.9").status_code == 201  # another address: its own quota
    finally:
        srv.stop()
