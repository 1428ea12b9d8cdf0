"""The running service: settings, domains, source, job store and token codec.

Routes, the stream, the CSV download and the export writer ask this object for jobs,
their readers and batches, positions, pages, totals and aggregations (the last two are
`svc.engine.tallies`'); it owns no HTTP concern. Positions are verified and signed here
and only here, for every user alike.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from svc import protocol as p
from svc.config import Settings
from svc.core import digest
from svc.core.admission import Admission
from svc.core.domains import Domain
from svc.core.filters import normalize_where
from svc.core.lru import WeightedLru
from svc.core.ratelimit import TokenBuckets
from svc.core.select import narrow, normalize_select
from svc.core.sql.plan import Key, Plan
from svc.core.tokens import Cursor, TokenCodec
from svc.engine.batches import Batches, FileRowBatches, RowBatches
from svc.engine.folding import AggregationFold
from svc.engine.json_batches import JsonBatches, ReadAhead
from svc.engine.positions import Start, start_at
from svc.engine.reader import DomainReader
from svc.engine.tallies import JobState, Tallies
from svc.errors import (
    BadRequest,
    InvalidFilter,
    InvalidSelect,
    InvalidToken,
    JobExpired,
    JobNotFound,
    RateLimited,
    TooManyCids,
    UnknownDomain,
)
from svc.protocol import Select, Where
from svc.sources import Source
from svc.store import JobSpec, JobStore, new_spec

R = TypeVar("R", bound=RowBatches)

# What this process keeps per job (plans, totals, per-chunk counts) is bounded by the
# CIDs of the jobs it holds: a plan references its job's whole CID list.
JOB_CACHE_CIDS = 500_000
READ_AHEAD_PER_THREAD = 4  # pages read ahead by all streams, per JSON-building thread


class Service(Tallies):
    """Jobs, their readers and batches, positions and pages; totals and aggregations come
    from `Tallies`."""

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
        # queue, and would let stalled clients hold megabytes each (svc.engine.json_batches;
        # a rows stream takes one, svc.engine.batches).
        self.read_ahead = ReadAhead(READ_AHEAD_PER_THREAD * max(2, settings.sqlite_json_threads))
        self._jobs: WeightedLru[str, JobState] = WeightedLru(JOB_CACHE_CIDS, JobState.weight)
        super().__init__(settings.max_aggregations)
        rate = settings.job_create_rate  # the store's shared buckets, or these (per process)
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

    async def admit_job(self, client: str) -> None:
        """Raise `RateLimited` when `client` (an API key's fingerprint, or an address when
        keys are off) creates jobs faster than TRACE_JOB_CREATE_RATE. Called before the
        body is read. Counted in the job store when it is shared (Redis: every replica and
        worker draws from one bucket), else in this process."""
        if self._create_rate is None:
            return
        settings = self.settings
        wait = await self.store.take_token(
            client, settings.job_create_rate, settings.job_create_burst
        )
        if wait is None:
            wait = self._create_rate.take(client)
        if wait:
            raise RateLimited(retry_after=wait)

    async def create_job(
        self,
        cids: list[str],
        domains: list[str] | None,
        owner: str | None,
        where: Where | None = None,
        select: Select | None = None,
        quota_key: str | None = None,
    ) -> JobSpec:
        names = self.check_domains(domains)
        if len(cids) > self.settings.max_cids:  # entries: duplicates cost memory too
            raise TooManyCids(f"{len(cids)} container ids; at most {self.settings.max_cids}")
        filters = normalize_where(where, self.domains, names)
        columns = normalize_select(select, self.domains, names)
        snapshot = await self.source.current_snapshot()
        # De-duplicating and sorting 115k CIDs is CPU work: not on the event loop, where every
        # other stream of this process runs (docs/benchmarks.md#engine-figures-behind-the-code).
        spec = await asyncio.to_thread(
            new_spec, cids, names, self.settings.job_ttl, owner, snapshot, filters, columns
        )
        limit = self.settings.max_jobs_per_key or None
        await self.store.create(spec, limit=limit, quota_key=quota_key)
        return spec

    async def job(self, job_id: str, owner: str | None, since: str | None = None) -> JobSpec:
        """The job `job_id` as `owner` may see it. Not found, while `since` is a token this
        service signed for that job: it existed and has expired (`JobExpired`)."""
        try:
            spec = await self.store.get(job_id)
        except JobNotFound:
            if since is not None:
                self._expired(job_id, since)
            raise
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
        if spec.select is not None:  # ... or may no longer declare a selected column
            try:
                normalize_select(spec.select, self.domains, spec.domains)
            except InvalidSelect as exc:
                raise InvalidSelect(f"this job's columns no longer fit: {exc.detail}") from None
        return spec

    def _expired(self, job_id: str, since: str) -> None:
        """Raise `JobExpired` if `since` is this service's token of `job_id`."""
        try:
            cursor = self.tokens.verify(since, job_id)
        except BadRequest:
            return  # no proof that the job existed: not found, as any unknown id
        raise JobExpired(
            f"job {job_id} has expired (TRACE_JOB_TTL_SECONDS) or was purged; the since token "
            f"was after record {cursor.seen} of domain {cursor.domain!r}: create the job "
            f"again with the same container ids, domains and filter, then continue that "
            f"domain with offset={cursor.seen} (GET .../result?domain={cursor.domain}"
            f"&offset={cursor.seen}, or export.csv?domain={cursor.domain}&offset={cursor.seen})"
            f" and stream the domains after it"
        )

    def _state(self, spec: JobSpec) -> JobState:
        state = self._jobs.get(spec.job_id)
        if state is None:
            state = self._jobs.put(spec.job_id, JobState(Plan(spec.cids)))
        return state

    def domain(self, spec: JobSpec, name: str) -> Domain:
        """The domain as the job reads it: its selected columns only (`svc.core.select`)."""
        columns = spec.select.get(name) if spec.select else None
        return narrow(self.domains[name], tuple(columns)) if columns else self.domains[name]

    def reader(self, spec: JobSpec, domain: str) -> DomainReader:
        where = spec.where.get(domain) if spec.where else None
        columns = spec.select.get(domain) if spec.select else None
        plan = self._state(spec).plan
        return DomainReader(
            self.source,
            self.domains[domain],
            plan,
            spec.snapshot,
            where,
            columns,
            chunk_records=lambda: self.chunk_records_if_known(spec, domain),  # skip empty ones
        )

    def _builds_json(self) -> bool:
        return self.settings.database_json and self.source.builds_json

    def batches(
        self, spec: JobSpec, start: Start, arrays: bool, fold: AggregationFold | None = None
    ) -> Batches:
        """A stream's batches from `start` (after a key; a stream has no offset): built as
        JSON by the database where it can (`svc.engine.json_batches`), else from rows read
        a page ahead; both within the process's budget of pages read ahead. `fold`
        (`stream_fold`): the JSON pages also bring the domain's aggregations."""
        assert not start.offset, "a stream starts after a key"
        reader, size = self.reader(spec, start.domain), self.settings.batch_size
        if self._builds_json():
            ahead = max(2, self.settings.sqlite_json_threads)
            return JsonBatches(
                reader, start.after, size, arrays, ahead=ahead, budget=self.read_ahead, fold=fold
            )
        return RowBatches(reader, start.after, size, arrays, budget=self.read_ahead)

    async def stream_fold(self, spec: JobSpec, start: Start) -> AggregationFold | None:
        """A fold of the domain's aggregations for a stream's batches from `start`: only
        from a domain's first record, on the JSON path, when they are not known yet
        (`Tallies.fold_for`). The stream calls `fold_ended` when done with the domain."""
        if start.after is not None or start.offset or not self._builds_json():
            return None
        return await self.fold_for(spec, start.domain)

    async def file_rows(self, spec: JobSpec, start: Start) -> FileRowBatches:
        """The batches of the CSV download and the export writer from `start`: the rows as
        read, a page read when asked for."""
        reader = self.reader(spec, start.domain)
        return await self._at_start(
            spec, start, FileRowBatches(reader, start.after, self.settings.batch_size)
        )

    async def _at_start(self, spec: JobSpec, start: Start, rows: R) -> R:
        """`rows`, from `start.offset` if the start has one (which needs each chunk's records)."""
        if start.offset:
            rows.from_offset(start.offset, await self.chunk_records(spec, start.domain))
        return rows

    # --- positions --------------------------------------------------------------------

    def cursor(self, spec: JobSpec, since: str | None) -> Cursor | None:
        """The position a `since` token names in this job, or None without a token."""
        if since is None:
            return None
        cursor = self.tokens.verify(since, spec.job_id)
        if cursor.domain not in spec.domains or cursor.snapshot != spec.snapshot:
            raise InvalidToken()
        return cursor

    def sign(
        self, spec: JobSpec, domain: str, batch: int, last: Key, seen: int, chain: bytes | None
    ) -> str:
        """The token of the position after `last`, the `seen`-th record of `domain`, sent
        in batch number `batch`, with the records digest's `chain` there (None: unknown)."""
        return self.tokens.sign(
            Cursor(spec.job_id, domain, batch, last.cid, last.rid, seen, spec.snapshot, chain)
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
        rows = RowBatches(self.reader(spec, domain), start.after, limit, arrays)
        batch = await (await self._at_start(spec, start, rows)).next()
        # the page's data as its body holds them (encoded again there: pages are not the
        # bulk path), hashed on from the start's chain
        data, chain = p.encode(batch.data), start.chain
        if batch.data and chain is not None:
            chain = digest.chain(chain, data)
        token = None
        if batch.more and batch.last is not None:  # numbered as the walk would number it
            seen = start.seen + len(batch.data)
            token = self.sign(spec, domain, start.batch + 1, batch.last, seen, chain)
        columns = list(self.domain(spec, domain).columns) if arrays else None
        hexdigest = None if chain is None else chain.hex()
        return p.Page(domain, limit, totals.records, batch.data, token, offset, columns, hexdigest)

    async def close(self) -> None:
        await self.stored()  # aggregations folded by streams: stored before the store closes
        await self.source.close()
        await self.store.close()
