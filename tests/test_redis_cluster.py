"""The service on a real 3-master Redis Cluster: any node's URL works, jobs spread over
the shards, and a second replica pointed at another node resumes a stream exactly.

The cluster (`tests.support.redis_cluster`) is three `redis-server --cluster-enabled yes`
joined by `redis-cli --cluster create` on loopback. Replica A is given node 0's URL,
replica B node 2's; each finds the rest of the cluster itself.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from svc.store.redis import RedisJobStore
from tests.support import Row, records_union, sql_truth
from tests.support.jobs import create_job, iter_lines, last_since
from tests.support.redis_cluster import RedisCluster
from tests.support.servers import ServerProcess, start_server
from tests.support.truth import all_cids
from tests.support.walks import read_until_cut

PREFIX = f"cluster-{uuid.uuid4().hex[:8]}:"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def replicas(
    redis_cluster: RedisCluster, small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {
        "TRACE_REDIS_PREFIX": PREFIX,
        "TRACE_STREAM_BATCH_SIZE": "100",
        "TRACE_JOB_CREATE_RATE": "0",
    }
    a = start_server(
        tmp_path_factory.mktemp("cluster-a"),
        small_demo_db,
        {**env, "TRACE_REDIS_URL": redis_cluster.urls[0]},
    )
    try:
        b = start_server(
            tmp_path_factory.mktemp("cluster-b"),
            small_demo_db,
            {**env, "TRACE_REDIS_URL": redis_cluster.urls[2]},
        )
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


def test_twelve_jobs_stream_exactly_and_spread_over_the_shards(
    replicas: tuple[ServerProcess, ServerProcess],
    redis_cluster: RedisCluster,
    small_demo_db: Path,
) -> None:
    a, b = replicas
    cids = all_cids(small_demo_db)
    rng = random.Random(23)
    for n in range(12):
        picked = rng.sample(cids, 40)
        job = create_job(a.url, picked, ["history", "materials"])
        lines = list(iter_lines(a.url, job["job_id"]))
        assert lines[-1]["type"] == "complete", lines[-1]
        assert records_union(lines) == sql_truth(small_demo_db, picked), f"job {n}"
        r = httpx.get(f"{b.url}/api/trace/job/{job['job_id']}/aggregation", timeout=30)
        assert r.status_code == 200, r.text
        aggregation = r.json()
        history = len(sql_truth(small_demo_db, picked)["history"])
        assert aggregation["domains"]["history"]["records"] == history
    per_node = redis_cluster.keys_per_node(f"{PREFIX}job:*")
    assert sum(per_node) == 12
    assert sum(1 for count in per_node if count) >= 2, per_node
    # a job's totals sit with its spec: one hash tag, one slot
    assert redis_cluster.keys_per_node(f"{PREFIX}totals:*") == per_node


def test_cut_on_one_node_resumed_through_another(
    replicas: tuple[ServerProcess, ServerProcess], small_demo_db: Path
) -> None:
    a, b = replicas
    cids = all_cids(small_demo_db)
    truth: dict[str, list[Row]] = sql_truth(small_demo_db, cids)
    job = create_job(a.url, cids, ["history", "materials"])
    first = read_until_cut(a, job["job_id"], None, 30)
    since = last_since(first)
    assert since is not None and first[-1]["type"] != "complete"
    second = list(iter_lines(b.url, job["job_id"], since))
    assert second[0]["resumed"] is True and second[-1]["type"] == "complete"
    assert records_union(first, second) == truth


def test_readyz_on_the_cluster(replicas: tuple[ServerProcess, ServerProcess]) -> None:
    for server in replicas:
        r = httpx.get(f"{server.url}/readyz", timeout=10)
        assert r.status_code == 200, r.text


async def test_store_detects_the_cluster_from_any_node(redis_cluster: RedisCluster) -> None:
    for url in redis_cluster.urls:
        store = RedisJobStore(url, prefix=PREFIX, ttl=60)
        try:
            await store.ping()
            assert store.is_cluster
        finally:
            await store.close()
