"""Faults at the source, part-way through a stream: an `error` line with `retryable` and the
last good `since`; once the fault is gone, a resume completes the job exactly. Also a
database that stalls: heartbeats keep the stream alive, and it then completes exactly."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import struct
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from svc.config import Settings
from svc.core.domains import load_domains
from svc.core.tokens import TokenCodec
from svc.engine.ndjson import JobStream
from svc.engine.service import Service
from svc.errors import SourceUnavailable
from svc.sources import Lane, Row
from svc.sources.sqlite import SqliteSource
from svc.store.embedded import EmbeddedJobStore
from tests.support import create_job, iter_lines, records_union, sql_truth
from tests.support.servers import TEST_SECRET, start_server


class FailingPages(SqliteSource):
    """A real SQLite source whose page queries fail from the `fail_at`-th on."""

    def __init__(self, path: str, fail_at: int) -> None:
        super().__init__(path)
        self.fail_at, self.pages = fail_at, 0

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        if lane in ("read", "json") and "ORDER BY" in sql:
            self.pages += 1
            if self.pages >= self.fail_at:
                raise SourceUnavailable()
        return await super().fetch(sql, binds, lane=lane)


def test_a_failing_source_ends_with_a_retryable_error_and_resumes_exactly(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    settings = Settings(batch_size=400, data_dir=tmp_path)

    async def run(fail_at: int, since: str | None) -> list[dict[str, Any]]:
        source = FailingPages(str(demo_db), fail_at)
        store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
        service = Service(settings, load_domains(), source, store, TokenCodec([TEST_SECRET]))
        try:
            spec = specs.get("job") or await service.create_job(demo_cids, None, None)
            specs["job"] = spec
            cursor = service.cursor(spec, since)
            return [
                json.loads(x)
                async for x in JobStream(service, spec, cursor, since, arrays=True).lines()
            ]
        finally:
            await service.close()

    specs: dict[str, Any] = {}
    broken = asyncio.run(run(fail_at=5, since=None))
    last = broken[-1]
    assert last["type"] == "error" and last["code"] == "source_unavailable"
    assert last["retryable"] is True
    assert last["since"] == [x for x in broken if x["type"] == "records"][-1]["since"]
    rest = asyncio.run(run(fail_at=10**9, since=last["since"]))
    assert rest[-1]["type"] == "complete"
    union = records_union(broken, rest)
    assert union == sql_truth(demo_db, demo_cids, union)


def _bump_change_counter(path: Path) -> None:
    """Make every connection's page cache stale, as any real write would."""
    with path.open("r+b") as fh:
        fh.seek(24)
        (counter,) = struct.unpack(">I", fh.read(4))
        fh.seek(24)
        fh.write(struct.pack(">I", counter + 1))


