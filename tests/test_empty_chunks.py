"""Work proportional to output: chunks counted empty are not read again.

Once a job's totals are counted, the per-chunk counts say which chunks of 1000 CIDs hold no
record (of the job's filter); streams (JSON pages and rows), REST pages and the CSV reader
skip them without a query. Shown on a real SQLite demo database, in process, by the page
queries the source receives; and exactly once still holds across cuts of a filtered job.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from svc.config import Settings
from svc.core.domains import load_domains
from svc.core.tokens import TokenCodec
from svc.engine.ndjson import JobStream
from svc.engine.positions import Start
from svc.engine.service import Service
from svc.sources import Lane, Row
from svc.sources.sqlite import SqliteSource
from svc.store.embedded import EmbeddedJobStore
from tests.support import Line, records_union, sql_truth
from tests.support.servers import TEST_SECRET

WHERE: dict[str, Any] = {
    "history": {"EVENTNAME": ["TrackIn", "Hold"]},
    "materials": {"MATERIALPARTNAME": ["EPOXY-8200", "DIE-A7X"]},
}
PREDICATES: dict[str, tuple[str, tuple[object, ...]]] = {
    "history": ("EVENTNAME IN ('TrackIn', 'Hold')", ()),
    "materials": ("MATERIALPARTNAME IN ('EPOXY-8200', 'DIE-A7X')", ()),
}
NOTHING: dict[str, Any] = {"history": {"EVENTNAME": ["no such event"]}}


class PageCountingSource(SqliteSource):
    """The real SQLite source, recording the first CID bound by each page query (its chunk)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.pages: list[str] = []

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        if lane in ("read", "json"):
            self.pages.append(str(binds.get("c0")))
        return await super().fetch(sql, binds, lane=lane)


def _cids(demo_cids: list[str]) -> list[str]:
    """Chunks 0 and 1 hold CIDs without rows, chunk 2 real ones, chunks 3 and 4 none again."""
    real = sorted(demo_cids)[:600]
    return [f"!{i:05d}" for i in range(2000)] + real + [f"~{i:05d}" for i in range(1500)]


def _service(db: Path, tmp_path: Path, json_pages: bool) -> tuple[Service, PageCountingSource]:
    source = PageCountingSource(str(db))
    settings = Settings(batch_size=250, data_dir=tmp_path, database_json=json_pages)
    store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
    return Service(settings, load_domains(), source, store, TokenCodec([TEST_SECRET])), source


async def _lines(stream: JobStream, cut: int | None = None) -> list[Line]:
    out = []
    gen = stream.lines()
    async for raw in gen:
        out.append(json.loads(raw))
        if cut is not None and len(out) == cut:
            await gen.aclose()
            break
    return out


@pytest.mark.parametrize("json_pages", [True, False], ids=["json", "rows"])
def test_a_stream_reads_no_chunk_counted_empty(
    demo_db: Path, demo_cids: list[str], tmp_path: Path, json_pages: bool
) -> None:
    cids = _cids(demo_cids)
    truth = sql_truth(demo_db, cids, where=PREDICATES)
    svc, source = _service(demo_db, tmp_path, json_pages)

    async def run() -> list[Line]:
        spec = await svc.create_job(cids, None, None, WHERE)
        for name in spec.domains:
            await svc.totals(spec, name)  # the counts that say which chunks are empty
        source.pages.clear()
        lines = await _lines(JobStream(svc, spec, None, None, False))
        await svc.close()
        return lines

    lines = asyncio.run(run())
    assert lines[-1]["type"] == "complete"
    assert records_union(lines) == truth
    empty_chunks = {"!00000", "!01000", "~00400", "~01400"}  # first CIDs of chunks 0, 1, 3, 4
    assert source.pages, "the chunk with records was read"
    assert not empty_chunks & set(source.pages), source.pages
    # every query starts in chunk 2, the one with records (its 400 CIDs without rows
    # included: a JSON range may start among them)
    assert all("!01999" < c < "~00400" for c in source.pages), source.pages


@pytest.mark.parametrize("json_pages", [True, False], ids=["json", "rows"])
def test_a_job_that_matches_nothing_reads_no_page_once_counted(
    demo_db: Path, demo_cids: list[str], tmp_path: Path, json_pages: bool
) -> None:
    """Also in another process that knows only the stored total (zero), and for REST pages
    and the CSV download's reader."""
    cids = sorted(demo_cids)[:1400]

    async def run() -> None:
        svc, source = _service(demo_db, tmp_path, json_pages)
        spec = await svc.create_job(cids, ["history"], None, NOTHING)
        assert (await svc.totals(spec, "history")).records == 0
        source.pages.clear()
        lines = await _lines(JobStream(svc, spec, None, None, False))
        assert lines[-1]["type"] == "complete" and lines[-1]["total_records"] == 0
        page = await svc.page(spec, "history", since=None, offset=None, limit=100, arrays=False)
        assert page.data == [] and page.next is None
        csv_rows = await svc.file_rows(spec, Start("history"))  # the CSV download's reader
        assert (await csv_rows.next()).data == []
        assert source.pages == []
        await svc.close()

        other, source2 = _service(demo_db, tmp_path, json_pages)  # a restart: counts not kept
        again = await other.job(spec.job_id, None)
        lines = await _lines(JobStream(other, again, None, None, False))
        assert lines[-1]["type"] == "complete"
        assert source2.pages == []  # the stored total of zero says every chunk is empty
        await other.close()

    asyncio.run(run())


@pytest.mark.parametrize("json_pages", [True, False], ids=["json", "rows"])
def test_exactly_once_across_cuts_of_a_filtered_job_with_empty_chunks(
    demo_db: Path, demo_cids: list[str], tmp_path: Path, json_pages: bool
) -> None:
    cids = _cids(demo_cids)
    truth = sql_truth(demo_db, cids, where=PREDICATES)
    svc, _ = _service(demo_db, tmp_path, json_pages)

    async def run() -> None:
        spec = await svc.create_job(cids, None, None, WHERE)
        whole = await _lines(JobStream(svc, spec, None, None, False))  # counts the totals
        assert records_union(whole) == truth
        assert all(svc.chunk_records_if_known(spec, name) for name in spec.domains)
        n = len(whole)
        assert n > 8
        for cut in range(3, n, max(1, n // 12)):
            parts: list[list[Line]] = []
            since: str | None = None
            for _ in range(200):
                cursor = svc.cursor(spec, since)
                stuck = parts and not any(x.get("since") for x in parts[-1])
                part = await _lines(
                    JobStream(svc, spec, cursor, since, False), None if stuck else cut
                )
                parts.append(part)
                if part[-1]["type"] == "complete":
                    break
                since = next((x["since"] for x in reversed(part) if x.get("since")), since)
            assert parts[-1][-1]["type"] == "complete"
            assert records_union(*parts) == truth, cut
        await svc.close()

    asyncio.run(run())
