"""The Redis job store beyond the contract (test_job_stores.py): key layout, expiry of the
statistics, the size of a full-size job, undecodable values."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from svc.errors import JobNotFound, StoreUnavailable
from svc.protocol import DomainTotals
from svc.store.redis import RedisJobStore
from tests.support.job_stores import job_spec, some_cids

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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
        spec = job_spec(ttl=100)
        await store.create(spec)
        await store.put_totals(spec.job_id, "history", DomainTotals(10, 2))
        await store.put_aggregations(spec.job_id, "history", b"{}")
        job_key, totals_key, aggregations_key = (
            f"{redis_prefix}job:{{{spec.job_id}}}",
            f"{redis_prefix}totals:{{{spec.job_id}}}",
            f"{redis_prefix}aggregations:{{{spec.job_id}}}",
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
        assert not await raw_redis.exists(f"{redis_prefix}totals:{{gone}}")
    finally:
        await store.close()


async def test_redis_refresh_extends_the_totals_too(
    redis_url: str,
    redis_prefix: str,
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100, refresh_on_access=True)
    try:
        spec = job_spec(ttl=100)
        await store.create(spec)
        await store.put_totals(spec.job_id, "history", DomainTotals(10, 2))
        await store.put_aggregations(spec.job_id, "history", b"{}")
        for key in ("job", "totals", "aggregations"):
            await raw_redis.pexpire(f"{redis_prefix}{key}:{{{spec.job_id}}}", 5000)
        await store.get(spec.job_id)  # cached, but still touches every key
        for key in ("job", "totals", "aggregations"):
            assert await raw_redis.pttl(f"{redis_prefix}{key}:{{{spec.job_id}}}") > 99_000
    finally:
        await store.close()


async def test_redis_cache_still_sees_deletion(
    redis_url: str,
    redis_prefix: str,
    raw_redis: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_url, prefix=redis_prefix, ttl=100)
    try:
        spec = job_spec()
        await store.create(spec)
        await raw_redis.delete(f"{redis_prefix}job:{{{spec.job_id}}}")
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
        spec = job_spec(some_cids(114_892, seed=1))
        await store.create(spec)
        usage = await raw_redis.memory_usage(f"{redis_prefix}job:{{{spec.job_id}}}")
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
        await raw_redis.set(f"{redis_prefix}job:{{bad}}", b"J9 from the future", ex=100)
        with pytest.raises(StoreUnavailable):
            await store.get("bad")
    finally:
        await store.close()
