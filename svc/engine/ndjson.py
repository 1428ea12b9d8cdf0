"""A job's output as NDJSON lines, resumable at any `since` token.

`JobStream.lines` is an async generator that awaits at every batch (`svc.engine.batches`),
each numbered and signed by the domain walk (`svc.engine.walk`); the database work happens
in the source, off the event loop. Its memory is bounded by the
batches, not the job: a batch's records are encoded into its line and dropped before the
line is handed on, and the next batch is asked for only once the line is handed on, which
the server allows once the line before it has drained to the socket. Rows are read one
page ahead; pages the database builds as JSON (SQLite) are read up to two
ahead, each at most twice a batch, within the process's budget of pages read ahead. So a
stream holds one line in flight and at most three pages
(docs/benchmarks.md#engine-figures-behind-the-code), and a fast client gets the next page
read while this line is on the wire; once a line has waited a second to drain, the
response calls `shed()`, and a stalled client's stream holds its lines and no pages.

`open()` reads the first page before the response starts (for up to a second): a failing
source is then a problem+json answer, not an error line, and the first records line
follows the headers at once; a slower first page is sent after the headers, with
heartbeats while it is read. A new job's totals are not waited for there: the first
`domain_start` goes out without them, and again with them when counted.

The job's declared aggregations (`svc.core.aggregates`): a job's first stream on the JSON
path folds them from its own pages (`svc.engine.folding`), so they are ready with its last
records. Otherwise they are computed on the source's count lane: on a source whose queries
run in another server (`Source.remote`: Oracle) from the stream's start, beside its pages;
on SQLite's rows path once the last page is read (there they would compete with the pages
for the same cores: docs/benchmarks.md#aggregations). The `aggregation` line waits for
them, and an `aggregating` line says so when they take longer than a moment. A resumed
stream finds them stored with the job and does not compute them again.

When the client goes away the generator is cancelled: the query in flight is interrupted
and no cursor or connection is left behind. Lines after the first byte carry failures as
an `error` line; a draining server ends with a `reconnect` line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

import msgspec

from svc import metrics
from svc import protocol as p
from svc.core.tokens import Cursor
from svc.engine.batches import Batch, Batches
from svc.engine.folding import AggregationFold
from svc.engine.positions import Start, start_at
from svc.engine.service import Service
from svc.engine.walk import DomainWalk, Drained
from svc.errors import TraceError
from svc.protocol import DomainTotals
from svc.store import JobSpec

log = logging.getLogger(__name__)


# How long a stream waits for a domain's total before it starts without it (the total
# then follows in a second domain_start): counting 115k CIDs takes most of a second.
TOTAL_WAIT_SECONDS = 0.2

# How long a stream's first page may take before the response starts without it: long
# enough for a fast page and for a failing source to answer with a problem, short enough
# for heartbeats to cover a slow first query (a proxy cuts a silent connection).
FIRST_PAGE_WAIT_SECONDS = 1.0

# How long a stream waits for its aggregations before it says it is computing them (an
# `aggregating` line): long enough for stored ones to load, short enough to be told at once.
AGGREGATING_AFTER_SECONDS = 0.1

HEARTBEAT_LINE = p.encode_line(p.Heartbeat())


def _domain_start(
    name: str, columns: tuple[str, ...], totals: DomainTotals | None, batch_size: int
) -> bytes:
    total = None if totals is None else totals.records
    batches = None if total is None else -(-total // batch_size)
    return p.encode_line(p.DomainStart(name, list(columns), total, batches))


def _retrieve(done: asyncio.Future[Batch]) -> None:
    if not done.cancelled():
        done.exception()


def reconnect_line(reason: str, since: str | None) -> bytes:
    return p.encode_line(p.Reconnect(reason, since))


class JobStream:
    """One job's lines from `cursor` on; `since` is the token of the last line yielded."""

    def __init__(
        self,
        service: Service,
        spec: JobSpec,
        cursor: Cursor | None,
        since: str | None,
        arrays: bool,
    ) -> None:
        self.service, self.spec, self.cursor = service, spec, cursor
        self.since, self.arrays = since, arrays
        # after `cursor`, or at the first domain's first record
        self._start = start_at(cursor.domain, cursor) if cursor else Start(spec.domains[0])
        self._first_page: Batch | None = None  # read by open(), before the first byte
        self._first_task: asyncio.Future[Batch] | None = None  # or still being read
        self._batches: Batches | None = None  # the first domain's, made by open()
        self._walk: DomainWalk | None = None  # the walk under way
        self._fold: AggregationFold | None = None  # its aggregations, folded from its pages
        # complete, error or drained; the response sets slow_reader; else client_gone
        self.outcome = "client_gone"

    def heartbeat_line(self) -> bytes:
        """A heartbeat, with a bookmark when the read under way has passed records that
        matched nothing (or empty chunks) since the last records line: its `since` resumes
        after them, and becomes the stream's `since` (for its error or reconnect line)."""
        batches = self._batches
        passed = None if batches is None else batches.passed
        if passed is None:
            return HEARTBEAT_LINE
        walk, start = self._walk, self._start
        if walk is not None:
            domain, number, seen, chain = walk.domain, walk.number, walk.seen, walk.chain
        elif self._first_task is not None or self._first_page is not None:  # first domain
            domain, number, seen, chain = start.domain, start.batch, start.seen, start.chain
        else:
            return HEARTBEAT_LINE
        self.since = self.service.sign(self.spec, domain, number, passed, seen, chain)
        return p.encode_line(p.Heartbeat(self.since))

    def shed(self) -> None:
        """The client has stopped reading: drop what was read ahead of it (`Batches.shed`)."""
        if self._batches is not None:
            self._batches.shed()

    async def open(self, wait: float = FIRST_PAGE_WAIT_SECONDS) -> None:
        """Start reading the first page and give it `wait` seconds: a failure within them
        is raised before the first byte. A slower page is left to `lines()`, so that the
        headers go out and heartbeats keep a proxy from cutting the silent connection."""
        self._fold = await self.service.stream_fold(self.spec, self._start)
        batches = self.service.batches(self.spec, self._start, self.arrays, self._fold)
        self._batches = batches

        async def first() -> Batch:
            async with self.service.first_page():
                return await batches.next()

        task = asyncio.ensure_future(first())
        try:
            await asyncio.wait({task}, timeout=wait)
        except asyncio.CancelledError:  # the client left before the first byte
            task.cancel()
            batches.close()
            raise
        if task.done():
            self._first_page = task.result()
        else:
            self._first_task = task
            task.add_done_callback(_retrieve)  # a stream never iterated: no asyncio warning

    async def _aggregate_early(self) -> None:
        """Start the aggregations beside the pages (a remote source's server runs them),
        once the totals are counted: the count lane takes one query at a time, and
        `domain_start` waits for the totals, not for these."""
        try:
            for name in self.spec.domains:
                await self.service.totals(self.spec, name)
        except Exception:  # the stream meets the failure itself, and reports it
            return
        self.service.start_aggregations(self.spec)

    async def lines(self) -> AsyncGenerator[bytes, None]:
        service, spec, cursor = self.service, self.spec, self.cursor
        started = time.monotonic()
        stats = metrics.StreamStats(spec.job_id, cursor is not None, self.arrays)
        # this stream will want the aggregations: computed while it runs, else cancelled
        unwant = service.want_aggregations(spec)
        early = asyncio.ensure_future(self._aggregate_early()) if service.source.remote else None
        try:
            yield p.encode_line(
                p.Meta(
                    spec.job_id,
                    spec.domains,
                    len(spec.cids),
                    resumed=cursor is not None,
                    where=spec.where,
                )
            )
            first = spec.domains.index(self._start.domain)
            total_records = 0
            chain = self._start.chain  # the records digest's, across domains
            for index, name in enumerate(spec.domains):
                if index < first:
                    total_records += (await service.totals(spec, name)).records
                    continue
                domain = service.domain(spec, name)  # its selected columns
                size = service.settings.batch_size
                opened = self._first_page if index == first else None
                if index == first and self._first_task is not None:
                    opened, self._first_task = await self._first_task, None
                self._first_page = None
                if opened is None:
                    totals = await service.totals_within(spec, name, TOTAL_WAIT_SECONDS)
                else:  # its first records are ready: they do not wait for the count
                    totals = service.totals_if_known(spec, name)
                counting = service.totals_future(spec, name) if totals is None else None
                yield _domain_start(name, domain.columns, totals, size)
                start = self._start if index == first else Start(name, chain=chain)
                batches = self._batches if index == first else None
                if batches is None:
                    self._fold = await service.stream_fold(spec, start)
                    batches = service.batches(spec, start, self.arrays, self._fold)
                self._batches = batches
                walk = DomainWalk(service, spec, start, batches, first=opened, encode=p.encode)
                self._walk = walk
                del opened  # the walk hands it out and keeps it no longer
                try:
                    async for batch in walk:
                        more, count = batch.more, len(batch.data)
                        if not more and index == len(spec.domains) - 1:
                            service.start_aggregations(spec)  # every page is read
                        line, since = None, batch.since
                        if since is not None:  # the batch has records: the hashed bytes
                            assert batch.encoded is not None  # the walk was given `encode`
                            data: Any = msgspec.Raw(batch.encoded)  # as a list, already encoded
                            line = p.encode_line(p.Records(name, batch.number, data, since))
                            del data
                            stats.sent(name, count, len(line))
                        del batch  # a slow reader holds this line's bytes, never its records
                        if line is not None:
                            self.since = since
                            yield line
                            del line
                        if counting is not None and (counting.done() or not more):
                            yield _domain_start(name, domain.columns, await counting, size)
                            counting = None
                except Drained:  # the batch in flight is sent; hand over
                    self.outcome = "drained"
                    yield reconnect_line("draining", self.since)
                    return
                batches.close()
                service.fold_ended(spec, self._fold)
                self._batches, self._walk, self._fold = None, None, None
                yield p.encode_line(p.DomainEnd(name, walk.seen))
                total_records += walk.seen
                chain = walk.chain
            pending = await service.aggregations_pending(spec, AGGREGATING_AFTER_SECONDS)
            if pending:  # say why the stream waits ("computing aggregations...")
                yield p.encode_line(p.Aggregating(pending))
            yield p.encode_line(p.Aggregation(await service.aggregation(spec)))
            self.outcome = "complete"
            elapsed = round(time.monotonic() - started, 3)
            hexdigest = None if chain is None else chain.hex()
            yield p.encode_line(p.Complete(elapsed, total_records, hexdigest))
        except TraceError as exc:
            log.warning("stream of job %s failed: %s", spec.job_id, exc.code)
            self.outcome = "error"
            stats.error_line(exc.code)
            yield p.encode_line(p.Error(exc.code, exc.detail, exc.retryable, self.since))
        except Exception:
            log.exception("stream of job %s failed", spec.job_id)
            self.outcome = "error"
            stats.error_line("internal")
            yield p.encode_line(
                p.Error("internal", "Internal error; resume with since", True, self.since)
            )
        finally:
            if early is not None:
                early.cancel()
            unwant()
            if self._first_task is not None:  # closed before its first page arrived
                self._first_task.cancel()
            if self._batches is not None:  # reads ahead under way: stop them
                self._batches.close()
            service.fold_ended(spec, self._fold)  # a stream that ends early abandons it
            stats.outcome = self.outcome
            stats.finish()
