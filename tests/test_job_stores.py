"""One contract for every job store, run against the embedded store and a real Redis.

Each test gets a factory of stores that share one backing store (one SQLite file, or one
Redis key prefix), so a second store stands for a restarted process or another replica.
The Redis-only tests at the end check what the contract cannot see: key layout, expiry
of the statistics, the size of a full-size job, and undecodable values.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

from svc.core.export_record import Checkpoint, ExportRecord, new_export_id
from svc.errors import ExportNotFound, JobNotFound, StoreUnavailable, TooManyExports, TooManyJobs
from svc.protocol import DomainTotals, Range, Where
from svc.store import JobSpec, JobStore, codec, new_spec
from svc.store.embedded import EmbeddedJobStore
from svc.store.redis import RedisJobStore

pytestmark = pytest.mark.anyio

StoreFactory = Callable[..., JobStore]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["embedded", "redis"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """make(ttl=60, refresh_on_access=False) -> a store over this test's backing store."""
    made: list[JobStore] = []

    def make(ttl: float = 60, refresh_on_access: bool = False) -> JobStore:
        store: JobStore
        if request.param == "embedded":
            store = EmbeddedJobStore(
                tmp_path / "jobs.sqlite3", ttl=ttl, refresh_on_access=refresh_on_access
            )
        else:
            url = request.getfixturevalue("redis_url")
            prefix = request.getfixturevalue("redis_prefix")
            store = RedisJobStore(url, prefix=prefix, ttl=ttl, refresh_on_access=refresh_on_access)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


def _cids(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(64):016x}" for _ in range(n)]


def _spec(
    cids: list[str] | None = None,
    ttl: float = 60,
    owner: str | None = None,
    snapshot: int | None = None,
) -> JobSpec:
    return new_spec(
        _cids(500) if cids is None else cids, ["history", "materials"], ttl, owner, snapshot
    )


# -- the contract -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cids",
    [_cids(2000), ["LOT-0001", "LOT-0002", "lot ä 3"], ["A1B2", "C3D4"]],
    ids=["hex", "text", "upper-hex"],
)
async def test_create_then_get_round_trips(stores: StoreFactory, cids: list[str]) -> None:
    spec = _spec(cids, owner="0123456789abcdef", snapshot=987654321)
    await stores().create(spec)
    assert await stores().get(spec.job_id) == spec  # another process sees all of it
    assert spec.cids == sorted(set(cids))


async def test_filters_round_trip_to_another_process(stores: StoreFactory) -> None:
    where: Where = {
        "history": {"EVENTNAME": ["Hold", "Release"], "TXNDATE": Range("2025-01-15T00:00:00")},
        "materials": {"QTYCONSUMED": Range(0.5, 10)},
    }
    spec = new_spec(_cids(300), ["history", "materials"], 60, None, None, where)
    await stores().create(spec)
    got = await stores().get(spec.job_id)  # a fresh store: decoded from the backing store
    assert got == spec and got.where == where
    plain = _spec()
    await stores().create(plain)
    assert (await stores().get(plain.job_id)).where is None


async def test_get_returns_a_copy(stores: StoreFactory) -> None:
    store = stores()
    spec = _spec()
    await store.create(spec)
    got = await store.get(spec.job_id)
    got.expires_at = 0
    assert (await store.get(spec.job_id)).expires_at == spec.expires_at


async def test_missing_job(stores: StoreFactory) -> None:
    store = stores()
    with pytest.raises(JobNotFound):
        await store.get("no-such-job")
    assert await store.get_totals("no-such-job") == {}


async def test_totals_are_added_and_replaced(stores: StoreFactory) -> None:
    store = stores()
    spec = _spec()
    await store.create(spec)
    assert await store.get_totals(spec.job_id) == {}
    await store.put_totals(spec.job_id, "history", DomainTotals(5000, 490))
    await store.put_totals(spec.job_id, "materials", DomainTotals(2500, 480))
    await store.put_totals(spec.job_id, "history", DomainTotals(5001, 491))
    assert await stores().get_totals(spec.job_id) == {
        "history": DomainTotals(5001, 491),
        "materials": DomainTotals(2500, 480),
    }


