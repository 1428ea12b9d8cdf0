"""Reads one domain of a job in keyset order, a page of rows (`RowPage`) at a time, through a
`Source`.

A page is filled across chunk boundaries, so every page but the last holds exactly
`limit` records. Each query asks for one row more than it needs: that row says whether
more follow without another round trip.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from svc import protocol as p
from svc.core.aggregates.merging import DomainMerger
from svc.core.aggregates.queries import aggregate_shape, aggregate_sql, distinct_sql
from svc.core.domains import Domain
from svc.core.select import narrow
from svc.core.sql.dialects import Dialect
from svc.core.sql.pages import page_sql, totals_sql
from svc.core.sql.plan import Key, Plan
from svc.core.sql.where import Conditions, filter_binds, where_shape
from svc.metrics import AGGREGATE_QUERY_SECONDS, PAGE_QUERY_SECONDS
from svc.protocol import DomainTotals
from svc.sources import Row, Source


@dataclass(frozen=True)
class RowPage:
    """Rows read by one call of the reader: at most `limit`, in keyset order."""

    rows: list[Row]  # selected columns, then the tie-break as the last value
    last: Key | None  # key of the last row, or the key the page started after
    more: bool  # records follow this page


_page_sql = lru_cache(maxsize=64)(page_sql)
_totals_sql = lru_cache(maxsize=64)(totals_sql)
_aggregate_sql = lru_cache(maxsize=64)(aggregate_sql)
_distinct_sql = lru_cache(maxsize=64)(distinct_sql)


def _unknown() -> list[int] | None:
    return None


class DomainReader:
    """`where`: the job's filter of this domain (canonical, `svc.core.filters`); every page,
    offset page and count applies it. `columns`: the job's selection of this domain
    (canonical, `svc.core.select`); pages read those columns only (`domain` is then the
    narrowed domain), aggregations the declared domain's (`declared`). `chunk_records`: the
    records of each chunk when the job's totals have been counted (else None); a chunk
    counted empty is not read at all, so a job that matches little costs what it returns,
    not what it names."""

    def __init__(
        self,
        source: Source,
        domain: Domain,
        plan: Plan,
        scn: int | None = None,
        where: Conditions | None = None,
        columns: Sequence[str] | None = None,
        *,
        chunk_records: Callable[[], list[int] | None] = _unknown,
    ) -> None:
        self.source = source
        self.chunk_records = chunk_records
        self.declared = domain
        self.domain = domain = narrow(domain, tuple(columns)) if columns else domain
        self.plan = plan
        self.scn = scn
        dialect: Dialect = source.dialect
        snapshot, shape = scn is not None, where_shape(where)
        self._sql = _page_sql(domain, dialect, slots=plan.slots, snapshot=snapshot, where=shape)
        self._offset_sql = _page_sql(
            domain, dialect, slots=plan.slots, snapshot=snapshot, offset=True, where=shape
        )
        self._totals_query = _totals_sql(
            domain, dialect, slots=plan.slots, snapshot=snapshot, where=shape
        )
        self.where = shape
        self.filter_binds = filter_binds(domain, dialect, where)
        self._key = domain.key_index
        # during a read that has found no record yet: the position after the chunks it
        # passed (a bookmark, `Key.rid` None); None otherwise
        self.passed: Key | None = None
        self.page_seconds = PAGE_QUERY_SECONDS.labels(dialect.name, domain.name)

    async def _fetch_page(self, sql: str, binds: dict[str, Any]) -> list[Row]:
        started = time.perf_counter()
        try:
            return await self.source.fetch(sql, binds)
        finally:
            self.page_seconds.observe(time.perf_counter() - started)

    def _key_of(self, row: Row) -> Key:
        return Key(row[self._key], row[-1])

    async def read(self, after: Key | None, limit: int, chunk: int | None = None) -> RowPage:
        """The next `limit` records after `after` (None: from the start of `chunk`, or of
        the domain)."""
        rows: list[Row] = []
        if chunk is None:
            chunk = self.plan.chunk_of(after)
        counts = self.chunk_records()
        self.passed = None
        try:
            while chunk < self.plan.chunk_count:
                if counts is not None and not counts[chunk]:
                    chunk += 1  # counted empty: nothing to read
                else:
                    need = limit - len(rows)
                    binds = self.plan.page_binds(chunk, after, need + 1, self.scn)
                    binds.update(self.filter_binds)
                    got = await self._fetch_page(self._sql, binds)
                    if len(got) > need:
                        rows.extend(got[:need])
                        return RowPage(rows, self._key_of(rows[-1]) if rows else after, True)
                    rows.extend(got)
                    if got:
                        after = self._key_of(got[-1])
                    chunk += 1  # this chunk is exhausted
                if not rows and chunk < self.plan.chunk_count:
                    self.passed = Key(self.plan.cids[chunk * self.plan.slots], None)
            return RowPage(rows, after, False)
        finally:
            self.passed = None

    async def read_at(self, offset: int, limit: int, chunk_records: list[int]) -> RowPage:
        """`limit` records from the `offset`-th on (0-based), given each chunk's record count.

        One query skips into the chunk that holds the offset; the rest is read by keyset,
        so the cost is one chunk's skip, not the offset's.
        """
        chunk, skip = 0, offset
        while chunk < len(chunk_records) and skip >= chunk_records[chunk]:
            skip -= chunk_records[chunk]
            chunk += 1
        if chunk >= len(chunk_records):
            return RowPage([], None, False)
        binds = self.plan.page_binds(chunk, None, limit + 1, self.scn)
        binds.update(self.filter_binds)
        binds["skip"] = skip
        got = await self._fetch_page(self._offset_sql, binds)
        if len(got) > limit:
            rows = got[:limit]
            return RowPage(rows, self._key_of(rows[-1]) if rows else None, True)
        if not got:  # rows went away since the counts were taken: go on with the next chunk
            return await self.read(None, limit, chunk=chunk + 1)
        rest = await self.read(self._key_of(got[-1]), limit - len(got))
        return RowPage(got + rest.rows, rest.last, rest.more)

    async def chunk_totals(
        self, concurrency: int = 1, turn: Callable[[], Awaitable[object]] | None = None
    ) -> list[DomainTotals]:
        """Records and CIDs with records of each chunk: one aggregate query per chunk.

        One at a time by default: counting runs beside streams, and a second counting
        thread slowed a concurrent stream's first page far more than it sped the count (GIL
        and both cores taken; docs/benchmarks.md#engine-figures-behind-the-code).
        `turn`, if given, is awaited before each chunk's query.
        """
        gate = asyncio.Semaphore(concurrency)

        async def one(chunk: int) -> DomainTotals:
            async with gate:
                if turn is not None:
                    await turn()
                binds = self.plan.totals_binds(chunk, self.scn)
                binds.update(self.filter_binds)
                rows = await self.source.fetch(self._totals_query, binds, lane="count")
                return DomainTotals(records=int(rows[0][0]), containers=int(rows[0][1]))

        return list(await asyncio.gather(*(one(c) for c in range(self.plan.chunk_count))))

    async def aggregate(self) -> dict[str, p.Aggregate]:
        """The domain's declared aggregations over the job, on the count lane (one query at
        a time, as counting): per chunk, one grouped query for every count, sum and
        min_max, and one per distinct count, merged as they come (`svc.core.aggregates`).

        Chunk by chunk: a chunk's queries follow each other while its rows are still in
        the database's cache. Nothing but the merged groups is held.
        """
        domain, dialect, snapshot = self.declared, self.source.dialect, self.scn is not None
        queries: list[tuple[str | None, str]] = []  # (distinct aggregation or None, SQL)
        shape, slots = self.where, self.plan.slots
        if aggregate_shape(domain) is not None:
            sql = _aggregate_sql(domain, dialect, slots=slots, snapshot=snapshot, where=shape)
            queries.append((None, sql))
        for agg in domain.aggregations:
            if agg.kind == "distinct" and agg.column is not None:
                sql = _distinct_sql(
                    domain, agg.column, dialect, slots=slots, snapshot=snapshot, where=shape
                )
                queries.append((agg.name, sql))
        merging = DomainMerger(domain)
        seconds = AGGREGATE_QUERY_SECONDS.labels(dialect.name, domain.name)
        for chunk in range(self.plan.chunk_count):
            binds = self.plan.totals_binds(chunk, self.scn)
            binds.update(self.filter_binds)
            for distinct, sql in queries:
                started = time.perf_counter()
                rows = await self.source.fetch(sql, binds, lane="count")
                seconds.observe(time.perf_counter() - started)
                if distinct is None:
                    merging.add_grouped(rows)
                else:
                    merging.add_distinct(distinct, rows)
        return merging.result()
