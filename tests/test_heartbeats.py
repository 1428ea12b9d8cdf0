"""Heartbeats cost nothing while data flows (issue #16): no heartbeat line between records
lines that come faster than the interval, and no task or timer per batch, only one watchdog
per stream. Throughput with heartbeats on and off is measured by bench/heartbeat_bench.py;
these tests assert what does not depend on the machine's speed. Heartbeats during a stall:
tests/test_faults.py; through a real nginx: tests/test_nginx.py."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Coroutine, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message

from svc.config import Settings
from svc.core.domains import load_domains
from svc.core.tokens import TokenCodec
from svc.engine.json_batches import ReadAhead
from svc.engine.ndjson import JobStream
from svc.engine.service import Service
from svc.http.responses import NdjsonResponse
from svc.sources.sqlite import SqliteSource
from svc.store.embedded import EmbeddedJobStore
from tests.support import DOMAINS, all_cids, create_job, iter_lines, records_of, sql_truth
from tests.support.servers import TEST_SECRET, ServerProcess, start_server

HEARTBEAT = 0.5  # seconds: ~50 times a 500-record page's time, ~1/3 of the stream's length


@pytest.fixture(scope="module")
def beating_server(
    medium_demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory.mktemp("hb-data"),
        medium_demo_db,
        {"TRACE_STREAM_BATCH_SIZE": "500", "TRACE_HEARTBEAT_SECONDS": str(HEARTBEAT)},
    )
    yield srv
    srv.stop()


def test_a_flowing_stream_holds_no_heartbeat(
    beating_server: ServerProcess, medium_demo_db: Path
) -> None:
    cids = all_cids(medium_demo_db)
    job = create_job(beating_server.url, cids)
    lines = list(iter_lines(beating_server.url, job["job_id"]))
    kinds = Counter(line["type"] for line in lines)
    assert kinds["records"] >= 200 and kinds["complete"] == 1, kinds
    # While records flow. After the last one the stream waits for the job's aggregations
    # (~0.5 s here, started with the last page): a heartbeat may rightly cover that wait.
    last = max(i for i, line in enumerate(lines) if line["type"] == "records")
    flowing = Counter(line["type"] for line in lines[:last])
    assert flowing["heartbeat"] == 0, kinds
    assert records_of(lines) == sql_truth(medium_demo_db, cids, DOMAINS)


class _Census:
    """Counts the tasks created and the timers scheduled on the running loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tasks = self.timers = 0
        self.loop = loop
        call_at = loop.call_at

        def counting_call_at(when: float, callback: Any, *args: Any, **kw: Any) -> Any:
            self.timers += 1
            return call_at(when, callback, *args, **kw)

        def counting_factory(
            loop: asyncio.AbstractEventLoop,
            coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
            **kw: Any,
        ) -> asyncio.Future[Any]:
            self.tasks += 1
            return asyncio.Task(coro, loop=loop, **kw)

        setattr(loop, "call_at", counting_call_at)  # noqa: B010  # mypy: call_later uses it
        loop.set_task_factory(counting_factory)

    def stop(self) -> None:
        delattr(self.loop, "call_at")  # the class's own again
        self.loop.set_task_factory(None)


async def _census_of_one_stream(db: Path, data_dir: Path, batch_size: int) -> tuple[int, _Census]:
    """Stream a whole job through NdjsonResponse (defaults: heartbeat 15 s, slow reader 60 s)
    in-process, to an ASGI `send` that takes every line at once; count what it created."""
    # Rows read one page at a time, none ahead: a page read ahead (the database-built
    # path's, or the rows path's) is a task of its own, not a watchdog, and would blur the
    # count.
    settings = Settings(batch_size=batch_size, data_dir=data_dir, database_json=False)
    store = EmbeddedJobStore(data_dir / f"jobs-{batch_size}.sqlite3", ttl=600)
    service = Service(
        settings, load_domains(), SqliteSource(str(db)), store, TokenCodec([TEST_SECRET])
    )
    service.read_ahead = ReadAhead(0)
    try:
        spec = await service.create_job(all_cids(db)[:3000], None, None)
        await service.aggregation(spec)  # totals and aggregations before: nothing to wait for
        stream = JobStream(service, spec, None, None, arrays=True)
        await stream.open()  # as the route does, before the response starts
        response = NdjsonResponse(
            stream,
            headers={},
            heartbeat=settings.heartbeat_seconds,
            slow_reader=settings.slow_reader_seconds,
        )
        bodies: list[bytes] = []
        forever = asyncio.Event()

        async def receive() -> Message:
            await forever.wait()  # the client never leaves
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            bodies.append(message.get("body", b""))

        census = _Census(asyncio.get_running_loop())
        await response({"type": "http", "method": "GET"}, receive, send)
        census.stop()
        lines = [json.loads(x) for x in b"".join(bodies).splitlines()]
        assert lines[-1]["type"] == "complete"
        assert not any(line["type"] == "heartbeat" for line in lines)
        return sum(line["type"] == "records" for line in lines), census
    finally:
        await service.close()


def test_one_watchdog_per_stream_not_a_task_or_timer_per_batch(
    medium_demo_db: Path, tmp_path: Path
) -> None:
    many, small_batches = asyncio.run(_census_of_one_stream(medium_demo_db, tmp_path, 100))
    few, big_batches = asyncio.run(_census_of_one_stream(medium_demo_db, tmp_path, 20_000))
    assert many >= 400 and few <= 3, (many, few)
    # The same tasks (the stream's two watchers) and timers whatever the number of batches.
    assert small_batches.tasks == big_batches.tasks <= 3, (small_batches.tasks, big_batches.tasks)
    assert small_batches.timers - big_batches.timers <= 3, (
        small_batches.timers,
        big_batches.timers,
    )
