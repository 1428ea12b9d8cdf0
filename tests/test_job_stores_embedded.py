"""The embedded job store beyond the contract (test_job_stores.py): its file shrinks after a
purge, an older file is converted, its threads are its own, and it expires by the real clock."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from svc.errors import JobNotFound, TooManyJobs
from svc.store import codec
from svc.store.embedded import EmbeddedJobStore
from tests.support.job_stores import OffsetClock, job_spec, some_cids

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))  # with -wal


async def test_embedded_file_shrinks_after_purging_expired_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    clock = OffsetClock()
    store = EmbeddedJobStore(path, ttl=0.5, clock=clock)
    try:
        specs = [job_spec(some_cids(4000, seed=i), ttl=0.5) for i in range(150)]
        for chunk in range(0, len(specs), 10):
            await asyncio.gather(*(store.create(s) for s in specs[chunk : chunk + 10]))
        await store.create(job_spec(ttl=60))  # one live job stays
        full = _file_bytes(path)
        assert full > 150 * 4000 * 6  # ~6.4 bytes a CID
        clock.advance(0.6)
        assert await store.purge_expired() == 150
        empty = _file_bytes(path)
        assert empty < full / 20, (full, empty)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM trace_jobs").fetchone() == (1,)
            assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental
    finally:
        await store.close()


async def test_embedded_converts_a_file_of_an_older_version(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    spec = job_spec(owner="eeee")
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE trace_jobs (job_id TEXT PRIMARY KEY, spec BLOB NOT NULL,"
            " expires_at REAL NOT NULL)"
        )
        conn.execute(
            "INSERT INTO trace_jobs VALUES (?, ?, ?)",
            (spec.job_id, codec.dumps(spec), spec.expires_at),
        )
    store = EmbeddedJobStore(path, ttl=60)
    try:
        assert await store.get(spec.job_id) == spec
        await store.create(job_spec(owner="eeee"), limit=2)  # the old job counts as anonymous
        with pytest.raises(TooManyJobs):
            await store.create(job_spec(owner="eeee"), limit=1)
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    finally:
        await store.close()


@pytest.mark.slow
async def test_embedded_store_has_its_own_threads(tmp_path: Path) -> None:
    """A default thread pool busy with the source and counting does not delay the store."""
    store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=60)
    other = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=60)  # a restarted process
    spec = job_spec()
    await store.create(spec)
    blockers = [asyncio.ensure_future(asyncio.to_thread(time.sleep, 0.8)) for _ in range(12)]
    try:
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await store.ping()
        assert await other.get(spec.job_id) == spec  # uncached: read and decoded
        assert time.monotonic() - started < 0.5
    finally:
        await asyncio.gather(*blockers)
        await store.close()
        await other.close()


async def test_embedded_expiry_follows_the_real_clock_by_default(tmp_path: Path) -> None:
    """The contract moves the embedded store's clock; here time passes for real."""
    store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=0.3)
    try:
        spec = job_spec(ttl=0.3)
        await store.create(spec)
        assert await store.get(spec.job_id) == spec
        await asyncio.sleep(0.5)
        with pytest.raises(JobNotFound):
            await store.get(spec.job_id)
        assert await store.purge_expired() == 1
    finally:
        await store.close()
