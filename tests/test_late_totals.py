"""A slow count does not hold back the first records: the total follows in a second
domain_start. In-process, over the real SQLite source with its COUNT queries slowed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svc.config import Settings
from svc.core.domains import load_domains
from svc.core.tokens import TokenCodec
from svc.engine.ndjson import JobStream
from svc.engine.service import Service
from svc.sources import Lane, Row
from svc.sources.sqlite import SqliteSource
from svc.store.embedded import EmbeddedJobStore
from tests.support import DOMAINS, records_of, sql_truth
from tests.support.servers import TEST_SECRET


class SlowCounts(SqliteSource):
    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        if sql.startswith("SELECT COUNT("):
            await asyncio.sleep(0.6)
        return await super().fetch(sql, binds, lane=lane)


def test_records_start_before_the_total_and_the_total_follows(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    settings = Settings(batch_size=500, data_dir=tmp_path)

    async def run() -> list[dict[str, Any]]:
        store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
        svc = Service(
            settings, load_domains(), SlowCounts(str(demo_db)), store, TokenCodec([TEST_SECRET])
        )
        spec = await svc.create_job(demo_cids, None, None)
        lines = [json.loads(x) async for x in JobStream(svc, spec, None, None, arrays=True).lines()]
        await svc.close()
        return lines

    lines = asyncio.run(run())
    truth = sql_truth(demo_db, demo_cids, DOMAINS)
    assert records_of(lines) == truth
    for domain, rows in truth.items():
        starts = [
            i for i, x in enumerate(lines) if x["type"] == "domain_start" and x["domain"] == domain
        ]
        end = next(
            i for i, x in enumerate(lines) if x["type"] == "domain_end" and x["domain"] == domain
        )
        first, last = lines[starts[0]], lines[starts[-1]]
        assert starts[-1] < end
        assert last["total"] == len(rows) and last["total_batches"] == -(-len(rows) // 500)
        if domain == "history":  # counted after the stream began: sent without, then with
            assert first["total"] is None and first["total_batches"] is None
            assert len(starts) == 2
            records_before_total = [
                x for x in lines[starts[0] : starts[1]] if x["type"] == "records"
            ]
            assert records_before_total, "records should not wait for the count"
    assert lines[-1]["type"] == "complete"
    assert lines[-1]["total_records"] == sum(len(r) for r in truth.values())


class RecordingCounts(SqliteSource):
    """Logs when each count query starts and when the first page is read."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.events: list[str] = []

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        self.events.append("count" if sql.startswith("SELECT COUNT(") else "page")
        return await super().fetch(sql, binds, lane=lane)


def test_counting_gives_way_to_a_first_page_and_open_does_not_wait_for_it(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    settings = Settings(batch_size=500, data_dir=tmp_path)

    async def run() -> tuple[list[str], list[dict[str, Any]], list[str]]:
        store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
        source = RecordingCounts(str(demo_db))
        svc = Service(settings, load_domains(), source, store, TokenCodec([TEST_SECRET]))
        spec = await svc.create_job(demo_cids, None, None)
        # While a first page is being read, no count chunk starts.
        async with svc.first_page():
            counting = asyncio.ensure_future(svc.totals(spec, "history"))
            await asyncio.sleep(0.2)
            held = list(source.events)
        await counting
        # A stream opened on a job nobody counted yet reads its page and does not wait.
        other = await svc.create_job(demo_cids[:50], None, None)
        stream = JobStream(svc, other, None, None, arrays=True)
        source.events.clear()
        await stream.open()
        opened = list(source.events)
        lines = [json.loads(x) async for x in stream.lines()]
        await svc.close()
        return held, lines, opened

    held, lines, opened = asyncio.run(run())
    assert "count" not in held
    assert opened[0] == "page"  # the page query was issued before any count of that job
    assert lines[1]["type"] == "domain_start" and lines[1]["total"] is None
    assert lines[2]["type"] == "records"
    truth = sql_truth(demo_db, demo_cids[:50], DOMAINS)
    assert records_of(lines) == truth