async def test_aggregations_are_added_and_replaced_per_domain(stores: StoreFactory) -> None:
    store = stores()
    spec = _spec()
    await store.create(spec)
    assert await store.get_aggregations(spec.job_id, "history") is None
    await store.put_aggregations(spec.job_id, "history", b'{"a":1}')
    await store.put_aggregations(spec.job_id, "materials", b'{"b":2}')
    await store.put_aggregations(spec.job_id, "history", b'{"a":3}')
    other = stores()  # another process or replica
    assert await other.get_aggregations(spec.job_id, "history") == b'{"a":3}'
    assert await other.get_aggregations(spec.job_id, "materials") == b'{"b":2}'
    assert await other.get_aggregations("no-such-job", "history") is None


async def test_aggregations_of_a_missing_or_expired_job_are_not_written(
    stores: StoreFactory,
) -> None:
    store = stores()
    await store.put_aggregations("no-such-job", "history", b"{}")
    assert await stores().get_aggregations("no-such-job", "history") is None
    live, dead = _spec(ttl=60), _spec(ttl=0.3)
    for spec in (live, dead):
        await store.create(spec)
        await store.put_aggregations(spec.job_id, "history", b"{}")
    await asyncio.sleep(0.5)
    await store.put_aggregations(dead.job_id, "materials", b"{}")  # ended after expiry
    await store.purge_expired()
    assert await stores().get_aggregations(dead.job_id, "history") is None
    assert await stores().get_aggregations(dead.job_id, "materials") is None
    assert await stores().get_aggregations(live.job_id, "history") == b"{}"


async def test_jobs_expire_after_their_ttl(stores: StoreFactory) -> None:
    store = stores(ttl=1)
    spec = _spec(ttl=1)
    await store.create(spec)
    assert (await store.get(spec.job_id)).job_id == spec.job_id
    await asyncio.sleep(1.3)
    with pytest.raises(JobNotFound):
        await store.get(spec.job_id)  # the process that created it (and may cache it)
    with pytest.raises(JobNotFound):
        await stores(ttl=1).get(spec.job_id)  # any other


async def test_refresh_on_access_extends_the_ttl(stores: StoreFactory) -> None:
    refreshing, plain = stores(ttl=1, refresh_on_access=True), stores(ttl=1)
    kept, lost = _spec(ttl=1), _spec(ttl=1)
    await refreshing.create(kept)
    await plain.create(lost)
    before = time.time()
    for _ in range(2):  # 1.4 s in all: longer than the TTL, but never 1 s without a read
        await asyncio.sleep(0.7)
        got = await refreshing.get(kept.job_id)
        assert got.expires_at >= before + 1
    with pytest.raises(JobNotFound):
        await plain.get(lost.job_id)
    again = await stores(ttl=1, refresh_on_access=True).get(kept.job_id)
    assert again.expires_at == pytest.approx(time.time() + 1, abs=0.5)
    assert msgspec.structs.replace(again, expires_at=kept.expires_at) == kept


async def test_concurrent_creation(stores: StoreFactory) -> None:
    store = stores()
    specs = [_spec(_cids(300, seed=i)) for i in range(60)]
    await asyncio.gather(*(store.create(s) for s in specs))
    assert len({s.job_id for s in specs}) == 60
    reader = stores()
    got = await asyncio.gather(*(reader.get(s.job_id) for s in specs))
    assert got == specs


async def test_a_reader_never_sees_half_a_job(stores: StoreFactory) -> None:
    spec = _spec(_cids(114_892, seed=9))
    writer, reader = stores(), stores()
    seen: list[JobSpec] = []

    async def poll() -> None:
        while not seen:
            try:
                seen.append(await reader.get(spec.job_id))
            except JobNotFound:
                await asyncio.sleep(0)

    poller = asyncio.ensure_future(poll())
    await writer.create(spec)
    await asyncio.wait_for(poller, 10)
    assert seen == [spec]