def test_a_damaged_database_file_is_a_retryable_error_then_resumes_exactly(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    db = tmp_path / "demo.sqlite3"
    shutil.copy(demo_db, db)
    pristine = db.read_bytes()
    srv = start_server(tmp_path / "data", db, {"TRACE_STREAM_BATCH_SIZE": "300"})
    try:
        job = create_job(srv.url, demo_cids)
        lines: list[dict[str, Any]] = []
        for line in iter_lines(srv.url, job["job_id"]):
            lines.append(line)
            if line["type"] == "records" and len(lines) == 4:  # damage it mid-stream
                with db.open("r+b") as fh:
                    fh.seek(4096)
                    fh.write(b"\xde\xad" * ((len(pristine) - 4096) // 2))
                _bump_change_counter(db)
        last = lines[-1]
        assert last["type"] == "error" and last["retryable"] is True, last
        assert last["since"] == [x for x in lines if x["type"] == "records"][-1]["since"]
        assert "malformed" not in json.dumps(last) and "sqlite" not in json.dumps(last)
        db.write_bytes(pristine)  # the fault is gone (a restored file)
        _bump_change_counter(db)
        rest = list(iter_lines(srv.url, job["job_id"], last["since"]))
        assert rest[-1]["type"] == "complete"
        union = records_union(lines, rest)
        assert union == sql_truth(demo_db, demo_cids, union)
    finally:
        srv.stop()


@pytest.mark.slow
def test_heartbeats_keep_a_stalled_stream_alive_and_it_completes_exactly(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    db = tmp_path / "demo.sqlite3"
    shutil.copy(demo_db, db)
    srv = start_server(
        tmp_path / "data", db, {"TRACE_STREAM_BATCH_SIZE": "500", "TRACE_HEARTBEAT_SECONDS": "0.4"}
    )
    stall = 2.5  # the database's busy timeout (5 s) outlasts it: the query waits, then runs
    try:
        job = create_job(srv.url, demo_cids)
        arrivals: list[tuple[float, dict[str, Any]]] = []
        locker = sqlite3.connect(db, timeout=10, isolation_level=None, check_same_thread=False)
        released = threading.Event()

        def release_later() -> None:
            time.sleep(stall)
            locker.execute("ROLLBACK")
            released.set()

        url = f"{srv.url}/api/trace/job/{job['job_id']}/stream"
        with httpx.stream("GET", url, timeout=30) as r:
            for raw in r.iter_lines():
                line = json.loads(raw)
                arrivals.append((time.monotonic(), line))
                if line["type"] == "records" and not released.is_set() and len(arrivals) == 3:
                    locker.execute("BEGIN EXCLUSIVE")  # every reader now waits
                    threading.Thread(target=release_later, daemon=True).start()
        locker.close()
        kinds = [line["type"] for _, line in arrivals]
        beats = [t for t, line in arrivals if line["type"] == "heartbeat"]
        assert kinds[-1] == "complete"
        assert len(beats) >= int(stall / 0.4) - 2, kinds
        gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
        assert all(0.25 < g < 1.0 for g in gaps), gaps  # at the interval
        assert all("since" not in line for _, line in arrivals if line["type"] == "heartbeat")
        # Heartbeats only while the database stalled: none between fast records lines.
        first_beat = kinds.index("heartbeat")
        assert "heartbeat" not in kinds[:first_beat] and kinds[first_beat - 1] == "records"
        lines = [line for _, line in arrivals]
        union = records_union(lines)
        assert union == sql_truth(demo_db, demo_cids, union)
    finally:
        srv.stop()


@pytest.mark.slow
def test_a_first_page_that_stalls_gets_headers_and_heartbeats_then_completes(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    """The database is locked before the request: the response starts after a bounded
    wait for its first page, heartbeats cover the rest of the stall (a proxy would cut a
    silent connection), and the stream then completes exactly."""
    db = tmp_path / "demo.sqlite3"
    shutil.copy(demo_db, db)
    srv = start_server(
        tmp_path / "data", db, {"TRACE_STREAM_BATCH_SIZE": "500", "TRACE_HEARTBEAT_SECONDS": "0.4"}
    )
    stall = 3.0  # under the database's 5 s busy timeout: the first query waits, then runs
    try:
        job = create_job(srv.url, demo_cids)
        locker = sqlite3.connect(db, timeout=10, isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN EXCLUSIVE")
        threading.Timer(stall, lambda: locker.execute("ROLLBACK")).start()
        started = time.monotonic()
        arrivals: list[tuple[float, dict[str, Any]]] = []
        url = f"{srv.url}/api/trace/job/{job['job_id']}/stream"
        with httpx.stream("GET", url, timeout=30) as r:
            headers_after = time.monotonic() - started
            assert r.status_code == 200
            for raw in r.iter_lines():
                arrivals.append((time.monotonic() - started, json.loads(raw)))
        locker.close()
        kinds = [line["type"] for _, line in arrivals]
        assert headers_after < stall - 1.0, headers_after  # not held for the whole stall
        beats = [t for t, line in arrivals if line["type"] == "heartbeat"]
        first_records = next(t for t, line in arrivals if line["type"] == "records")
        assert len(beats) >= 2 and all(t < first_records for t in beats), kinds
        assert kinds[-1] == "complete"
        union = records_union([line for _, line in arrivals])
        assert union == sql_truth(demo_db, demo_cids, union)
    finally:
        srv.stop()
