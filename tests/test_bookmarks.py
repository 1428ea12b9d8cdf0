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

import httpx
import pytest

from svc.client._resume import StreamState
from svc.config import Settings
from svc.core.domains import load_domains
from svc.core.tokens import TokenCodec
from svc.engine.ndjson import HEARTBEAT_LINE, JobStream
from svc.engine.service import Service
from svc.sources import Lane, Row
from svc.sources.sqlite import SqliteSource
from svc.store.embedded import EmbeddedJobStore
from tests.support import create_job
from tests.support.servers import TEST_SECRET, start_server

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


def test_over_http_a_heartbeat_carries_a_bookmark_that_resumes_after_the_stretch(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    """A real server, heartbeats every 5 ms; after the records, 100 chunks of CIDs without
    any, and materials filtered to nothing: heartbeats while the stream reads them carry
    bookmarks; resumed from the last, the stream ends at once with the whole stream's
    count and digest. Other jobs' counting keeps the counting lane busy first, so that
    this job's totals are not known yet and materials is read, not skipped. That is a race
    all the same (lost on a loaded machine): up to five attempts, each a new job; if the
    counting won them all, materials must have been skipped as counted empty (the logic
    of bookmarks is tested without races in process, above)."""
    env = {
        "TRACE_HEARTBEAT_SECONDS": "0.005",
        "TRACE_STREAM_BATCH_SIZE": "500",
        "TRACE_JOB_CREATE_RATE": "0",
        "TRACE_MAX_JOBS_PER_KEY": "0",
    }
    server = start_server(tmp_path / "data", demo_db, env)
    try:
        for attempt in range(5):  # a race with the counting: the stretch may be skipped
            for j in range(20):  # counted first, one query at a time
                busy = [f"busy-{attempt}-{j}-{i:06d}" for i in range(100_000)]
                create_job(server.url, busy + demo_cids)
            cids = demo_cids + [f"z-no-records-{i:06d}" for i in range(100_000)]
            job = create_job(
                server.url,
                cids,
                ["history", "materials"],
                where={"materials": {"MATERIALPARTNAME": ["NO-SUCH-PART"]}},
            )
            url = f"{server.url}/api/trace/job/{job['job_id']}/stream"
            with httpx.stream("GET", url, timeout=60) as r:
                whole = [json.loads(line) for line in r.iter_lines() if line]
            heartbeats = [line for line in whole if line["type"] == "heartbeat"]
            marks = [line["since"] for line in heartbeats if "since" in line]
            if marks:
                break
        complete = whole[-1]
        assert complete["type"] == "complete" and complete["digest"]
        bookmarked = bool(marks)
        if not bookmarked:  # the counting won every race: materials was skipped, not read
            starts = [x for x in whole if x["type"] == "domain_start"]
            assert [x["total"] for x in starts if x["domain"] == "materials"][0] == 0
            marks = [[x for x in whole if x["type"] == "records"][-1]["since"]]
        tokens = TokenCodec([TEST_SECRET])
        last = tokens.verify(marks[-1], job["job_id"])
        assert last.cid is not None and (last.rid is None) == bookmarked  # a bookmark: no rid

        state = StreamState(None)  # the Python client keeps the newest position
        for line in whole[:-1]:
            state.feed(json.dumps(line, separators=(",", ":")).encode())
        assert state.since == _newest(whole[:-1])

        with httpx.stream("GET", url, params={"since": marks[-1]}, timeout=60) as r:
            rest = [json.loads(line) for line in r.iter_lines() if line]
        assert rest[-1]["type"] == "complete"
        assert rest[-1]["total_records"] == complete["total_records"]
        assert rest[-1]["digest"] == complete["digest"]
        if last.domain == "materials":
            assert not [line for line in rest if line["type"] == "records"]
    finally:
        server.stop()


def _newest(lines: list[dict[str, Any]]) -> str | None:
    since = None
    for line in lines:
        if line["type"] in ("records", "heartbeat") and line.get("since"):
            since = line["since"]
    return since
