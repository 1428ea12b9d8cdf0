"""The keyset reader over a real SQLite source: batches, offsets, chunk statistics."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svc.core.sql.plan import Plan
from svc.engine.reader import DomainReader
from svc.sources.sqlite import SqliteSource
from tests.support import DOMAINS, expected_rows

HISTORY = DOMAINS["history"]
_settings = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _reader(db: Path, cids: list[str], slots: int) -> DomainReader:
    return DomainReader(SqliteSource(str(db)), HISTORY, Plan(sorted(cids), slots))


@_settings
@given(slots=st.integers(1, 200), limit=st.integers(1, 900), n=st.integers(0, 600))
def test_batches_are_full_and_cover_every_row_once(
    demo_db: Path, demo_cids: list[str], slots: int, limit: int, n: int
) -> None:
    cids = demo_cids[:n]
    reader = _reader(demo_db, cids, slots)

    async def walk() -> list[list[tuple[object, ...]]]:
        batches, after = [], None
        while True:
            batch = await reader.read(after, limit)
            batches.append([r[:-1] for r in batch.rows])
            after = batch.last
            if not batch.more:
                return batches

    batches = asyncio.run(walk())
    assert all(len(b) == limit for b in batches[:-1])  # only the last batch may be short
    assert [r for b in batches for r in b] == expected_rows(demo_db, cids, HISTORY)


@_settings
@given(slots=st.integers(1, 200), limit=st.integers(1, 500), n=st.integers(1, 600), data=st.data())
def test_offset_pages_are_slices_of_the_domain(
    demo_db: Path, demo_cids: list[str], slots: int, limit: int, n: int, data: st.DataObject
) -> None:
    cids = demo_cids[:n]
    truth = expected_rows(demo_db, cids, HISTORY)
    offset = data.draw(st.integers(0, len(truth) + 5))
    reader = _reader(demo_db, cids, slots)

    async def page() -> tuple[list[tuple[object, ...]], bool, list[tuple[object, ...]]]:
        chunks = [c.records for c in await reader.chunk_totals()]
        assert sum(chunks) == len(truth)
        batch = await reader.read_at(offset, limit, chunks)
        rest = await reader.read(batch.last, 10**6) if batch.more else None
        return [r[:-1] for r in batch.rows], batch.more, [r[:-1] for r in rest.rows] if rest else []

    rows, more, rest = asyncio.run(page())
    assert rows == truth[offset : offset + limit]
    assert more == (offset + limit < len(truth))
    assert rows + rest == truth[offset:]  # keyset from an offset page goes on exactly
