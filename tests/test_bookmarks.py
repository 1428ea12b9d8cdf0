"""Bookmarks: while a stream reads through CIDs whose records match nothing (here CIDs with
no records at all, sorted before the real ones), its heartbeats carry a `since` after what
it has passed; resumed there, the stream does not read the passed CIDs again, and ends with
the records and the digest of an uncut stream. On the real SQLite source, each query made
slower (a wrapper) so that heartbeats fall within the empty stretch; JSON and rows paths."""

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
from svc.engine.ndjson import HEARTBEAT_LINE, JobStream
from svc.engine.service import Service
from svc.sources import Lane, Row
from svc.sources.sqlite import SqliteSource
from svc.store.embedded import EmbeddedJobStore
from tests.support.servers import TEST_SECRET

EMPTY = 3500  # CIDs without records, before the real ones: 3.5 chunks of 1000


class SlowSource(SqliteSource):
    """The real SQLite source, each query 5 ms slower; remembers the CIDs each query bound."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.bound: list[list[str]] = []

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        if lane != "count":
            cids = [v for k, v in binds.items() if k[0] == "c" and k[1:].isdigit() and v]
            self.bound.append([str(c) for c in cids])
            await asyncio.sleep(0.005)
        return await super().fetch(sql, binds, lane=lane)


async def _lines(stream: JobStream, beats: list[bytes]) -> list[bytes]:
    """The stream's lines, a heartbeat taken every 2 ms beside them (as the response's
    watchdog would write one)."""
    await stream.open(wait=0)
    done = asyncio.Event()

    async def beat() -> None:
        while not done.is_set():
            beats.append(stream.heartbeat_line())
            await asyncio.sleep(0.002)

    beating = asyncio.ensure_future(beat())
    try:
        return [line async for line in stream.lines()]
    finally:
        done.set()
        await beating


@pytest.mark.parametrize("database_json", [True, False], ids=["json", "rows"])
def test_a_heartbeat_after_an_empty_stretch_resumes_after_it(
    tmp_path: Path, demo_db: Path, demo_cids: list[str], database_json: bool
) -> None:
    empty = [f"0-no-records-{i:05d}" for i in range(EMPTY)]
    assert max(empty) < min(demo_cids)

    async def run() -> None:
        settings = Settings(batch_size=50, data_dir=tmp_path, database_json=database_json)
        source = SlowSource(str(demo_db))
        service = Service(
            settings,
            load_domains(),
            source,
            EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600),
            TokenCodec([TEST_SECRET]),
        )
        try:
            spec = await service.create_job(empty + demo_cids[:300], ["history"], None)
            beats: list[bytes] = []
            whole = await _lines(JobStream(service, spec, None, None, False), beats)
            marks = [json.loads(b)["since"] for b in beats if b != HEARTBEAT_LINE]
            assert marks, "no bookmark while reading the empty stretch"
            assert all(json.loads(b) == {"type": "heartbeat"} for b in beats if b == HEARTBEAT_LINE)
            cursor = service.tokens.verify(marks[-1], spec.job_id)
            assert cursor.rid is None and cursor.seen == 0 and cursor.batch == 0
            assert cursor.cid is not None and cursor.cid > empty[999]  # past a chunk at least

            source.bound.clear()
            resumed = await _lines(JobStream(service, spec, cursor, marks[-1], False), [])
            assert min(c for cids in source.bound for c in cids) >= cursor.cid  # not again
            assert _records(resumed) == _records(whole) and _records(whole)
            assert json.loads(resumed[-1])["digest"] == json.loads(whole[-1])["digest"]
            assert json.loads(whole[-1])["digest"] is not None
        finally:
            await service.close()

    asyncio.run(run())


def _records(lines: list[bytes]) -> list[Any]:
    return [r for raw in lines if b'"records"' in raw for r in json.loads(raw)["data"]]
