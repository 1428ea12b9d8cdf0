"""Redis outages: 503 store_unavailable within a second, never a 500 or a hang, and recovery.

A private redis-server is killed (connections refused) or frozen with SIGSTOP (connections
accepted but never answered: the case that hangs on redis-py's defaults), then started
again; the store and a real service process on loopback must recover without a restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from svc.errors import JobNotFound, StoreUnavailable
from svc.protocol import DomainTotals
from svc.store import new_spec
from svc.store.redis import RedisJobStore
from tests.support import DOMAINS, expected_rows, records_of
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess, build_demo_db, start_server

FAST = 1.0  # seconds: the most an outage may take to surface


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def redis_up(private_redis: RedisServer) -> Iterator[RedisServer]:
    """The private server, running before and after the test (which may stop it)."""
    private_redis.resume()
    if private_redis.proc is None or private_redis.proc.poll() is not None:
        private_redis.start()
    yield private_redis
    private_redis.resume()
    if private_redis.proc is None or private_redis.proc.poll() is not None:
        private_redis.start()


def _outage(kind: str, server: RedisServer) -> None:
    if kind == "stopped":
        server.stop()
    else:
        server.pause()


def _recover(kind: str, server: RedisServer) -> None:
    if kind == "stopped":
        server.start()
    else:
        server.resume()


# -- the store --------------------------------------------------------------------------------


@pytest.fixture
async def store(
    redis_up: RedisServer,
    redis_prefix: str,
) -> AsyncIterator[RedisJobStore]:
    s = RedisJobStore(redis_up.url, prefix=redis_prefix, ttl=60)
    yield s
    await s.close()


async def _fails_fast(call: Callable[[], Any]) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        await call()
    assert time.monotonic() - started < FAST
    assert info.value.__cause__ is not None  # raised from the driver's error


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["stopped", "frozen"])
async def test_store_fails_fast_and_recovers(
    store: RedisJobStore, redis_up: RedisServer, kind: str
) -> None:
    held = new_spec(["0a", "0b"], ["history"], 60, None, None)
    await store.create(held)
    _outage(kind, redis_up)
    try:
        await _fails_fast(lambda: store.create(new_spec(["0c"], ["history"], 60, None, None)))
        await _fails_fast(lambda: store.get(held.job_id))  # cached, still checked
        await _fails_fast(lambda: store.get("not-cached"))
        await _fails_fast(lambda: store.put_totals(held.job_id, "history", DomainTotals(1, 1)))
        await _fails_fast(lambda: store.get_totals("not-cached"))
        await _fails_fast(store.ping)
    finally:
        _recover(kind, redis_up)
    await store.ping()
    if kind == "stopped":  # a restarted Redis without persistence has lost the job
        with pytest.raises(JobNotFound):
            await store.get(held.job_id)
    else:
        assert await store.get(held.job_id) == held
    again = new_spec(["0d"], ["history"], 60, None, None)
    await store.create(again)
    assert await store.get(again.job_id) == again


@pytest.mark.anyio
async def test_known_totals_outlive_an_outage(store: RedisJobStore, redis_up: RedisServer) -> None:
    """A stream holding its spec moves to its next domain on the totals this process saw."""
    spec = new_spec(["0a"], ["history", "materials"], 60, None, None)
    await store.create(spec)
    await store.put_totals(spec.job_id, "history", DomainTotals(10, 1))
    await store.put_totals(spec.job_id, "materials", DomainTotals(5, 1))
    redis_up.stop()
    try:
        assert await store.get_totals(spec.job_id) == {
            "history": DomainTotals(10, 1),
            "materials": DomainTotals(5, 1),
        }
    finally:
        redis_up.start()


@pytest.mark.slow
@pytest.mark.anyio
async def test_many_concurrent_calls_during_an_outage_all_fail_fast(
    store: RedisJobStore, redis_up: RedisServer
) -> None:
    redis_up.pause()
    try:
        started = time.monotonic()
        results = await asyncio.gather(
            *(store.get(f"job-{i}") for i in range(50)), return_exceptions=True
        )
        assert time.monotonic() - started < FAST
        assert all(isinstance(r, StoreUnavailable) for r in results)
    finally:
        redis_up.resume()


# -- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(
    private_redis: RedisServer,
    small_demo_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory.mktemp("outage-data"),
        small_demo_db,
        {"TRACE_REDIS_URL": private_redis.url, "TRACE_STREAM_BATCH_SIZE": "200"},
    )
    yield srv
    srv.stop()


def _cids(db: Path, n: int) -> list[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS LIMIT ?", (n,))
        return [r[0] for r in rows]


def _assert_store_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "store_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert elapsed < FAST
    assert "redis" not in response.text.lower()  # no driver text reaches a client


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["stopped", "frozen"])
def test_http_answers_503_then_recovers(
    service: ServerProcess, redis_up: RedisServer, small_demo_db: Path, kind: str
) -> None:
    cids = _cids(small_demo_db, 50)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        created = client.post("/api/trace/job", json={"container_ids": cids})
        assert created.status_code == 201, created.text
        job = created.json()["job_id"]
        _outage(kind, redis_up)
        try:
            requests = [
                ("POST", "/api/trace/job", {"container_ids": cids}),
                ("GET", f"/api/trace/job/{job}", None),
                ("GET", f"/api/trace/job/{job}/stream", None),
                ("GET", f"/api/trace/job/{job}/result?domain=history", None),
                ("GET", "/api/trace/job/never-created/stream", None),
            ]
            for method, path, body in requests:
                started = time.monotonic()
                r = client.request(method, path, json=body)
                _assert_store_unavailable(r, time.monotonic() - started)
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["code"] == "store_unavailable"
        finally:
            _recover(kind, redis_up)

        # recovered, same server process
        assert client.get("/readyz").status_code == 200
        old = client.get(f"/api/trace/job/{job}")
        if kind == "stopped":  # the restarted Redis has no persistence: the job is gone
            assert old.status_code == 404 and old.json()["code"] == "job_not_found"
        else:
            assert old.status_code == 200
        created = client.post("/api/trace/job", json={"container_ids": cids})
        assert created.status_code == 201, created.text
        job = created.json()["job_id"]
        assert client.get(f"/api/trace/job/{job}").status_code == 200
        lines = _read_stream(client, f"/api/trace/job/{job}/stream")
        assert lines[-1]["type"] == "complete"
    assert service.proc.poll() is None


def _read_stream(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    with client.stream("GET", path) as r:
        assert r.status_code == 200
        return [json.loads(line) for line in r.iter_lines() if line]


def test_a_stream_in_flight_survives_an_outage(
    redis_up: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The stream holds its spec and its totals: Redis going away mid-stream is not its concern.

    The first domain is ~20 MB of NDJSON, more than loopback buffers hold, so the server is
    still in it (blocked on a client that does not read) when Redis stops, and must start
    the second domain without Redis.
    """
    db = build_demo_db(tmp_path_factory.mktemp("big-db") / "demo.sqlite3", 10_000)
    srv = start_server(
        tmp_path_factory.mktemp("inflight-data"), db, {"TRACE_REDIS_URL": redis_up.url}
    )
    try:
        cids = _cids(db, 10_000)
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            job = client.post("/api/trace/job", json={"container_ids": cids}).json()["job_id"]
            deadline = time.monotonic() + 30
            while len(client.get(f"/api/trace/job/{job}").json()["totals"]) < 2:
                assert time.monotonic() < deadline, "totals were never computed"
                time.sleep(0.05)
            with client.stream("GET", f"/api/trace/job/{job}/stream") as r:
                assert r.status_code == 200
                lines_iter = r.iter_lines()
                lines = [json.loads(next(lines_iter))]
                assert lines[0]["type"] == "meta"
                redis_up.stop()
                lines += [json.loads(line) for line in lines_iter if line]
        assert lines[-1]["type"] == "complete", lines[-1]
        got = records_of(lines)
        for domain in ("history", "materials"):
            assert got[domain] == expected_rows(db, cids, DOMAINS[domain])
    finally:
        srv.stop()
