"""Rows read one page ahead (`RowBatches` with a budget, what a stream on the rows path
uses): the same batches, keys and ends as pages read when asked for, whatever the limit
and wherever the client stops reading (`shed`); what is read ahead comes from the budget
and goes back to it; a stream closed mid-way leaves no query behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from svc.core.sql.plan import Key, Plan
from svc.engine.batches import Batches, RowBatches
from svc.engine.json_batches import ReadAhead
from svc.engine.reader import DomainReader
from svc.sources.sqlite import SqliteSource
from tests.support import DOMAINS, all_cids

Walked = list[tuple[bytes, Key | None, bool]]


async def _walk(batches: Batches, shed: frozenset[int] = frozenset()) -> Walked:
    """Every batch as its line's `data` JSON, its key and `more`; after the batches
    numbered in `shed`, what was read ahead is dropped (a stalled client)."""
    out: Walked = []
    try:
        while True:
            batch = await batches.next()
            out.append((msgspec.json.encode(batch.data), batch.last, batch.more))
            if not batch.more:
                return out
            if len(out) in shed:
                batches.shed()
    finally:
        batches.close()


@pytest.mark.parametrize("arrays", [False, True], ids=["objects", "arrays"])
@pytest.mark.parametrize("limit", [97, 700, 3000])
def test_pages_read_ahead_are_the_pages_read_when_asked(
    demo_db: Path, arrays: bool, limit: int
) -> None:
    async def run() -> None:
        source = SqliteSource(str(demo_db))
        try:
            for domain in ("history", "materials"):
                reader = DomainReader(source, DOMAINS[domain], Plan(all_cids(demo_db)))
                asked = await _walk(RowBatches(reader, None, limit, arrays))
                assert len(asked) > 2 and asked[-1][2] is False
                budget = ReadAhead(2)
                ahead = await _walk(RowBatches(reader, None, limit, arrays, budget=budget))
                assert ahead == asked
                shed = await _walk(
                    RowBatches(reader, None, limit, arrays, budget=budget), frozenset({1, 2, 4})
                )
                assert shed == asked
                assert budget.free == 2
                after = asked[1][1]  # resumed after the second batch, as a token would
                rest = await _walk(RowBatches(reader, after, limit, arrays, budget=budget))
                assert rest == asked[2:]
                assert budget.free == 2
                assert source.in_use == 0
        finally:
            await source.close()

    asyncio.run(run())


def test_a_page_is_asked_for_ahead_only_from_the_budget(demo_db: Path) -> None:
    async def run() -> None:
        source = SqliteSource(str(demo_db))
        try:
            reader = DomainReader(source, DOMAINS["history"], Plan(all_cids(demo_db)))
            budget = ReadAhead(1)
            first = RowBatches(reader, None, 50, False, budget=budget)
            second = RowBatches(reader, None, 50, False, budget=budget)
            await first.next()
            assert first._ahead is not None and budget.free == 0
            await second.next()
            assert second._ahead is None  # the budget is spent: read when asked for
            await first.next()  # the page read ahead is handed out, the next one asked for
            assert first._ahead is not None and budget.free == 0
            first.close()
            assert first._ahead is None and budget.free == 1
            await second.next()
            assert second._ahead is not None and budget.free == 0
            second.close()
            assert budget.free == 1
            await asyncio.sleep(0.2)  # the cancelled queries return their connections
            assert source.in_use == 0
        finally:
            await source.close()

    asyncio.run(run())


def test_shed_while_a_batch_waits_for_the_page_read_ahead_leaves_that_batch_alone(
    demo_db: Path,
) -> None:
    """The page a `next` waits for is out of `shed`'s reach: that batch arrives whole."""

    async def run() -> None:
        source = SqliteSource(str(demo_db))
        try:
            reader = DomainReader(source, DOMAINS["history"], Plan(all_cids(demo_db)))
            asked = await _walk(RowBatches(reader, None, 400, False))
            budget = ReadAhead(2)
            batches = RowBatches(reader, None, 400, False, budget=budget)
            got = [await batches.next()]
            waiting = asyncio.ensure_future(batches.next())
            await asyncio.sleep(0)  # it now waits for the page read ahead
            batches.shed()
            got.append(await waiting)
            got.append(await batches.next())
            batches.close()
            assert [(msgspec.json.encode(b.data), b.last, b.more) for b in got] == asked[:3]
            assert budget.free == 2
        finally:
            await source.close()

    asyncio.run(run())
