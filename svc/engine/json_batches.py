"""Batches whose records' JSON the database builds (SQLite), read ahead on two threads.

Reading rows costs the service a Python object per value, built under the interpreter
lock, so one stream could use one core at most, and a second reading thread only queued
on that lock. Here the database runs `svc.core.sql.pages.json_page_sql`: one query returns a whole
page as one JSON array text, built in C while the lock is released. Two such queries run
at once on two cores, and the service only cuts and frames their text.

Pages are taken by ranges of the job's sorted CIDs, not by keyset from the last record:
the next range's first CID is known before the current page arrives, so the next page
is asked for while this one is read (`ahead` in flight). A range holds about a batch of
records (its width follows the records per CID seen so far) and at most `2 * limit`: a
range that reaches that limit is continued by keyset from its last record, before any
later range. The ranges' records are cut into batches of exactly `limit` (msgspec splits
the array text into raw records without decoding them), and each batch ends with its last
record's key, from the tie-breaks the same query returns, so tokens are those of the rows
path and either resumes the other.

What is read ahead is bounded twice, as a few clients could otherwise hold it all: the
process's streams share a budget of pages read ahead (`ReadAhead`; beyond it a stream reads
the page it needs when it needs it, which keeps the threads busy as well when many streams
run), and a stream whose client stops reading drops what it read ahead (`shed`, called by
the response when a line has waited a second to drain) and reads it again from its last
key once the client reads again.

Chunks counted empty when the job's totals were counted are not asked for (as in
`DomainReader.read`).

A page with a BLOB value or a -0.0 (which SQLite's JSON cannot write as the rows path
does) sends the rest of the domain to the rows path (`RowBatches`), from the last key
handed out.

Given an `AggregationFold` at a domain's beginning, the pages also bring the domain's
aggregations over their rows (`svc.engine.folding`): a page's share is merged when its
first record is handed out, and the whole handed on after the last page; shedding half a
page, or leaving for the rows path, abandons the fold.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections import deque
from functools import lru_cache

import msgspec

from svc.core.aggregates.queries import folded_page_sql
from svc.core.sql.pages import json_page_sql
from svc.core.sql.plan import Key
from svc.engine.batches import Batch, RowBatches
from svc.engine.folding import AggregationFold, PagePart
from svc.engine.reader import DomainReader
from svc.sources import JsonUnsupported, Row

FIRST_RANGE_CIDS = 128  # before any records per CID are known: a quick first page

_json_page_sql = lru_cache(maxsize=64)(json_page_sql)
_folded_page_sql = lru_cache(maxsize=64)(folded_page_sql)
_records = msgspec.json.Decoder(list[msgspec.Raw])
_tiebreaks = msgspec.json.Decoder(list[int | str])


class ReadAhead:
    """How many pages the process's streams may have asked for ahead of their clients, in
    all (each up to two batches). A stream's page that it waits for takes none."""

    def __init__(self, pages: int) -> None:
        self.pages = self.free = pages

    def take(self) -> bool:
        if self.free <= 0:
            return False
        self.free -= 1
        return True

    def give(self) -> None:
        self.free += 1


def _retrieve(done: asyncio.Future[list[Row]]) -> None:
    if not done.cancelled():
        done.exception()


class _Page:
    """One range's records, handed out in order."""

    def __init__(
        self, records: list[msgspec.Raw], rids: list[int | str], part: PagePart | None = None
    ) -> None:
        self.records, self.rids, self.at = records, rids, 0
        self.part = part  # its share of a fold, merged when its first record is handed out

    @property
    def left(self) -> int:
        return len(self.records) - self.at