async def test_totals_of_a_missing_or_expired_job_are_not_written(stores: StoreFactory) -> None:
    store = stores()
    await store.put_totals("no-such-job", "history", DomainTotals(1, 1))
    assert await stores().get_totals("no-such-job") == {}
    spec = _spec(ttl=0.3)
    await store.create(spec)
    await asyncio.sleep(0.5)  # a count that ends after its job expired (or was purged)
    await store.put_totals(spec.job_id, "history", DomainTotals(5000, 490))
    assert await stores().get_totals(spec.job_id) == {}
    await store.purge_expired()
    await store.put_totals(spec.job_id, "history", DomainTotals(5000, 490))
    assert await stores().get_totals(spec.job_id) == {}


async def test_purge_keeps_live_jobs_and_forgets_expired_ones(stores: StoreFactory) -> None:
    store = stores()
    live, dead = _spec(ttl=60), _spec(ttl=0.3)
    for spec in (live, dead):
        await store.create(spec)
        await store.put_totals(spec.job_id, "history", DomainTotals(10, 2))
    await asyncio.sleep(0.5)
    assert await store.purge_expired() >= 0  # Redis expires keys itself and reports 0
    assert await stores().get(live.job_id) == live
    assert await stores().get_totals(live.job_id) == {"history": DomainTotals(10, 2)}
    with pytest.raises(JobNotFound):
        await stores().get(dead.job_id)
    assert await stores().get_totals(dead.job_id) == {}


async def test_quota_of_live_jobs_per_owner(stores: StoreFactory) -> None:
    store = stores()
    for _ in range(3):
        await store.create(_spec(owner="aaaa"), limit=3)
    with pytest.raises(TooManyJobs) as info:
        await stores().create(_spec(owner="aaaa"), limit=3)
    assert 55 <= (info.value.retry_after or 0) <= 61  # until the oldest expires
    assert (info.value.status, info.value.code) == (429, "too_many_jobs")
    await store.create(_spec(owner="bbbb"), limit=3)  # another key has its own quota
    await store.create(_spec(owner="aaaa"))  # no limit given: not checked
    for _ in range(2):  # anonymous jobs count together
        await store.create(_spec(owner=None), limit=2)
    with pytest.raises(TooManyJobs):
        await store.create(_spec(owner=None), limit=2)


