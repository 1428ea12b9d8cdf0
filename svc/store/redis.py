"""The Redis job store: jobs shared by every replica (used when TRACE_REDIS_URL is set).

Keys, under a configurable prefix (default ``trace:``)::

    {prefix}job:{job_id}     string: the spec, `svc.store.codec` (~6.4 bytes a CID), TTL
    {prefix}totals:{job_id}   hash: domain -> JSON [records, containers], the job's TTL
    {prefix}aggregations:{job_id}  hash: domain -> the domain's aggregations (JSON), the job's TTL
    {prefix}owner:{owner}     set: the owner's job ids (``-`` for anonymous jobs), no TTL
    {prefix}export:{id}       hash: v (version), d (the record), state, owner, expires
    {prefix}exports:active    set: ids of exports queued or running
    {prefix}exports:expiry    sorted set: export id -> its expiry (the purge deletes the
                              file first, then these keys: no TTL, or a file would outlive
                              the only record of its name)

A job is written by one ``SET ... PX ttl NX``, so a reader sees all of it or none of it.
With a quota, a server-side script first drops the owner's ids whose job key is gone,
counts the rest and only then writes the job and adds its id: check and write are one
atomic step, and expiry, TTL refresh and deletion need no bookkeeping elsewhere. The
script reads job keys it derives from the ids, so it needs a single Redis (no Cluster).
Expired jobs need no purging: Redis expires the keys itself.
Statistics copy the job key's remaining TTL when they are written (a server-side script,
so they expire together), and ``refresh_on_access`` extends all of them on every read.

Specs are immutable, so each process keeps a small cache of decoded specs (bounded by
their total CID count). A cached read still asks Redis whether the job exists (one
``EXISTS`` or, with refresh, ``PEXPIRE``: no transfer, no decoding), so an expired or
deleted job is gone everywhere at once and an outage shows at lookup. While Redis is
down, ``get_totals`` answers from the totals last seen by this process (if any), so a
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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from svc.core import export_record as exports
from svc.core.export_record import ExportRecord
from svc.errors import ExportNotFound, JobNotFound, StoreUnavailable, TooManyExports, TooManyJobs
from svc.protocol import DomainTotals
from svc.store import JobSpec, JobStore, codec
from svc.store.spec_cache import SPEC_CACHE_CIDS, SpecCache

log = logging.getLogger(__name__)

# Copy the job key's remaining TTL onto a statistics hash (totals, aggregations); do
# nothing for a missing job.
_PUT_STATISTIC = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""

# Create a job unless its owner already holds ARGV[4] live jobs (0: no quota). Returns
# {1, 0} when written, {0, ms until the oldest live job expires} over quota, {-1, 0} when
# the id is taken.
_CREATE = """
local limit = tonumber(ARGV[4])
if limit > 0 then
  local live, oldest = 0, -1
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local ttl = redis.call('PTTL', ARGV[5] .. id)
    if ttl == -2 then
      redis.call('SREM', KEYS[2], id)
    else
      live = live + 1
      if ttl >= 0 and (oldest < 0 or ttl < oldest) then oldest = ttl end
    end
  end
  if live >= limit then return {0, oldest} end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return {-1, 0} end
if limit > 0 then redis.call('SADD', KEYS[2], ARGV[3]) end
return {1, 0}
"""

# Create an export unless its owner (ARGV[2]) already has ARGV[3] live exports queued or
# running (0: no quota): 1 when written, 0 over quota. Ids whose record is gone are dropped.
_CREATE_EXPORT = """
local limit = tonumber(ARGV[3])
if limit > 0 then
  local count = 0
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local key = ARGV[9] .. id
    local owner = redis.call('HGET', key, 'owner')
    if not owner then
      redis.call('SREM', KEYS[2], id)
    elseif owner == ARGV[2] then
      local expires = tonumber(redis.call('HGET', key, 'expires'))
      if expires >= tonumber(ARGV[8]) then count = count + 1 end
    end
  end
  if count >= limit then return 0 end