class JsonBatches:
    def __init__(
        self,
        reader: DomainReader,
        after: Key | None,
        limit: int,
        arrays: bool,
        ahead: int = 2,
        budget: ReadAhead | None = None,
        fold: AggregationFold | None = None,
    ) -> None:
        if not reader.source.builds_json:
            raise ValueError("this source does not build pages as JSON")
        self.reader, self.limit, self.arrays, self.ahead = reader, limit, arrays, ahead
        self.budget = budget if budget is not None else ReadAhead(ahead)
        domain, plan = reader.domain, reader.plan
        dialect = reader.source.dialect
        self._plain_sql = _json_page_sql(
            domain, dialect, arrays=arrays, slots=plan.slots, where=reader.where
        )
        self._sql = self._plain_sql
        # folding needs every page from the domain's first
        self._fold = fold if after is None and fold is not None and fold.live else None
        if self._fold is not None:
            self._sql = _folded_page_sql(
                domain,
                self._fold.declared,
                dialect,
                arrays=arrays,
                slots=plan.slots,
                where=reader.where,
            )
        self._cids = plan.cids
        self._next = bisect_left(self._cids, after.cid) if after else 0  # first CID not asked
        self._first_after = after  # the key the first range starts after
        self._width = min(FIRST_RANGE_CIDS, plan.slots)
        self._page_limit = 2 * limit
        # (start, end, query, whether it holds a page of the budget)
        self._inflight: deque[tuple[int, int, asyncio.Future[list[Row]], bool]] = deque()
        self._held: _Page | None = None
        self._busy = False  # in next(): shed() leaves the pages alone
        self._last = after  # key of the last record handed out
        self._rows: RowBatches | None = None  # the rows path, after a page JSON cannot hold
        self._passed: Key | None = None  # see `passed`
        self._range_end = 0  # the end of the last range taken from the queue
        self._key_at = domain.key_index if arrays else domain.columns[domain.key_index]

    # --- pages -------------------------------------------------------------------------

    def _ask(
        self, start: int, end: int, after: Key | None, front: bool = False, budgeted: bool = False
    ) -> None:
        binds = self.reader.plan.range_binds(start, end, after, self._page_limit)
        binds.update(self.reader.filter_binds)
        task = asyncio.ensure_future(self._fetch(binds))
        task.add_done_callback(_retrieve)  # one cancelled by close() may have failed first
        if front:
            self._inflight.appendleft((start, end, task, budgeted))
        else:
            self._inflight.append((start, end, task, budgeted))

    async def _fetch(self, binds: dict[str, object]) -> list[Row]:
        started = time.perf_counter()
        try:
            return await self.reader.source.fetch(self._sql, binds, lane="json")
        finally:
            self.reader.page_seconds.observe(time.perf_counter() - started)

    def _skip_empty_chunks(self) -> None:
        """Move `_next` past the chunks counted empty (`DomainReader.chunk_records`)."""
        counts, slots = self.reader.chunk_records(), self.reader.plan.slots
        if counts is None:
            return
        chunk = self._next // slots
        while chunk < len(counts) and not counts[chunk]:
            chunk += 1
            self._next = max(self._next, min(chunk * slots, len(self._cids)))

    def _ask_ahead(self) -> None:
        self._skip_empty_chunks()
        while len(self._inflight) < self.ahead and self._next < len(self._cids):
            waited_for = not self._inflight and (self._held is None or not self._held.left)
            budgeted = not waited_for
            if budgeted and not self.budget.take():
                return  # asked for when it is needed
            start = self._next
            end = min(start + self._width, len(self._cids))
            after, self._first_after = self._first_after, None
            self._ask(start, end, after, budgeted=budgeted)
            self._next = end
            self._skip_empty_chunks()

    async def _page(self) -> _Page | None:
        """The next range's records (None: no range is left)."""
        self._ask_ahead()
        if not self._inflight:
            if self._fold is not None:  # every page was taken: the aggregations are whole
                self._fold.finish()
            return None
        start, end, task, _ = self._inflight[0]
        rows = await task
        part = None
        if self._fold is not None:
            (text, rids_text, count), part = self._fold.split(rows)
            if not count:  # nothing to hand out: nothing to read again either
                self._fold.merge(part)
                part = None
        else:
            ((text, rids_text, count),) = rows
        self._range_end = end
        if self._inflight.popleft()[3]:
            self.budget.give()
        self._held = page = _Page(_records.decode(text), _tiebreaks.decode(rids_text), part)
        if count >= self._page_limit:  # the range may go on past its limit: by keyset
            last = self._key(page, count - 1)
            self._ask(bisect_left(self._cids, last.cid, start, end), end, last, front=True)
        elif count:  # the next ranges hold about a batch, as this one's CIDs did
            per_cid = count / (end - start)
            self._width = max(1, min(self.reader.plan.slots, int(self.limit / per_cid)))
        else:
            self._width = min(self.reader.plan.slots, self._width * 2)
        self._ask_ahead()
        return page

    def _key(self, page: _Page, at: int) -> Key:
        record = msgspec.json.decode(page.records[at])
        return Key(record[self._key_at], page.rids[at])

    # --- batches -----------------------------------------------------------------------

    @property
    def passed(self) -> Key | None:
        return self._rows.passed if self._rows is not None else self._passed

    async def next(self) -> Batch:
        if self._rows is not None:
            return await self._rows.next()
        self._busy = True
        try:
            return await self._next_batch()
        finally:
            self._busy, self._passed = False, None

    async def _next_batch(self) -> Batch:
        start = self._last
        out: list[msgspec.Raw] = []
        try:
            while True:
                held = self._held
                if held is None or not held.left:  # also when full: do records follow?
                    self._held = held = await self._page()
                    if held is None:
                        break
                    if not out and not held.left and self._range_end < len(self._cids):
                        # a range that matched nothing, nothing taken yet: a bookmark after it
                        self._passed = Key(self._cids[self._range_end], None)
                    continue
                if len(out) == self.limit:
                    break
                take = min(self.limit - len(out), held.left)
                if held.part is not None and self._fold is not None:
                    self._fold.merge(held.part)
                held.part = None
                out.extend(held.records[held.at : held.at + take])
                held.at += take
                self._last = self._key(held, held.at - 1)
        except JsonUnsupported:
            self._stop_folding()
            self.close()
            self._rows = RowBatches(self.reader, start, self.limit, self.arrays)
            self._last = start
            return await self._rows.next()
        return Batch(out, self._last, self._held is not None)

    def shed(self) -> None:
        """Drop the pages read ahead of the client and the rest of the page being handed
        out (its client has stopped reading): the next batch reads again from the last
        key handed out, as a stream resumed there would."""
        if self._rows is not None or self._busy:
            return
        held = self._held
        if held is not None and 0 < held.at < len(held.records):
            self._stop_folding()  # its rest would be read, and merged, again
        self._drop()
        self._next = bisect_left(self._cids, self._last.cid) if self._last else 0
        self._first_after = self._last

    def _stop_folding(self) -> None:
        if self._fold is not None:
            self._fold.abandon()
            self._fold = None
            self._sql = self._plain_sql

    def close(self) -> None:
        if self._fold is not None:  # no page will be taken: an unfinished fold is wrong
            self._fold.abandon()
        self._drop()

    def _drop(self) -> None:
        """Cancel the pages asked for and drop the one being handed out."""
        while self._inflight:
            _, _, task, budgeted = self._inflight.popleft()
            task.cancel()
            if budgeted:
                self.budget.give()
        self._held = None