async def test_quota_is_atomic_under_concurrent_creation(stores: StoreFactory) -> None:
    writers = [stores(), stores()]  # two processes or replicas
    specs = [_spec(_cids(50, seed=i), owner="cccc") for i in range(24)]
    results = await asyncio.gather(
        *(writers[i % 2].create(s, limit=5) for i, s in enumerate(specs)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 5
    assert all(r is None or isinstance(r, TooManyJobs) for r in results)


async def test_quota_frees_as_jobs_expire(stores: StoreFactory) -> None:
    store = stores(ttl=0.4)
    for _ in range(2):
        await store.create(_spec(ttl=0.4, owner="dddd"), limit=2)
    with pytest.raises(TooManyJobs) as info:
        await store.create(_spec(ttl=0.4, owner="dddd"), limit=2)
    assert info.value.retry_after == 1  # never less than a second
    await asyncio.sleep(0.6)
    await store.create(_spec(ttl=0.4, owner="dddd"), limit=2)


# -- exports -------------------------------------------------------------------------------


def _export(owner: str | None = None, ttl: float = 60, state: str = "queued") -> ExportRecord:
    now = time.time()
    return ExportRecord(
        export_id=new_export_id(),
        job_id="job-" + new_export_id(),
        owner=owner,
        format="ndjson.gz",
        state=state,  # type: ignore[arg-type]
        created_at=now,
        updated_at=now,
        expires_at=now + ttl,
        checkpoint=Checkpoint(records=[0, 0]),
    )


async def test_export_round_trip_and_versioned_saves(stores: StoreFactory) -> None:
    first, second = stores(), stores()  # two processes or replicas
    export = _export(owner="ffff")
    await first.create_export(export)
    assert await second.get_export(export.export_id) == export
    mine = await second.get_export(export.export_id)
    theirs = await first.get_export(export.export_id)
    mine.state, mine.worker = "running", "replica-b"
    mine.checkpoint.records = [700, 0]
    saved = await second.save_export(mine)
    assert saved is not None and saved.version == export.version + 1
    theirs.state, theirs.worker = "running", "replica-a"
    assert await first.save_export(theirs) is None  # it read an older version: nothing written
    got = await first.get_export(export.export_id)
    assert (got.worker, got.checkpoint.records, got.version) == ("replica-b", [700, 0], 1)
    with pytest.raises(ExportNotFound):
        await first.get_export("no-such-export")
    assert await first.save_export(_export()) is None  # never created: not written


async def test_active_exports_follow_their_state(stores: StoreFactory) -> None:
    store = stores()
    queued, running, done = _export(), _export(), _export()
    for export in (queued, running, done):
        await store.create_export(export)
    running.state = "running"
    assert await store.save_export(running) is not None
    done.state = "done"
    assert await store.save_export(done) is not None
    active = await stores().active_exports()
    assert {e.export_id for e in active} >= {queued.export_id, running.export_id}
    assert done.export_id not in {e.export_id for e in active}


async def test_export_quota_counts_queued_and_running_only(stores: StoreFactory) -> None:
    store = stores()
    owner = "q-" + new_export_id()
    a, b = _export(owner), _export(owner)
    await store.create_export(a, limit=2)
    await store.create_export(b, limit=2)
    with pytest.raises(TooManyExports) as info:
        await store.create_export(_export(owner), limit=2)
    assert info.value.status == 429 and info.value.retry_after
    await store.create_export(_export("someone-else"), limit=2)  # quotas are per owner
    a.state = "done"
    assert await store.save_export(a) is not None
    await store.create_export(_export(owner), limit=2)  # a finished export frees its place


async def test_export_quota_is_atomic_under_concurrent_creation(stores: StoreFactory) -> None:
    writers = [stores(), stores()]
    owner = "c-" + new_export_id()
    results = await asyncio.gather(
        *(writers[i % 2].create_export(_export(owner), limit=3) for i in range(12)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 3
    assert all(r is None or isinstance(r, TooManyExports) for r in results)


async def test_exports_expire_with_their_job_and_are_listed_for_deletion(
    stores: StoreFactory,
) -> None:
    store = stores()
    short, long = _export(ttl=0.3), _export(ttl=60)
    await store.create_export(short)
    await store.create_export(long)
    await asyncio.sleep(0.5)
    with pytest.raises(ExportNotFound):
        await store.get_export(short.export_id)
    assert short.export_id not in {e.export_id for e in await store.active_exports()}
    expired = {e.export_id for e in await stores().expired_exports(time.time())}
    assert short.export_id in expired and long.export_id not in expired
    await store.delete_export(short.export_id)
    assert short.export_id not in {e.export_id for e in await store.expired_exports(time.time())}


# -- embedded only --------------------------------------------------------------------------


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))  # with -wal


async def test_embedded_file_shrinks_after_purging_expired_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = EmbeddedJobStore(path, ttl=0.5)
    try:
        specs = [_spec(_cids(4000, seed=i), ttl=0.5) for i in range(150)]
        for chunk in range(0, len(specs), 10):
            await asyncio.gather(*(store.create(s) for s in specs[chunk : chunk + 10]))
        await store.create(_spec(ttl=60))  # one live job stays
        full = _file_bytes(path)
        assert full > 150 * 4000 * 6  # ~6.4 bytes a CID
        await asyncio.sleep(0.6)
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
    spec = _spec(owner="eeee")
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
        await store.create(_spec(owner="eeee"), limit=2)  # the old job counts as anonymous
        with pytest.raises(TooManyJobs):
            await store.create(_spec(owner="eeee"), limit=1)
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    finally:
        await store.close()


async def test_embedded_store_has_its_own_threads(tmp_path: Path) -> None:
    """A default thread pool busy with the source and counting does not delay the store."""
    store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=60)
    other = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=60)  # a restarted process
    spec = _spec()
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


