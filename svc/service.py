"""The running service's state: settings, domains, source, job store and token codec.

Routes and the stream ask this object for jobs, readers and statistics; it owns no
HTTP concern. Statistics (per-domain totals) are computed once per job, by whichever
request needs them first, and kept in the job store.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict

from svc.config import Settings
from svc.domains import Domain
from svc.errors import JobNotFound, StoreUnavailable, TooManyCids, UnknownDomain
from svc.jobs import DomainStats, JobSpec, JobStore, new_spec
from svc.keyset import Plan
from svc.reader import DomainReader
from svc.sources import Source
from svc.tokens import TokenCodec

log = logging.getLogger(__name__)

_PLAN_CACHE = 32


def owner_of(api_key: str | None) -> str | None:
    """A stable, non-reversible fingerprint of the API key that created a job."""
    return None if api_key is None else hashlib.sha256(api_key.encode()).hexdigest()[:16]


class Service:
    def __init__(
        self,
        settings: Settings,
        domains: dict[str, Domain],
        source: Source,
        store: JobStore,
        tokens: TokenCodec,
    ) -> None:
        self.settings = settings
        self.domains = domains
        self.source = source
        self.store = store
        self.tokens = tokens
        self.draining = asyncio.Event()
        self.active_streams = 0
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._stats: dict[tuple[str, str], asyncio.Task[DomainStats]] = {}
        self._stats_known: OrderedDict[tuple[str, str], DomainStats] = OrderedDict()
        # Per-chunk record counts, for offset paging: in-process only (small, recomputable).
        self._chunk_records: OrderedDict[tuple[str, str], list[int]] = OrderedDict()

    def check_domains(self, names: list[str] | None) -> list[str]:
        if names is None:
            return list(self.domains)
        if not names:
            raise UnknownDomain("domains must not be empty")
        unknown = [n for n in names if n not in self.domains]
        if unknown:
            raise UnknownDomain(f"unknown domain(s): {', '.join(sorted(set(unknown)))[:200]}")
        return list(dict.fromkeys(names))

    async def create_job(
        self, cids: list[str], domains: list[str] | None, owner: str | None
    ) -> JobSpec:
        names = self.check_domains(domains)
        if len(cids) > self.settings.max_cids and len(set(cids)) > self.settings.max_cids:
            raise TooManyCids(
                f"{len(set(cids))} distinct container ids; at most {self.settings.max_cids}"
            )
        snapshot = await self.source.current_snapshot()
        # De-duplicating and sorting 115k CIDs takes ~0.1 s of CPU: not on the event loop,
        # where every other stream of this process runs.
        spec = await asyncio.to_thread(
            new_spec, cids, names, self.settings.job_ttl, owner, snapshot
        )
        await self.store.create(spec)
        return spec

    async def job(self, job_id: str, owner: str | None) -> JobSpec:
        spec = await self.store.get(job_id)
        if spec.owner != owner:
            raise JobNotFound()  # another key's job: do not reveal that it exists
        gone = [d for d in spec.domains if d not in self.domains]
        if gone:  # the domain file changed since the job was made
            raise UnknownDomain(f"this job's domain(s) {', '.join(gone)} are no longer configured")
        return spec

    def plan(self, spec: JobSpec) -> Plan:
        plan = self._plans.get(spec.job_id)
        if plan is None:
            plan = self._plans[spec.job_id] = Plan(spec.cids)
            if len(self._plans) > _PLAN_CACHE:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(spec.job_id)
        return plan

    def reader(self, spec: JobSpec, domain: str) -> DomainReader:
        return DomainReader(self.source, self.domains[domain], self.plan(spec), spec.snapshot)

    def stats_future(self, spec: JobSpec, domain: str) -> asyncio.Future[DomainStats]:
        """The domain's totals for this job, stored or being computed (once per process)."""
        key = (spec.job_id, domain)
        known = self._stats_known.get(key)
        if known is not None:
            done: asyncio.Future[DomainStats] = asyncio.get_running_loop().create_future()
            done.set_result(known)
            return done
        task = self._stats.get(key)
        if task is None:
            task = self._stats[key] = asyncio.ensure_future(self._load_stats(spec, domain))
            task.add_done_callback(lambda done: self._forget_count(key, done))
        return task

    def _forget_count(self, key: tuple[str, str], done: asyncio.Future[DomainStats]) -> None:
        self._stats.pop(key, None)
        if not done.cancelled() and done.exception() is not None:  # seen: no asyncio warning
            log.info("counting %s/%s failed: %s", *key, done.exception())

    async def stats(self, spec: JobSpec, domain: str) -> DomainStats:
        return await asyncio.shield(self.stats_future(spec, domain))

    async def stats_within(self, spec: JobSpec, domain: str, seconds: float) -> DomainStats | None:
        """The totals if they are known within `seconds`, else None (still counting).

        A failure to count is raised, so a caller before the first byte reports it.
        """
        try:
            return await asyncio.wait_for(asyncio.shield(self.stats_future(spec, domain)), seconds)
        except TimeoutError:
            return None

    async def _load_stats(self, spec: JobSpec, domain: str) -> DomainStats:
        known = (await self.store.get_stats(spec.job_id)).get(domain)
        if known is None:
            known = await self._count(spec, domain)
        self._stats_known[(spec.job_id, domain)] = known
        if len(self._stats_known) > _PLAN_CACHE * 4:
            self._stats_known.popitem(last=False)
        return known

    async def _count(self, spec: JobSpec, domain: str) -> DomainStats:
        chunks = await self.reader(spec, domain).chunk_stats()
        self._remember_chunks(spec, domain, [c.records for c in chunks])
        stats = DomainStats(
            records=sum(c.records for c in chunks), containers=sum(c.containers for c in chunks)
        )
        try:
            await self.store.put_stats(spec.job_id, domain, stats)
        except StoreUnavailable:  # totals are a cache: the stream goes on without storing them
            log.warning("could not store totals of job %s/%s", spec.job_id, domain)
        return stats

    def _remember_chunks(self, spec: JobSpec, domain: str, records: list[int]) -> None:
        self._chunk_records[(spec.job_id, domain)] = records
        if len(self._chunk_records) > _PLAN_CACHE:
            self._chunk_records.popitem(last=False)

    async def chunk_records(self, spec: JobSpec, domain: str) -> list[int]:
        """Records in each of the domain's chunks (for offset paging)."""
        known = self._chunk_records.get((spec.job_id, domain))
        if known is None:
            chunks = await self.reader(spec, domain).chunk_stats()
            known = [c.records for c in chunks]
            self._remember_chunks(spec, domain, known)
        return known

    async def close(self) -> None:
        await self.source.close()
        await self.store.close()
