"""The Redis job store: jobs shared by every replica (used when TRACE_REDIS_URL is set).

One Redis server or a Redis Cluster (`svc.store.redis_connect` tells them apart from the
URL's server). The key layout and the scripts are in `svc.store.redis_scripts`: every key
of a job shares the job id as its hash tag, so a job's scripts run in one slot and jobs
spread over a cluster's shards.

A job is written by one ``SET ... PX ttl NX``, so a reader sees all of it or none of it.
With a quota, a script first reserves the job's place in its owner's sorted set (scored by
expiry: expired entries are dropped by score, so nothing else keeps it up to date) and
refuses over the limit; check and reservation are one atomic step, so concurrent
creations never overshoot. A reservation whose job could not be written is withdrawn.
Expired jobs need no purging: Redis expires the keys itself. Statistics copy the job
key's remaining TTL when they are written (a script, so they expire together), and
``refresh_on_access`` extends all of them (and the owner's entry) on every read.

Specs are immutable, so each process keeps a small cache of decoded specs (bounded by
their total CID count). A cached read still asks Redis whether the job exists (one
``EXISTS`` or, with refresh, one script: no transfer, no decoding), so an expired job is
gone everywhere at once and an outage shows at lookup. While Redis is down,
``get_totals`` answers from the totals last seen by this process (if any), so a stream
that already holds its spec keeps running from one domain into the next.

Outages: redis-py's defaults retry for about 5 s. Here connecting and every socket read
time out after 0.5 s, a dropped connection is retried once at once, a timeout is not
retried, and an overall deadline bounds each operation; every failure is raised as
`StoreUnavailable` (503, Retry-After) well within a second. The pool reconnects on its
own when Redis returns, so no restart is needed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from redis.exceptions import RedisError

from svc.core import export_record as exports
from svc.core.export_record import ExportRecord
from svc.errors import (
    ExportNotFound,
    JobNotFound,
    StoreUnavailable,
    TooManyExports,
    TooManyJobs,
    TooManyRequests,
)
from svc.protocol import DomainTotals
from svc.store import JobSpec, JobStore, codec
from svc.store import redis_scripts as k
from svc.store.redis_connect import Client, connect
from svc.store.spec_cache import SPEC_CACHE_CIDS, SpecCache

log = logging.getLogger(__name__)

_totals_enc = msgspec.json.Encoder()
_totals_dec = msgspec.json.Decoder(DomainTotals)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        self.url = url
        self.prefix = prefix
        # Redis expires keys on its own clock; this one serves the decisions made here
        # (a key's TTL from a spec's expiry, exports' expiry), as the embedded store's does.
        self.clock = clock
        self.ttl = ttl
        self.refresh_on_access = refresh_on_access
        self.deadline = deadline
        self._timeout = timeout
        self._health_check_interval = health_check_interval
        self._client: Client | None = None
        self._connecting = asyncio.Lock()
        self._scripts: dict[str, Any] = {}
        self._cache = SpecCache(cache_cids, clock=clock)

    async def _redis(self) -> Client:
        """The client, connected on first use (a cluster is detected then)."""
        if self._client is None:
            async with self._connecting:
                if self._client is None:
                    client = await connect(
                        self.url,
                        timeout=self._timeout,
                        health_check_interval=self._health_check_interval,
                    )
                    for name in ("PUT_STATISTIC", "TOUCH_JOB", "RESERVE_JOB", "TOUCH_OWNER"):
                        self._scripts[name] = client.register_script(getattr(k, name))
                    for name in ("INDEX_EXPORT", "SAVE_EXPORT", "PROBE", "TAKE_TOKEN", "HOLD_SLOT"):
                        self._scripts[name] = client.register_script(getattr(k, name))
                    self._client = client
        return self._client

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        await self._redis()
        return await self._scripts[script](keys=keys, args=args)

    @property
    def is_cluster(self) -> bool:
        """Whether the server turned out to be a Redis Cluster (False before first use)."""
        from redis.asyncio.cluster import RedisCluster

        return isinstance(self._client, RedisCluster)

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

    async def create(
        self, spec: JobSpec, *, limit: int | None = None, quota_key: str | None = None
    ) -> None:
        blob = await asyncio.to_thread(codec.dumps, spec)
        now = self.clock()
        ttl_ms = max(1, round((spec.expires_at - now) * 1000))
        owner_key = k.owner_jobs_key(self.prefix, quota_key or spec.owner)
        if limit:
            args = [round(now * 1000), round(spec.expires_at * 1000), spec.job_id, limit]
            async with self._guard():
                reserved, wait_ms = await self._run("RESERVE_JOB", [owner_key], args)
            if not reserved:
                raise TooManyJobs(
                    f"at most {limit} live jobs; the oldest expires in "
                    f"{max(1, round(wait_ms / 1000))} s",
                    retry_after=wait_ms / 1000,
                )
        try:
            async with self._guard():
                redis = await self._redis()
                written = await redis.set(
                    k.job_key(self.prefix, spec.job_id), blob, px=ttl_ms, nx=True
                )
        except StoreUnavailable:
            if limit:
                await self._withdraw(owner_key, spec.job_id)
            raise
        if not written:  # a 128-bit random id collided: refuse rather than overwrite
            if limit:
                await self._withdraw(owner_key, spec.job_id)
            raise StoreUnavailable("could not allocate a job id; retry")
        self._cache.remember(msgspec.structs.replace(spec))

    async def _withdraw(self, owner_key: str, job_id: str) -> None:
        """Best effort: a reservation left behind only counts until its expiry."""
        try:
            async with self._guard():
                await (await self._redis()).zrem(owner_key, job_id)
        except StoreUnavailable:
            pass

    async def get(self, job_id: str) -> JobSpec:
        entry = self._cache.get(job_id)
        key = k.job_key(self.prefix, job_id)
        blob: bytes | None = None
        async with self._guard():
            redis = await self._redis()
            if self.refresh_on_access:
                ttl_ms = max(1, round(self.ttl * 1000))
                keys = [
                    key,
                    k.totals_key(self.prefix, job_id),
                    k.aggregations_key(self.prefix, job_id),
                ]
                reply = await self._run("TOUCH_JOB", keys, [ttl_ms, "1" if entry is None else "0"])
                exists = reply is not None
                blob = reply if isinstance(reply, bytes) else None
            elif entry is not None:
                exists = bool(await redis.exists(key))
            else:
                value = await redis.get(key)
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
            expires_at = self.clock() + self.ttl
            entry.spec = msgspec.structs.replace(entry.spec, expires_at=expires_at)
            owner_key = k.owner_jobs_key(self.prefix, entry.spec.owner)
            async with self._guard():
                await self._run("TOUCH_OWNER", [owner_key], [round(expires_at * 1000), job_id])
        return msgspec.structs.replace(entry.spec)

    async def get_totals(self, job_id: str) -> dict[str, DomainTotals]:
        try:
            async with self._guard():
                raw = await (await self._redis()).hgetall(k.totals_key(self.prefix, job_id))
        except StoreUnavailable:
            entry = self._cache.get(job_id)
            if entry is None or not entry.totals:
                raise
            return dict(entry.totals)  # degraded: what this process last saw
        totals = {_text(d): _totals_dec.decode(v) for d, v in raw.items()}
        entry = self._cache.peek(job_id)
        if entry is not None:
            entry.totals.update(totals)
        return totals

    async def put_totals(self, job_id: str, domain: str, totals: DomainTotals) -> None:
        entry = self._cache.peek(job_id)
        if entry is not None:
            entry.totals[domain] = totals
        keys = [k.job_key(self.prefix, job_id), k.totals_key(self.prefix, job_id)]
        async with self._guard():
            await self._run("PUT_STATISTIC", keys, [domain, _totals_enc.encode(totals)])

    async def get_aggregations(self, job_id: str, domain: str) -> bytes | None:
        async with self._guard():
            redis = await self._redis()
            value = await redis.hget(k.aggregations_key(self.prefix, job_id), domain)
        return value if isinstance(value, bytes) else None

    async def put_aggregations(self, job_id: str, domain: str, blob: bytes) -> None:
        keys = [k.job_key(self.prefix, job_id), k.aggregations_key(self.prefix, job_id)]
        async with self._guard():
            await self._run("PUT_STATISTIC", keys, [domain, blob])

    async def purge_expired(self) -> int:
        return 0  # keys expire in Redis; owners' sets are pruned by score

    # --- exports ----------------------------------------------------------------------

    async def create_export(
        self, export: ExportRecord, *, limit: int | None = None, quota_key: str | None = None
    ) -> None:
        # finished exports leave this index when saved (by `export.owner`) or at the next
        # creation (by their state), so a quota key other than the owner is fine
        owner_key = k.owner_exports_key(self.prefix, quota_key or export.owner)
        now = self.clock()
        async with self._guard():
            redis = await self._redis()
            # Ids of the owner's index whose record is finished: read here, dropped by the
            # script (which may touch only the index's keys, not the records). A missing
            # record still counts: it may be a concurrent creation's, indexed first.
            ids = [_text(i) for i in await redis.zrangebyscore(owner_key, repr(now), "+inf")]
            states = await self._hget_all(ids, "state")
            stale = [
                i
                for i, state in zip(ids, states, strict=True)
                if state is not None and _text(state) not in ACTIVE
            ]
            keys = [owner_key, k.exports_active_key(self.prefix), k.exports_expiry_key(self.prefix)]
            args = [limit or 0, repr(now), repr(export.expires_at), export.export_id, *stale]
            indexed = await self._run("INDEX_EXPORT", keys, args)
        if not indexed:
            raise TooManyExports(
                f"at most {limit} exports queued or running at once", retry_after=5
            )
        try:
            async with self._guard():
                await redis.hset(
                    k.export_key(self.prefix, export.export_id),
                    mapping={
                        "v": export.version,
                        "d": exports.dumps(export),
                        "owner": export.owner or "-",
                        "state": export.state,
                        "expires": repr(export.expires_at),
                    },
                )
        except StoreUnavailable:
            await self._unindex(export.export_id, quota_key or export.owner, expiry=True)
            raise

    async def _hget_all(self, ids: list[str], field: str) -> list[Any]:
        """One field of each export record (None when gone); one pipeline, any slots."""
        if not ids:
            return []
        pipe = (await self._redis()).pipeline(transaction=False)
        for export_id in ids:
            pipe.hget(k.export_key(self.prefix, export_id), field)
        return list(await pipe.execute())

    async def _unindex(self, export_id: str, owner: str | None, *, expiry: bool) -> None:
        """Drop an export from the active index (and the expiry index); best effort: what
        is left is dropped by the next creation, or skipped by the sweep by its state."""
        try:
            async with self._guard():
                pipe = (await self._redis()).pipeline(transaction=False)
                pipe.srem(k.exports_active_key(self.prefix), export_id)
                pipe.zrem(k.owner_exports_key(self.prefix, owner), export_id)
                if expiry:
                    pipe.zrem(k.exports_expiry_key(self.prefix), export_id)
                await pipe.execute()
        except StoreUnavailable:
            pass

    async def get_export(self, export_id: str) -> ExportRecord:
        async with self._guard():
            blob = await (await self._redis()).hget(k.export_key(self.prefix, export_id), "d")
        if not isinstance(blob, bytes):
            raise ExportNotFound()
        record = exports.loads(blob)
        if record.expires_at < self.clock():
            raise ExportNotFound()
        return record

    async def save_export(self, export: ExportRecord) -> ExportRecord | None:
        saved = msgspec.structs.replace(export, version=export.version + 1)
        keys = [k.export_key(self.prefix, export.export_id)]
        args = [export.version, saved.version, exports.dumps(saved), saved.state]
        async with self._guard():
            written = await self._run("SAVE_EXPORT", keys, args)
        if written and saved.state not in ACTIVE:
            await self._unindex(saved.export_id, saved.owner, expiry=False)
        return saved if written else None

    async def _records(self, ids: list[str]) -> list[ExportRecord]:
        async with self._guard():
            blobs = await self._hget_all(ids, "d")
        return [exports.loads(b) for b in blobs if isinstance(b, bytes)]

    async def active_exports(self) -> list[ExportRecord]:
        async with self._guard():
            redis = await self._redis()
            ids = [_text(i) for i in await redis.smembers(k.exports_active_key(self.prefix))]
        now = self.clock()
        found = [
            r for r in await self._records(ids) if r.state in exports.ACTIVE and r.expires_at >= now
        ]
        return sorted(found, key=lambda e: e.created_at)

    async def expired_exports(self, now: float) -> list[ExportRecord]:
        async with self._guard():
            redis = await self._redis()
            found = await redis.zrangebyscore(
                k.exports_expiry_key(self.prefix), "-inf", f"({now!r}"
            )
        ids = [_text(i) for i in found]
        records = await self._records(ids)
        gone = set(ids) - {r.export_id for r in records}
        for export_id in gone:  # indexed, never written (a failed creation)
            await self._unindex(export_id, None, expiry=True)
        return records

    async def delete_export(self, export_id: str) -> None:
        async with self._guard():
            await (await self._redis()).delete(k.export_key(self.prefix, export_id))
        # The owner's index drops it by score: it expired before it was deleted.
        async with self._guard():
            pipe = (await self._redis()).pipeline(transaction=False)
            pipe.srem(k.exports_active_key(self.prefix), export_id)
            pipe.zrem(k.exports_expiry_key(self.prefix), export_id)
            await pipe.execute()

    async def take_token(self, key: str, per_minute: float, burst: int) -> float | None:
        """One script a request on `{prefix}rate:{<key>}` (see `redis_scripts.TAKE_TOKEN`)."""
        rate_per_ms = per_minute / 60_000
        async with self._guard():
            wait_ms = await self._run(
                "TAKE_TOKEN", [f"{self.prefix}rate:{{{key}}}"], [repr(rate_per_ms), burst]
            )
        return int(wait_ms) / 1000

    def _slots_key(self, client: str) -> str:
        return f"{self.prefix}streams:{{{client}}}"

    async def hold_client_slot(self, client: str, limit: int, lease: float) -> str | None:
        slot = secrets.token_hex(8)
        async with self._guard():
            held = await self._run(
                "HOLD_SLOT", [self._slots_key(client)], [limit, round(lease * 1000), slot]
            )
        if not held:
            raise TooManyRequests(
                f"at most {limit} concurrent streams per client, on all replicas together"
            )
        return slot

    async def renew_client_slot(self, client: str, slot: str, lease: float) -> None:
        async with self._guard():
            await self._run("HOLD_SLOT", [self._slots_key(client)], [0, round(lease * 1000), slot])

    async def release_client_slot(self, client: str, slot: str) -> None:
        async with self._guard():
            await (await self._redis()).zrem(self._slots_key(client), slot)

    async def ping(self) -> None:
        """A scripted write and delete on a key of its own (a random one, so over time on
        every shard of a cluster): a read-only replica, a full Redis (``maxmemory`` with
        ``noeviction``) or a cluster that cannot serve the slot fail it, as they would
        fail job creation; PING would not."""
        key = f"{self.prefix}ready:{{{secrets.token_hex(8)}}}"
        async with self._guard():
            await self._run("PROBE", [key], ["1"])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


ACTIVE = {str(s) for s in exports.ACTIVE}