# -- Redis only -----------------------------------------------------------------------------


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_redis_keys_and_ttls(
    redis_url: str,
    redis_prefix: str,
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100)
    try:
        spec = _spec(ttl=100)
        await store.create(spec)
        await store.put_totals(spec.job_id, "history", DomainTotals(10, 2))
        await store.put_aggregations(spec.job_id, "history", b"{}")
        job_key, totals_key, aggregations_key = (
            f"{redis_prefix}job:{spec.job_id}",
            f"{redis_prefix}totals:{spec.job_id}",
            f"{redis_prefix}aggregations:{spec.job_id}",
        )
        assert sorted(await raw_redis.keys(f"{redis_prefix}*")) == sorted(
            [job_key.encode(), totals_key.encode(), aggregations_key.encode()]
        )
        assert 99_000 < await raw_redis.pttl(job_key) <= 100_000
        assert 99_000 < await raw_redis.pttl(totals_key) <= 100_000
        assert 99_000 < await raw_redis.pttl(aggregations_key) <= 100_000
        assert await raw_redis.hget(totals_key, "history") == b"[10,2]"
        # statistics of a missing job are not written (they would never expire with it)
        await store.put_totals("gone", "history", DomainTotals(1, 1))
        assert not await raw_redis.exists(f"{redis_prefix}totals:gone")
    finally:
        await store.close()


async def test_redis_refresh_extends_the_totals_too(
    redis_url: str,
    redis_prefix: str,
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100, refresh_on_access=True)
    try:
        spec = _spec(ttl=100)
        await store.create(spec)
        await store.put_totals(spec.job_id, "history", DomainTotals(10, 2))
        await store.put_aggregations(spec.job_id, "history", b"{}")
        for key in ("job", "totals", "aggregations"):
            await raw_redis.pexpire(f"{redis_prefix}{key}:{spec.job_id}", 5000)
        await store.get(spec.job_id)  # cached, but still touches every key
        for key in ("job", "totals", "aggregations"):
            assert await raw_redis.pttl(f"{redis_prefix}{key}:{spec.job_id}") > 99_000
    finally:
        await store.close()


async def test_redis_cache_still_sees_deletion(
    redis_url: str,
    redis_prefix: str,
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100)
    try:
        spec = _spec()
        await store.create(spec)
        await raw_redis.delete(f"{redis_prefix}job:{spec.job_id}")
        with pytest.raises(JobNotFound):
            await store.get(spec.job_id)
    finally:
        await store.close()


async def test_redis_full_size_job_is_under_one_megabyte(
    redis_url: str,
    redis_prefix: str,
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100)
    try:
        spec = _spec(_cids(114_892, seed=1))
        await store.create(spec)
        usage = await raw_redis.memory_usage(f"{redis_prefix}job:{spec.job_id}")
        assert usage is not None and usage <= 1_000_000
        fresh = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100)
        try:
            assert await fresh.get(spec.job_id) == spec
        finally:
            await fresh.close()
    finally:
        await store.close()


async def test_redis_undecodable_job_is_unavailable_not_a_crash(
    redis_url: str,
    redis_prefix: str,
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100)
    try:
        await raw_redis.set(f"{redis_prefix}job:bad", b"J9 from the future", ex=100)
        with pytest.raises(StoreUnavailable):
            await store.get("bad")
    finally:
        await store.close()