end
redis.call('HSET', KEYS[1], 'v', ARGV[7], 'd', ARGV[1], 'owner', ARGV[2], 'state', ARGV[6],
           'expires', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
return 1
"""

# Replace an export's record if its version is still ARGV[1]: 1 when written, else 0.
_SAVE_EXPORT = """
local v = redis.call('HGET', KEYS[1], 'v')
if not v or tonumber(v) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3], 'state', ARGV[4])
if ARGV[4] == 'queued' or ARGV[4] == 'running' then
  redis.call('SADD', KEYS[2], ARGV[5])
else
  redis.call('SREM', KEYS[2], ARGV[5])
end
return 1
"""

_totals_enc = msgspec.json.Encoder()
_totals_dec = msgspec.json.Decoder(DomainTotals)


class RedisJobStore(JobStore):
    """Jobs in Redis under `prefix`, kept `ttl` seconds (see the module docstring).

    `timeout` bounds connecting and each socket read; `deadline` bounds a whole
    operation, retry included. `cache_cids` bounds the spec cache by total CIDs
    (their memory: docs/benchmarks.md#sizes-and-encoding-costs).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        ttl: float,
        refresh_on_access: bool = False,
        timeout: float = 0.5,
        deadline: float = 0.9,
        health_check_interval: int = 10,
        cache_cids: int = SPEC_CACHE_CIDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prefix = prefix
        # Redis expires keys on its own clock; this one serves the decisions made here
        # (a key's TTL from a spec's expiry, exports' expiry), as the embedded store's does.
        self.clock = clock
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
        self._put_statistic = self._redis.register_script(_PUT_STATISTIC)
        self._create = self._redis.register_script(_CREATE)
        self._create_export = self._redis.register_script(_CREATE_EXPORT)
        self._save_export = self._redis.register_script(_SAVE_EXPORT)
        self._cache = SpecCache(cache_cids, clock=clock)

    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _totals_key(self, job_id: str) -> str:
        return f"{self.prefix}totals:{job_id}"

    def _aggregations_key(self, job_id: str) -> str:
        return f"{self.prefix}aggregations:{job_id}"

    def _owner_key(self, owner: str | None) -> str:
        return f"{self.prefix}owner:{owner or '-'}"

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

    async def create(self, spec: JobSpec, *, limit: int | None = None) -> None:
        blob = await asyncio.to_thread(codec.dumps, spec)
        ttl_ms = max(1, round((spec.expires_at - self.clock()) * 1000))
        keys = [self._job_key(spec.job_id), self._owner_key(spec.owner)]
        args: list[bytes | str | int] = [blob, ttl_ms, spec.job_id, limit or 0, self._job_key("")]
        async with self._guard():
            created, wait_ms = await self._create(keys=keys, args=args)
        if created == 0:
            raise TooManyJobs(
                f"at most {limit} live jobs; the oldest expires in "
                f"{max(1, round(wait_ms / 1000))} s",
                retry_after=wait_ms / 1000,
            )
        if created < 0:  # a 128-bit random id collided: refuse rather than overwrite
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
                pipe.pexpire(self._totals_key(job_id), ttl_ms)
                pipe.pexpire(self._aggregations_key(job_id), ttl_ms)
                if entry is None:
                    pipe.get(key)
                replies = await pipe.execute()
                exists = bool(replies[0])
                blob = replies[3] if entry is None else None
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
            entry.spec = msgspec.structs.replace(entry.spec, expires_at=self.clock() + self.ttl)
        return msgspec.structs.replace(entry.spec)

    async def get_totals(self, job_id: str) -> dict[str, DomainTotals]:
        try:
            async with self._guard():
                raw = await self._redis.hgetall(self._totals_key(job_id))
        except StoreUnavailable:
            entry = self._cache.get(job_id)
            if entry is None or not entry.totals:
                raise
            return dict(entry.totals)  # degraded: what this process last saw
        totals = {
            d.decode() if isinstance(d, bytes) else d: _totals_dec.decode(v) for d, v in raw.items()
        }
        entry = self._cache.peek(job_id)
        if entry is not None:
            entry.totals.update(totals)
        return totals

    async def put_totals(self, job_id: str, domain: str, totals: DomainTotals) -> None:
        entry = self._cache.peek(job_id)
        if entry is not None:
            entry.totals[domain] = totals
        keys = [self._job_key(job_id), self._totals_key(job_id)]
        async with self._guard():
            await self._put_statistic(keys=keys, args=[domain, _totals_enc.encode(totals)])

    async def get_aggregations(self, job_id: str, domain: str) -> bytes | None:
        async with self._guard():
            value = await self._redis.hget(self._aggregations_key(job_id), domain)
        return value if isinstance(value, bytes) else None

    async def put_aggregations(self, job_id: str, domain: str, blob: bytes) -> None:
        keys = [self._job_key(job_id), self._aggregations_key(job_id)]
        async with self._guard():
            await self._put_statistic(keys=keys, args=[domain, blob])

    async def purge_expired(self) -> int:
        return 0  # keys expire in Redis; owners' sets are pruned as jobs are created

    # --- exports ----------------------------------------------------------------------

    def _export_key(self, export_id: str) -> str:
        return f"{self.prefix}export:{export_id}"

    @property
    def _active_key(self) -> str:
        return f"{self.prefix}exports:active"

    @property
    def _expiry_key(self) -> str:
        return f"{self.prefix}exports:expiry"

    async def create_export(self, export: ExportRecord, *, limit: int | None = None) -> None:
        keys = [self._export_key(export.export_id), self._active_key, self._expiry_key]
        args: list[bytes | str | int | float] = [
            exports.dumps(export),
            export.owner or "-",
            limit or 0,
            export.export_id,
            repr(export.expires_at),
            export.state,
            export.version,
            repr(self.clock()),
            self._export_key(""),
        ]
        async with self._guard():
            created = await self._create_export(keys=keys, args=args)
        if not created:
            raise TooManyExports(
                f"at most {limit} exports queued or running at once", retry_after=5
            )

    async def get_export(self, export_id: str) -> ExportRecord:
        async with self._guard():
            blob = await self._redis.hget(self._export_key(export_id), "d")
        if not isinstance(blob, bytes):
            raise ExportNotFound()
        record = exports.loads(blob)
        if record.expires_at < self.clock():
            raise ExportNotFound()
        return record

    async def save_export(self, export: ExportRecord) -> ExportRecord | None:
        saved = msgspec.structs.replace(export, version=export.version + 1)
        keys = [self._export_key(export.export_id), self._active_key]
        args: list[bytes | str | int] = [
            export.version,
            saved.version,
            exports.dumps(saved),
            saved.state,
            saved.export_id,
        ]
        async with self._guard():
            written = await self._save_export(keys=keys, args=args)
        return saved if written else None

    async def _records(self, ids: list[bytes | str]) -> list[ExportRecord]:
        if not ids:
            return []
        async with self._guard():
            pipe = self._redis.pipeline(transaction=False)
            for export_id in ids:
                name = export_id.decode() if isinstance(export_id, bytes) else export_id
                pipe.hget(self._export_key(name), "d")
            blobs = await pipe.execute()
        return [exports.loads(b) for b in blobs if isinstance(b, bytes)]

    async def active_exports(self) -> list[ExportRecord]:
        async with self._guard():
            ids = list(await self._redis.smembers(self._active_key))
        now = self.clock()
        found = [
            r for r in await self._records(ids) if r.state in exports.ACTIVE and r.expires_at >= now
        ]
        return sorted(found, key=lambda e: e.created_at)

    async def expired_exports(self, now: float) -> list[ExportRecord]:
        async with self._guard():
            found = await self._redis.zrangebyscore(self._expiry_key, "-inf", f"({now!r}")
        return await self._records([i for i in found if isinstance(i, bytes | str)])

    async def delete_export(self, export_id: str) -> None:
        async with self._guard():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self._export_key(export_id))
            pipe.srem(self._active_key, export_id)
            pipe.zrem(self._expiry_key, export_id)
            await pipe.execute()

    async def ping(self) -> None:
        async with self._guard():
            await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
