"""One contract for every job store, run against the embedded store and a real Redis.

Each test gets a factory of stores that share one backing store (one SQLite file, or one
Redis key prefix), so a second store stands for a restarted process or another replica.
The Redis-only tests at the end check what the contract cannot see: key layout, expiry
of the statistics, the size of a full-size job, and undecodable values.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

from svc.errors import JobNotFound, StoreUnavailable
from svc.jobs import DomainStats, JobSpec, JobStore, new_spec
from svc.jobs.embedded import EmbeddedJobStore
from svc.jobs.redis import RedisJobStore
from tests.redis_server import redis_prefix, redis_url  # noqa: F401

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
    assert await store.get_stats("no-such-job") == {}


async def test_stats_are_added_and_replaced(stores: StoreFactory) -> None:
    store = stores()
    spec = _spec()
    await store.create(spec)
    assert await store.get_stats(spec.job_id) == {}
    await store.put_stats(spec.job_id, "history", DomainStats(5000, 490))
    await store.put_stats(spec.job_id, "materials", DomainStats(2500, 480))
    await store.put_stats(spec.job_id, "history", DomainStats(5001, 491))
    assert await stores().get_stats(spec.job_id) == {
        "history": DomainStats(5001, 491),
        "materials": DomainStats(2500, 480),
    }


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


# -- Redis only -----------------------------------------------------------------------------


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:  # noqa: F811
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_redis_keys_and_ttls(
    redis_url: str,  # noqa: F811
    redis_prefix: str,  # noqa: F811
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100)
    try:
        spec = _spec(ttl=100)
        await store.create(spec)
        await store.put_stats(spec.job_id, "history", DomainStats(10, 2))
        job_key, stats_key = (
            f"{redis_prefix}job:{spec.job_id}",
            f"{redis_prefix}stats:{spec.job_id}",
        )
        assert sorted(await raw_redis.keys(f"{redis_prefix}*")) == sorted(
            [job_key.encode(), stats_key.encode()]
        )
        assert 99_000 < await raw_redis.pttl(job_key) <= 100_000
        assert 99_000 < await raw_redis.pttl(stats_key) <= 100_000
        assert await raw_redis.hget(stats_key, "history") == b"[10,2]"
        # statistics of a missing job are not written (they would never expire with it)
        await store.put_stats("gone", "history", DomainStats(1, 1))
        assert not await raw_redis.exists(f"{redis_prefix}stats:gone")
    finally:
        await store.close()


async def test_redis_refresh_extends_the_stats_too(
    redis_url: str,  # noqa: F811
    redis_prefix: str,  # noqa: F811
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100, refresh_on_access=True)
    try:
        spec = _spec(ttl=100)
        await store.create(spec)
        await store.put_stats(spec.job_id, "history", DomainStats(10, 2))
        for key in ("job", "stats"):
            await raw_redis.pexpire(f"{redis_prefix}{key}:{spec.job_id}", 5000)
        await store.get(spec.job_id)  # cached, but still touches both keys
        for key in ("job", "stats"):
            assert await raw_redis.pttl(f"{redis_prefix}{key}:{spec.job_id}") > 99_000
    finally:
        await store.close()


async def test_redis_cache_still_sees_deletion(
    redis_url: str,  # noqa: F811
    redis_prefix: str,  # noqa: F811
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
    redis_url: str,  # noqa: F811
    redis_prefix: str,  # noqa: F811
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
    redis_url: str,  # noqa: F811
    redis_prefix: str,  # noqa: F811
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100)
    try:
        await raw_redis.set(f"{redis_prefix}job:bad", b"J9 from the future", ex=100)
        with pytest.raises(StoreUnavailable):
            await store.get("bad")
    finally:
        await store.close()
