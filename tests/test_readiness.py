"""/readyz means that jobs can be created: it runs a keyed write on the store, not a PING.

A real service on loopback over a private redis-server that is then made full
(`maxmemory` with `noeviction`) or read-only (a replica of a master that is not there):
PING still answers in both cases, job creation does not, and neither does /readyz.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support import assert_problem
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess, free_port, start_server


@pytest.fixture(scope="module")
def service(
    private_redis: RedisServer, small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"TRACE_REDIS_URL": private_redis.url, "TRACE_JOB_CREATE_RATE": "0"}
    server = start_server(tmp_path_factory.mktemp("readiness"), small_demo_db, env)
    yield server
    server.stop()


@pytest.fixture
def admin(private_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis(port=private_redis.port)
    yield client
    client.config_set("maxmemory", 0)
    client.replicaof("NO", "ONE")
    client.close()


def _create(service: ServerProcess) -> httpx.Response:
    return httpx.post(f"{service.url}/api/trace/job", json={"container_ids": ["X1"]}, timeout=10)


def test_ready_when_jobs_can_be_created(service: ServerProcess) -> None:
    assert httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200
    assert _create(service).status_code == 201


def test_a_full_redis_is_not_ready(service: ServerProcess, admin: redis.Redis) -> None:
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)  # below what is used: every write is refused (OOM)
    assert admin.ping()  # what the old /readyz asked
    assert_problem(_create(service), 503, "store_unavailable")
    assert_problem(httpx.get(f"{service.url}/readyz", timeout=5), 503, "store_unavailable")
    admin.config_set("maxmemory", 0)
    assert httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200


def test_a_read_only_replica_is_not_ready(service: ServerProcess, admin: redis.Redis) -> None:
    admin.replicaof("127.0.0.1", free_port())  # no master there
    assert admin.ping()
    assert_problem(_create(service), 503, "store_unavailable")
    assert_problem(httpx.get(f"{service.url}/readyz", timeout=5), 503, "store_unavailable")
    admin.replicaof("NO", "ONE")
    assert httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200
    assert _create(service).status_code == 201
