"""Reads one domain of a job in keyset order, a batch at a time, through a `Source`.

A batch is filled across chunk boundaries, so every batch but the last holds exactly
`limit` records. Each query asks for one row more than it needs: that row says whether
more follow without another round trip.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache

from svc.domains import Domain
from svc.jobs import DomainStats
from svc.keyset import Dialect, Key, Plan, page_sql, stats_sql
from svc.sources import Row, Source


@dataclass(frozen=True)
class Batch:
    rows: list[Row]  # selected columns, then the tie-break as the last value
    last: Key | None  # key of the last row, or the key the batch started after
    more: bool  # records follow this batch


_page_sql = lru_cache(maxsize=64)(page_sql)
_stats_sql = lru_cache(maxsize=64)(stats_sql)


class DomainReader:
    def __init__(self, source: Source, domain: Domain, plan: Plan, scn: int | None = None) -> None:
        self.source = source
        self.domain = domain
        self.plan = plan
        self.scn = scn
        dialect: Dialect = source.dialect
        self._sql = _page_sql(domain, dialect, slots=plan.slots, snapshot=scn is not None)
        self._stats = _stats_sql(domain, dialect, slots=plan.slots, snapshot=scn is not None)
        self._key = domain.key_index

    def _key_of(self, row: Row) -> Key:
        return Key(row[self._key], row[-1])

    async def read(self, after: Key | None, limit: int) -> Batch:
        """The next `limit` records after `after` (None: from the domain's start)."""
        rows: list[Row] = []
        chunk = self.plan.chunk_of(after)
        while chunk < self.plan.chunk_count:
            need = limit - len(rows)
            binds = self.plan.page_binds(chunk, after, need + 1, self.scn)
            got = await self.source.fetch(self._sql, binds)
            if len(got) > need:
                rows.extend(got[:need])
                return Batch(rows, self._key_of(rows[-1]) if rows else after, True)
            rows.extend(got)
            if got:
                after = self._key_of(got[-1])
            chunk += 1  # this chunk is exhausted
        return Batch(rows, after, False)

    async def stats(self, concurrency: int = 2) -> DomainStats:
        """Records and CIDs with records: one aggregate query per chunk."""
        gate = asyncio.Semaphore(concurrency)

        async def one(chunk: int) -> Row:
            async with gate:
                rows = await self.source.fetch(self._stats, self.plan.stats_binds(chunk, self.scn))
                return rows[0]

        results = await asyncio.gather(*(one(c) for c in range(self.plan.chunk_count)))
        return DomainStats(
            records=sum(int(r[0]) for r in results), containers=sum(int(r[1]) for r in results)
        )
