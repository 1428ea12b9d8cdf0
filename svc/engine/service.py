"""The running service: settings, domains, source, job store and token codec.

Routes and the stream ask this object for jobs, pages, positions and totals; it owns no
HTTP concern. A job's totals (per-domain record and CID counts) are computed once per
job, by whichever request needs them first, and kept in the job store; so are its
declared aggregations (`svc.core.aggregate`), once a stream or the aggregation route
asks. Positions are signed here and only here, for the stream and the pages alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from svc import protocol as p
from svc.config import Settings
from svc.core.admission import Admission
from svc.core.aggregate import decode_aggregations, encode_aggregations
from svc.core.domains import Domain
from svc.core.filters import normalize_where
from svc.core.keyset import Key, Plan
from svc.core.lru import WeightedLru
from svc.core.ratelimit import TokenBuckets
from svc.core.tokens import Cursor, TokenCodec
from svc.engine.batches import Batches, FileRowBatches, RowBatches
from svc.engine.json_batches import JsonBatches, ReadAhead
from svc.engine.once import Once
from svc.engine.positions import Start, start_at
from svc.engine.reader import DomainReader
from svc.errors import (
    BadRequest,
    InvalidFilter,
    InvalidToken,
    JobNotFound,
    RateLimited,
    StoreUnavailable,
    TooManyCids,
    UnknownDomain,
)
from svc.protocol import DomainTotals, Where
from svc.sources import Source
from svc.store import JobSpec, JobStore, new_spec

log = logging.getLogger(__name__)

# What this process keeps per job (plans, totals, per-chunk counts) is bounded by the
# CIDs of the jobs it holds: a plan references its job's whole CID list.
JOB_CACHE_CIDS = 500_000
READ_AHEAD_PER_THREAD = 4  # pages read ahead by all streams, per JSON-building thread


@dataclass
class _JobState:
    """What this process knows of one job besides its spec."""

    plan: Plan
    totals: dict[str, DomainTotals] = field(default_factory=dict)
    chunk_records: dict[str, list[int]] = field(default_factory=dict)  # for offset pages
    aggregations: dict[str, dict[str, p.Aggregate]] = field(default_factory=dict)

    def weight(self) -> int:
        return len(self.plan.cids)


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
        self.admission = Admission(settings.max_streams, settings.max_streams_per_client)
        # Pages read ahead, all streams together: more than a few per reading thread only
        # queue, and would let stalled clients hold ~2 MB each (svc.engine.json_batches).
        self.read_ahead = ReadAhead(READ_AHEAD_PER_THREAD * max(2, settings.sqlite_json_threads))
        self._jobs: WeightedLru[str, _JobState] = WeightedLru(JOB_CACHE_CIDS, _JobState.weight)
        self._counting: Once[DomainTotals] = Once("counting")
        self._first_pages = 0  # streams reading their first page (see first_page)
        self._no_first_pages = asyncio.Event()
        self._no_first_pages.set()
        self._aggregating: Once[dict[str, p.Aggregate]] = Once("aggregating")
        rate = settings.job_create_rate  # per replica (see svc.core.ratelimit)
        self._create_rate = TokenBuckets(rate, settings.job_create_burst) if rate else None

    # --- jobs -------------------------------------------------------------------------

    def check_domains(self, names: list[str] | None) -> list[str]:
        if names is None:
            return list(self.domains)
        if not names:
            raise UnknownDomain("domains must not be empty")
        unknown = [n for n in names if n not in self.domains]
        if unknown:
            raise UnknownDomain(f"unknown domain(s): {', '.join(sorted(set(unknown)))[:200]}")
        return list(dict.fromkeys(names))

    def admit_job(self, client: str) -> None:
        """Raise `RateLimited` when `client` (an API key's fingerprint, or an address when
        keys are off) creates jobs faster than TRACE_JOB_CREATE_RATE. Called before the
        body is read."""
        if self._create_rate is None:
            return
        wait = self._create_rate.take(client)
        if wait:
            raise RateLimited(retry_after=wait)

    async def create_job(
        self,
        cids: list[str],
        domains: list[str] | None,
        owner: str | None,
        where: Where | None = None,
    ) -> JobSpec:
        names = self.check_domains(domains)
        if len(cids) > self.settings.max_cids:  # entries: duplicates cost memory too
            raise TooManyCids(f"{len(cids)} container ids; at most {self.settings.max_cids}")
        filters = normalize_where(where, self.domains, names)
        snapshot = await self.source.current_snapshot()
        # De-duplicating and sorting 115k CIDs takes ~0.1 s of CPU: not on the event loop,
        # where every other stream of this process runs.
        spec = await asyncio.to_thread(
            new_spec, cids, names, self.settings.job_ttl, owner, snapshot, filters
        )
        await self.store.create(spec, limit=self.settings.max_jobs_per_key or None)
        return spec

    async def job(self, job_id: str, owner: str | None) -> JobSpec:
        spec = await self.store.get(job_id)
        if spec.owner != owner:
            raise JobNotFound()  # another key's job: do not reveal that it exists
        gone = [d for d in spec.domains if d not in self.domains]
        if gone:  # the domain file changed since the job was made
            raise UnknownDomain(f"this job's domain(s) {', '.join(gone)} are no longer configured")
        if spec.where is not None:  # ... and may no longer declare a column filterable
            try:
                normalize_where(spec.where, self.domains, spec.domains)
            except InvalidFilter as exc:
                raise InvalidFilter(f"this job's filter no longer fits: {exc.detail}") from None
        return spec

    def _state(self, spec: JobSpec) -> _JobState:
        state = self._jobs.get(spec.job_id)
        if state is None:
            state = self._jobs.put(spec.job_id, _JobState(Plan(spec.cids)))
        return state

    def reader(self, spec: JobSpec, domain: str) -> DomainReader:
        where = spec.where.get(domain) if spec.where else None
        return DomainReader(
            self.source, self.domains[domain], self._state(spec).plan, spec.snapshot, where
        )

    def batches(self, spec: JobSpec, start: Start, arrays: bool) -> Batches:
        """A stream's batches from `start` (after a key; a stream has no offset): built as
        JSON by the database where it can (`svc.engine.json_batches`), else from rows."""
        assert not start.offset, "a stream starts after a key"
        reader, size = self.reader(spec, start.domain), self.settings.batch_size
        if self.settings.database_json and self.source.builds_json:
            ahead = max(2, self.settings.sqlite_json_threads)
            return JsonBatches(
                reader, start.after, size, arrays, ahead=ahead, budget=self.read_ahead
            )
        return RowBatches(reader, start.after, size, arrays)

    async def file_rows(self, spec: JobSpec, start: Start) -> FileRowBatches:
        """The batches of the CSV download and the export writer from `start`: the rows as
        read, a page read when asked for."""
        reader, size = self.reader(spec, start.domain), self.settings.batch_size
        chunks = await self._chunks_to(spec, start)
        return FileRowBatches(reader, start.after, size, offset=start.offset, chunk_records=chunks)

    async def _chunks_to(self, spec: JobSpec, start: Start) -> list[int]:
        """What reading at `start.offset` needs: the records of each chunk (none else)."""
        return await self.chunk_records(spec, start.domain) if start.offset else []

    # --- positions --------------------------------------------------------------------

    def cursor(self, spec: JobSpec, since: str | None) -> Cursor | None:
        """The position a `since` token names in this job, or None without a token."""
        if since is None:
            return None
        cursor = self.tokens.verify(since, spec.job_id)
        if cursor.domain not in spec.domains or cursor.snapshot != spec.snapshot:
            raise InvalidToken()
        return cursor

    def sign(self, spec: JobSpec, domain: str, batch: int, last: Key, seen: int) -> str:
        """The token of the position after `last`, the `seen`-th record of `domain`, sent
        in batch number `batch`."""
        return self.tokens.sign(
            Cursor(spec.job_id, domain, batch, last.cid, last.rid, seen, spec.snapshot)
        )

    def position(
        self, spec: JobSpec, domain: str | None, since: str | None, offset: int | None
    ) -> tuple[str, Cursor | None]:
        """Where a page or a domain's CSV download starts: its domain, and the position
        after `since` (None: at `offset`, or at the start; `positions.start_at` makes it a
        `Start`). The domain may be left out when `since` names it."""
        cursor = self.cursor(spec, since)
        domain = domain or (cursor.domain if cursor else None)
        if domain is None:
            raise BadRequest("domain is required (or a since token that names it)")
        if domain not in spec.domains:
            raise UnknownDomain(f"this job has no domain {domain[:64]!r}")
        if cursor is not None and cursor.domain != domain:
            raise InvalidToken("the since token is for another domain")
        if cursor is not None and offset is not None:
            raise BadRequest("give either offset or since, not both")
        return domain, cursor

    # --- pages ------------------------------------------------------------------------

    async def page(
        self,
        spec: JobSpec,
        domain: str | None,
        *,
        since: str | None,
        offset: int | None,
        limit: int,
        arrays: bool,
    ) -> p.Page:
        """One REST page of a domain: after `since`, from `offset`, or from the start."""
        domain, cursor = self.position(spec, domain, since, offset)
        start = start_at(domain, cursor, offset, limit)
        totals = await self.totals(spec, domain)
        reader, chunks = self.reader(spec, domain), await self._chunks_to(spec, start)
        rows = RowBatches(
            reader, start.after, limit, arrays, offset=start.offset, chunk_records=chunks
        )
        batch = await rows.next()
        token = None
        if batch.more and batch.last is not None:  # numbered as the walk would number it
            seen = start.seen + len(batch.data)
            token = self.sign(spec, domain, start.batch + 1, batch.last, seen)
        columns = list(self.domains[domain].columns) if arrays else None
        return p.Page(domain, limit, totals.records, batch.data, token, offset, columns)

    # --- totals -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def first_page(self) -> AsyncIterator[None]:
        """Counting gives way while a stream reads its first page: that page is what a
        user waits for, and on two cores a count beside it slowed it ~2.5x. Counting
        starts its next chunk only when no first page is being read."""
        self._first_pages += 1
        self._no_first_pages.clear()
        try:
            yield
        finally:
            self._first_pages -= 1
            if not self._first_pages:
                self._no_first_pages.set()

    def totals_if_known(self, spec: JobSpec, domain: str) -> DomainTotals | None:
        """The totals if known now (counting them if nobody is yet), else None."""
        future = self.totals_future(spec, domain)
        return future.result() if future.done() else None

    def totals_future(self, spec: JobSpec, domain: str) -> asyncio.Future[DomainTotals]:
        """The domain's totals for this job, stored or being counted (once per process)."""
        known = self._state(spec).totals.get(domain)
        return self._counting.future(
            (spec.job_id, domain), known, lambda: self._load_totals(spec, domain)
        )

    async def totals(self, spec: JobSpec, domain: str) -> DomainTotals:
        return await asyncio.shield(self.totals_future(spec, domain))

    async def totals_within(
        self, spec: JobSpec, domain: str, seconds: float
    ) -> DomainTotals | None:
        """The totals if they are known within `seconds`, else None (still counting).

        A failure to count is raised, so a caller before the first byte reports it.
        """
        try:
            return await asyncio.wait_for(asyncio.shield(self.totals_future(spec, domain)), seconds)
        except TimeoutError:
            return None

    async def _load_totals(self, spec: JobSpec, domain: str) -> DomainTotals:
        known = (await self.store.get_totals(spec.job_id)).get(domain)
        if known is None:
            known = await self._count(spec, domain)
        self._state(spec).totals[domain] = known
        return known

    async def _count(self, spec: JobSpec, domain: str) -> DomainTotals:
        chunks = await self.reader(spec, domain).chunk_totals(turn=self._no_first_pages.wait)
        self._state(spec).chunk_records[domain] = [c.records for c in chunks]
        totals = DomainTotals(
            records=sum(c.records for c in chunks), containers=sum(c.containers for c in chunks)
        )
        try:
            await self.store.put_totals(spec.job_id, domain, totals)
        except StoreUnavailable:  # totals are a cache: the stream goes on without storing them
            log.warning("could not store totals of job %s/%s", spec.job_id, domain)
        return totals

    async def chunk_records(self, spec: JobSpec, domain: str) -> list[int]:
        """Records in each of the domain's chunks (for offset paging)."""
        state = self._state(spec)
        known = state.chunk_records.get(domain)
        if known is None:
            chunks = await self.reader(spec, domain).chunk_totals(turn=self._no_first_pages.wait)
            known = state.chunk_records[domain] = [c.records for c in chunks]
        return known

    # --- aggregations -----------------------------------------------------------------

    async def aggregation(self, spec: JobSpec) -> p.JobAggregation:
        """The job's totals and declared aggregations, every domain: from this process,
        else the job store, else computed (once per process, domain after domain, on the
        source's count lane) and stored for every replica and every later stream."""
        totals = {}
        for name in spec.domains:
            t = await self.totals(spec, name)
            totals[name] = p.DomainCount(t.records, t.containers)
        aggregations = {}
        for name in spec.domains:
            if self.domains[name].aggregations:
                aggregations[name] = await asyncio.shield(self.aggregations_future(spec, name))
        return p.JobAggregation(totals, aggregations)

    def start_aggregations(self, spec: JobSpec) -> None:
        """Start computing (or loading) the job's aggregations that are not known yet."""
        for name in spec.domains:
            if self.domains[name].aggregations:
                self.aggregations_future(spec, name)

    def aggregations_future(
        self, spec: JobSpec, domain: str
    ) -> asyncio.Future[dict[str, p.Aggregate]]:
        """A domain's aggregations for this job, known or being computed."""
        known = self._state(spec).aggregations.get(domain)
        return self._aggregating.future(
            (spec.job_id, domain), known, lambda: self._load_aggregations(spec, domain)
        )

    async def _load_aggregations(self, spec: JobSpec, domain: str) -> dict[str, p.Aggregate]:
        try:
            blob = await self.store.get_aggregations(spec.job_id, domain)
        except StoreUnavailable:  # a cache: compute rather than fail the stream's end
            log.warning("could not read aggregations of job %s/%s", spec.job_id, domain)
            blob = None
        if blob is not None:
            known = decode_aggregations(blob)
        else:
            known = await self.reader(spec, domain).aggregate()
            try:
                await self.store.put_aggregations(spec.job_id, domain, encode_aggregations(known))
            except StoreUnavailable:
                log.warning("could not store aggregations of job %s/%s", spec.job_id, domain)
        self._state(spec).aggregations[domain] = known
        return known

    async def close(self) -> None:
        await self.source.close()
        await self.store.close()
