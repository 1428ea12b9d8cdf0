"""A job's totals and declared aggregations, as `Service` computes, keeps and hands them out.

A job's totals (per-domain record and CID counts) are computed once per job, by whichever
request needs them first, and kept with the job's state and in the job store; so are its
declared aggregations (`svc.core.aggregates`), once a stream or the aggregation route asks.
Both are computed once per process however many ask at once (`svc.engine.once`), on the
source's count lane; counting gives way to a stream's first page (`first_page`).

Aggregation work is bounded: at most `TRACE_MAX_AGGREGATIONS` domains are computed at once
(the others wait in line), and a computation is wanted only while a stream of its job runs
or a request for it waits (`want_aggregations`): when the last of them leaves, it is
cancelled, whether running (its query is interrupted) or still in line. Totals are not:
they are few cheap queries, stored for every later stream and page.

A job's first stream usually computes no aggregation at all: it folds them from the pages
it reads (`fold_for`, `svc.engine.folding`), and they are kept and stored as computed ones
are when its last page of the domain is read. Asked for while such a fold goes on (by the
route, or a second stream of the job), they wait for it rather than being computed beside
it, unless it is abandoned or stalls (`_folded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from svc import protocol as p
from svc.core.aggregates.merging import decode_aggregations, encode_aggregations
from svc.core.domains import Domain
from svc.core.sql.plan import Plan
from svc.engine.folding import AggregationFold
from svc.engine.once import Once
from svc.engine.reader import DomainReader
from svc.errors import StoreUnavailable
from svc.protocol import DomainTotals
from svc.store import JobSpec, JobStore

log = logging.getLogger(__name__)

# A fold whose stream took no page for this long (its client stopped reading) is not waited
# for: whoever wants the aggregations computes them (a page takes well under a second).
FOLD_STALLED_SECONDS = 5.0
# How long after a fold of a job ends its stream's next domain is waited for, to be folded
# rather than computed (the stream starts it within milliseconds).
FOLD_NEXT_SECONDS = 1.0


@dataclass
class JobState:
    """What this process knows of one job besides its spec (`Service` keeps it per job)."""

    plan: Plan
    totals: dict[str, DomainTotals] = field(default_factory=dict)
    chunk_records: dict[str, list[int]] = field(default_factory=dict)  # for offset pages
    aggregations: dict[str, dict[str, p.Aggregate]] = field(default_factory=dict)
    # the index in the job's domains of the last domain a stream finished folding, and when
    # (monotonic): the stream may be about to fold a later one
    last_fold: tuple[int, float] = (-1, float("-inf"))

    def weight(self) -> int:
        return len(self.plan.cids)


class Tallies:
    """Totals and aggregations of jobs; `Service` is one, and gives the readers and the
    per-job state."""

    store: JobStore
    domains: dict[str, Domain]

    def __init__(self, max_aggregations: int = 2) -> None:
        self._counting: Once[DomainTotals] = Once("counting")
        self._first_pages = 0  # streams reading their first page (see first_page)
        self._no_first_pages = asyncio.Event()
        self._no_first_pages.set()
        self._aggregating: Once[dict[str, p.Aggregate]] = Once("aggregating")
        self._aggregation_slots = asyncio.Semaphore(max_aggregations)
        self._wanted: dict[tuple[str, str], int] = {}  # (job, domain): streams and requests
        self._folding: dict[tuple[str, str], AggregationFold] = {}  # one stream's fold each
        self._awaiting_fold: set[tuple[str, str]] = set()  # computations waiting for a fold
        self._storing: set[asyncio.Task[None]] = set()  # folded outcomes being stored

    def reader(self, spec: JobSpec, domain: str) -> DomainReader:
        raise NotImplementedError

    def _state(self, spec: JobSpec) -> JobState:
        raise NotImplementedError

    # --- totals -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def first_page(self) -> AsyncIterator[None]:
        """Counting gives way while a stream reads its first page: that page is what a
        user waits for, and on two cores a count beside it slowed it
        (docs/benchmarks.md#engine-figures-behind-the-code). Counting starts its next chunk only
        when no first page is being read."""
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

    def chunk_records_if_known(self, spec: JobSpec, domain: str) -> list[int] | None:
        """Records in each chunk if counted in this process, or all zero when the domain's
        stored total is zero; else None. What lets readers skip empty chunks."""
        state = self._state(spec)
        known = state.chunk_records.get(domain)
        totals = state.totals.get(domain)
        if known is None and totals is not None and not totals.records:
            known = state.chunk_records[domain] = [0] * state.plan.chunk_count
        return known

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
        release = self.want_aggregations(spec)
        try:
            for name in spec.domains:
                if self.domains[name].aggregations:
                    future = self.aggregations_future(spec, name)
                    aggregations[name] = await asyncio.shield(future)
        finally:
            release()
        return p.JobAggregation(totals, aggregations)

    def want_aggregations(self, spec: JobSpec) -> Callable[[], None]:
        """Mark the job's aggregations as waited for (by a stream, until it ends, or by a
        request); call what this returns when done: a computation nobody wants any more is
        cancelled (docs/limits.md#aggregations)."""
        keys = [(spec.job_id, n) for n in spec.domains if self.domains[n].aggregations]
        for key in keys:
            self._wanted[key] = self._wanted.get(key, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            for key in keys:
                left = self._wanted.pop(key) - 1
                if left:
                    self._wanted[key] = left
                else:
                    self._aggregating.cancel(key)

        return release

    async def aggregations_pending(self, spec: JobSpec, wait: float) -> list[str]:
        """The domains whose aggregations are not ready after `wait` seconds (started now
        if need be): what a stream's `aggregating` line names."""
        futures = {
            name: self.aggregations_future(spec, name)
            for name in spec.domains
            if self.domains[name].aggregations
        }
        pending = [f for f in futures.values() if not f.done()]
        if pending and wait > 0:
            await asyncio.wait(pending, timeout=wait)
        return [name for name, f in futures.items() if not f.done()]

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

    async def fold_for(self, spec: JobSpec, domain: str) -> AggregationFold | None:
        """A fold of the domain's aggregations for a stream about to read all its pages,
        unless they are known (here or in the job store), computed already, or folded by
        another stream."""
        key = (spec.job_id, domain)
        declared = self.domains[domain]
        if not declared.aggregations or self._state(spec).aggregations.get(domain) is not None:
            return None
        if self._computing(key) or key in self._folding:
            return None
        stored = await self._stored_aggregations(spec, domain)
        if stored is not None:
            self._state(spec).aggregations[domain] = stored
            return None
        if self._computing(key) or key in self._folding:  # while we asked
            return None

        def done(outcome: dict[str, p.Aggregate]) -> None:
            if self._folding.get(key) is fold:
                del self._folding[key]
            self._state(spec).last_fold = (spec.domains.index(domain), time.monotonic())
            self._kept(spec, domain, outcome)

        fold = self._folding[key] = AggregationFold(declared, done)
        return fold

    def _computing(self, key: tuple[str, str]) -> bool:
        """Being computed (or loaded), not only waiting for a fold (`_folded`)."""
        return self._aggregating.running(key) and key not in self._awaiting_fold

    async def stored(self) -> None:
        """Wait for the folded outcomes being stored (before the store closes)."""
        if self._storing:
            await asyncio.wait(set(self._storing))

    def fold_ended(self, spec: JobSpec, fold: AggregationFold | None) -> None:
        """The stream that folds is done with the domain: an unfinished fold is abandoned,
        and another stream may fold."""
        if fold is None:
            return
        fold.abandon()
        key = (spec.job_id, fold.declared.name)
        if self._folding.get(key) is fold:
            del self._folding[key]

    def _kept(self, spec: JobSpec, domain: str, outcome: dict[str, p.Aggregate]) -> None:
        """A folded outcome: kept with the job's state and stored, as a computed one."""
        state = self._state(spec)
        if state.aggregations.get(domain) is not None:
            return
        state.aggregations[domain] = outcome

        async def store() -> None:
            try:
                await self._store_aggregations(spec, domain, outcome)
            except Exception:  # a cache: this process keeps them; the log says why
                log.exception("storing aggregations of job %s/%s failed", spec.job_id, domain)

        task = asyncio.ensure_future(store())
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)

    async def _stored_aggregations(
        self, spec: JobSpec, domain: str
    ) -> dict[str, p.Aggregate] | None:
        """The domain's aggregations from the job store, or None (not there, or the store
        is down: a cache, so they are computed rather than the stream failing)."""
        try:
            blob = await self.store.get_aggregations(spec.job_id, domain)
        except StoreUnavailable:
            log.warning("could not read aggregations of job %s/%s", spec.job_id, domain)
            return None
        return None if blob is None else decode_aggregations(blob)

    async def _store_aggregations(
        self, spec: JobSpec, domain: str, known: dict[str, p.Aggregate]
    ) -> None:
        try:
            await self.store.put_aggregations(spec.job_id, domain, encode_aggregations(known))
        except StoreUnavailable:
            log.warning("could not store aggregations of job %s/%s", spec.job_id, domain)

    async def _folded(self, spec: JobSpec, domain: str) -> dict[str, p.Aggregate] | None:
        """The outcome of a stream's fold of the domain, once it is whole; None if no
        stream folds it, or the fold was abandoned, or its pages stopped coming for
        FOLD_STALLED_SECONDS (its client stopped reading): then the caller computes. Just
        after a stream finished folding an earlier domain of the job, it may be about to
        fold this one: that is waited for, FOLD_NEXT_SECONDS at most."""
        key, state = (spec.job_id, domain), self._state(spec)
        self._awaiting_fold.add(key)  # not a computation yet: a stream may still fold it
        try:
            return await self._fold_outcome(key, state, spec.domains.index(domain))
        finally:
            self._awaiting_fold.discard(key)

    async def _fold_outcome(
        self, key: tuple[str, str], state: JobState, index: int
    ) -> dict[str, p.Aggregate] | None:
        while True:
            fold = self._folding.get(key)
            if fold is not None and not fold.live:  # finished (kept), or abandoned (None)
                return state.aggregations.get(key[1])
            if fold is not None:
                stalled = time.monotonic() - fold.merged_at
                if stalled >= FOLD_STALLED_SECONDS:
                    return None
                ended = asyncio.ensure_future(fold.ended.wait())
                try:
                    await asyncio.wait({ended}, timeout=FOLD_STALLED_SECONDS - stalled)
                finally:
                    ended.cancel()
                continue
            known = state.aggregations.get(key[1])
            folded, at = state.last_fold
            if known is not None or folded >= index or time.monotonic() >= at + FOLD_NEXT_SECONDS:
                return known
            await asyncio.sleep(FOLD_NEXT_SECONDS / 20)

    async def _load_aggregations(self, spec: JobSpec, domain: str) -> dict[str, p.Aggregate]:
        known = await self._folded(spec, domain)
        if known is None:
            known = await self._stored_aggregations(spec, domain)
        if known is None:
            async with self._aggregation_slots:  # at most TRACE_MAX_AGGREGATIONS at once
                known = await self.reader(spec, domain).aggregate()
            self._state(spec).aggregations[domain] = known  # kept even if cancelled now
            # a computed result is stored even when its last waiter has just left
            await asyncio.shield(self._store_aggregations(spec, domain, known))
        self._state(spec).aggregations[domain] = known
        return known
