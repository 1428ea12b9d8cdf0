"""The Redis job store: jobs shared by every replica (used when TRACE_REDIS_URL is set).

Keys, under a configurable prefix (default ``trace:``)::

    {prefix}job:{job_id}     string: the spec, `svc.jobs.codec` (~6.4 bytes a CID), TTL
    {prefix}stats:{job_id}   hash: domain -> JSON [records, containers], the job's TTL

A job is written by one ``SET ... PX ttl NX``, so a reader sees all of it or none of it.
Statistics copy the job key's remaining TTL when they are written (a server-side script,
so the two expire together), and ``refresh_on_access`` extends both on every read.

Specs are immutable, so each process keeps a small cache of decoded specs (bounded by
their total CID count). A cached read still asks Redis whether the job exists (one
``EXISTS`` or, with refresh, ``PEXPIRE``: no transfer, no decoding), so an expired or
deleted job is gone everywhere at once and an outage shows at lookup. While Redis is
down, ``get_stats`` answers from the stats last seen by this process (if any), so a
stream that already holds its spec keeps running from one domain into the next.

Outages: redis-py's defaults retry for about 5 s. Here connecting and every socket read
time out after 0.5 s, a dropped connection is retried once at once (the usual case after
a Redis restart: the pooled socket is dead, a new one works), a timeout is not retried,
and an overall deadline bounds each operation; every failure is raised as
`StoreUnavailable` (503, Retry-After) well within a second. The pool reconnects on its
own when Redis returns, so no restart is needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from svc.errors import JobNotFound, StoreUnavailable
from svc.jobs import DomainStats, JobSpec, JobStore, codec
from svc.jobs.cache import SpecCache

log = logging.getLogger(__name__)

# Copy the job key's remaining TTL onto the stats hash; do nothing for a missing job.
_PUT_STATS = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""

_stats_enc = msgspec.json.Encoder()
_stats_dec = msgspec.json.Decoder(DomainStats)


class RedisJobStore(JobStore):
    """Jobs in Redis under `prefix`, kept `ttl` seconds (see the module docstring).

    `timeout` bounds connecting and each socket read; `deadline` bounds a whole
    operation, retry included. `cache_cids` bounds the spec cache by total CIDs
    (500,000 CIDs is ~40 MB of Python strings).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "trace:",
        ttl: float,
        refresh_on_access: bool = False,
        timeout: float = 0.5,
        deadline: float = 0.9,
        health_check_interval: int = 10,
        cache_cids: int = 500_000,
    ) -> None:
        self.prefix = prefix
        self.ttl = ttl
        self.refresh_on_access = refresh_on_access
        self.deadline = deadline
        self._redis = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=health_check_interval,
        )
        self._put_stats = self._redis.register_script(_PUT_STATS)
        self._cache = SpecCache(cache_cids)

    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _stats_key(self, job_id: str) -> str:
        return f"{self.prefix}stats:{job_id}"

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Translate every Redis failure, and running past the deadline, to StoreUnavailable."""
        try:
            async with asyncio.timeout(self.deadline):
                yield
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("redis job store unavailable: %s: %s", type(exc).__name__, exc)
            raise StoreUnavailable() from exc

    # -- JobStore ---------------------------------------------------------------------

    async def create(self, spec: JobSpec) -> None:
        blob = await asyncio.to_thread(codec.dumps, spec)
        ttl_ms = max(1, round((spec.expires_at - time.time()) * 1000))
        async with self._guard():
            created = await self._redis.set(self._job_key(spec.job_id), blob, px=ttl_ms, nx=True)
        if not created:  # a 128-bit random id collided: refuse rather than overwrite
            raise StoreUnavailable("could not allocate a job id; retry")
        self._cache.remember(msgspec.structs.replace(spec))

    async def get(self, job_id: str) -> JobSpec:
        entry = self._cache.get(job_id)
        key = self._job_key(job_id)
        blob: bytes | None = None
        async with self._guard():
            if self.refresh_on_access:
                ttl_ms = max(1, round(self.ttl * 1000))
                pipe = self._redis.pipeline(transaction=True)
                pipe.pexpire(key, ttl_ms)
                pipe.pexpire(self._stats_key(job_id), ttl_ms)
                if entry is None:
                    pipe.get(key)
                replies = await pipe.execute()
                exists = bool(replies[0])
                blob = replies[2] if entry is None else None
            elif entry is not None:
                exists = bool(await self._redis.exists(key))
            else:
                value = await self._redis.get(key)
                blob = value if isinstance(value, bytes) else None
                exists = blob is not None
        if not exists:
            self._cache.evict(job_id)
            raise JobNotFound()
        if entry is None:
            assert blob is not None
            try:
                spec = await asyncio.to_thread(codec.loads, blob)
            except Exception as exc:  # e.g. written by a newer version during an upgrade
                log.error("cannot decode job %s: %s: %s", job_id, type(exc).__name__, exc)
                raise StoreUnavailable("the stored job cannot be read") from exc
            entry = self._cache.remember(spec)
        if self.refresh_on_access:
            entry.spec = msgspec.structs.replace(entry.spec, expires_at=time.time() + self.ttl)
        return msgspec.structs.replace(entry.spec)

    async def get_stats(self, job_id: str) -> dict[str, DomainStats]:
        try:
            async with self._guard():
                raw = await self._redis.hgetall(self._stats_key(job_id))
        except StoreUnavailable:
            entry = self._cache.get(job_id)
            if entry is None or not entry.stats:
                raise
            return dict(entry.stats)  # degraded: what this process last saw
        stats = {
            d.decode() if isinstance(d, bytes) else d: _stats_dec.decode(v) for d, v in raw.items()
        }
        entry = self._cache.peek(job_id)
        if entry is not None:
            entry.stats.update(stats)
        return stats

    async def put_stats(self, job_id: str, domain: str, stats: DomainStats) -> None:
        entry = self._cache.peek(job_id)
        if entry is not None:
            entry.stats[domain] = stats
        keys = [self._job_key(job_id), self._stats_key(job_id)]
        async with self._guard():
            await self._put_stats(keys=keys, args=[domain, _stats_enc.encode(stats)])

    async def ping(self) -> None:
        async with self._guard():
            await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
