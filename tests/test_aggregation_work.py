"""Aggregation work is bounded and ends with its last waiter; the stream says it waits.

On a real SQLite demo database, in process: the source holds each aggregate query at a gate
the test opens, so what runs, waits in line or is cancelled is seen query by query.

- A computation whose only request goes away is cancelled (its query never runs), and the
  next request computes it afresh, correctly.
- At most `TRACE_MAX_AGGREGATIONS` run at once; one in line whose request goes away never
  runs; a stream that leaves while its aggregations are computed cancels them.
- The stream sends `aggregating` (the domains still computed) between the last
  `domain_end` and `aggregation`; the client hands it on once.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path

import respx

from svc import protocol as p
from svc.client._resume import StreamState
from svc.client.fetch import fetch
from svc.config import Settings
from svc.core.domains import load_domains
from svc.core.tokens import TokenCodec
from svc.engine.ndjson import JobStream
from svc.engine.service import Service
from svc.sources import Lane, Row
from svc.sources.sqlite import SqliteSource
from svc.store import JobSpec
from svc.store.embedded import EmbeddedJobStore
from tests.support.servers import TEST_SECRET

AGGREGATE_SQL = re.compile(r"^SELECT (DISTINCT |.*GROUP BY)")


class GatedSource(SqliteSource):
    """Aggregate queries wait at `gate`; `started`, `ran` and `cancelled` record, per query,
    the first CID it binds (which job and chunk)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.started: list[str] = []
        self.ran: list[str] = []
        self.cancelled: list[str] = []

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        if not AGGREGATE_SQL.match(sql):
            return await super().fetch(sql, binds, lane=lane)
        first = str(binds.get("c0"))
        self.started.append(first)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(first)
            raise
        self.ran.append(first)
        return await super().fetch(sql, binds, lane=lane)


def _service(
    db: Path, tmp_path: Path, at_once: int = 2, database_json: bool = True
) -> tuple[Service, GatedSource]:
    """`database_json=False`: the rows path, whose streams compute the aggregations after
    their last page (the JSON path folds them from its pages: test_folded_aggregations.py)."""
    source = GatedSource(str(db))
    settings = Settings(
        batch_size=500, data_dir=tmp_path, max_aggregations=at_once, database_json=database_json
    )
    store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
    return Service(settings, load_domains(), source, store, TokenCodec([TEST_SECRET])), source


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def _job(svc: Service, cids: list[str]) -> JobSpec:
    spec = await svc.create_job(cids, None, None)
    for name in spec.domains:
        await svc.totals(spec, name)
    return spec


def test_an_aggregation_nobody_waits_for_is_cancelled_and_computed_afresh_later(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    async def run() -> None:
        svc, source = _service(demo_db, tmp_path)
        spec = await _job(svc, demo_cids[:1200])
        request = asyncio.ensure_future(svc.aggregation(spec))
        await _settle()
        assert source.started and not source.ran  # waiting at the gate
        request.cancel()  # the client went away (unless_gone cancels the request)
        await _settle()
        assert source.cancelled == source.started and not source.ran
        assert not svc.aggregations_future(spec, "history").done()  # started afresh
        source.gate.set()
        again = await svc.aggregation(spec)
        await svc.close()

        reference, ref_source = _service(demo_db, tmp_path / "ref")
        ref_source.gate.set()
        other = await reference.create_job(demo_cids[:1200], None, None)
        assert again.aggregations == (await reference.aggregation(other)).aggregations
        await reference.close()

    (tmp_path / "ref").mkdir()
    asyncio.run(run())


def test_at_most_n_run_at_once_and_one_abandoned_in_line_never_runs(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    async def run() -> None:
        svc, source = _service(demo_db, tmp_path, at_once=1)
        first = await _job(svc, demo_cids[:300])
        second = await _job(svc, demo_cids[300:600])
        third = await _job(svc, demo_cids[600:900])
        specs = {"first": first, "second": second, "third": third}
        jobs = {spec.cids[0]: name for name, spec in specs.items()}
        requests = {name: asyncio.ensure_future(svc.aggregation(s)) for name, s in specs.items()}
        await _settle()
        assert len(source.started) == 1  # one computation; the others in line
        running = jobs[source.started[0]]
        waiting = [name for name in specs if name != running]
        requests[waiting[0]].cancel()  # its client left while in line
        await _settle()
        source.gate.set()
        await requests[running]
        await requests[waiting[1]]
        order = [jobs[c] for c in source.ran]
        assert set(order) == {running, waiting[1]}  # the abandoned one never ran
        await svc.close()

    asyncio.run(run())


def test_with_two_allowed_two_run_at_once(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    async def run() -> None:
        svc, source = _service(demo_db, tmp_path, at_once=2)
        specs = [await _job(svc, demo_cids[i : i + 300]) for i in (0, 300, 600)]
        requests = [asyncio.ensure_future(svc.aggregation(s)) for s in specs]
        await _settle()
        firsts = {s.cids[0] for s in specs}
        assert len(source.started) == 2 and set(source.started) < firsts  # two jobs, not three
        source.gate.set()
        await asyncio.gather(*requests)
        await svc.close()

    asyncio.run(run())


def test_the_stream_says_it_waits_and_its_leaving_cancels_the_work(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    async def run() -> None:
        svc, source = _service(demo_db, tmp_path, database_json=False)
        spec = await _job(svc, demo_cids[:1100])
        types: list[str] = []
        gen = JobStream(svc, spec, None, None, True).lines()
        async for raw in gen:
            line = json.loads(raw)
            types.append(line["type"])
            if line["type"] == "aggregating":
                assert line["domains"] == ["history", "materials"]
                break
        assert types[-2:] == ["domain_end", "aggregating"]
        assert source.started and not source.ran
        await gen.aclose()  # the client leaves while the aggregations are computed
        await _settle()
        assert source.cancelled == source.started and not source.ran

        types = []  # a new stream: aggregating, then (the gate opened) aggregation, complete
        async for raw in JobStream(svc, spec, None, None, True).lines():
            types.append(json.loads(raw)["type"])
            if types[-1] == "aggregating":
                source.gate.set()
        assert types[-3:] == ["aggregating", "aggregation", "complete"]
        # stored now: the next stream does not wait, and says nothing of it
        types = [
            json.loads(x)["type"] async for x in JobStream(svc, spec, None, None, True).lines()
        ]
        assert types[-2:] == ["aggregation", "complete"] and "aggregating" not in types
        await svc.close()

    asyncio.run(run())


def test_the_client_hands_on_aggregating_once_across_resumes() -> None:
    state = StreamState(None)
    line = p.encode_line(p.Aggregating(["history"]))
    assert state.feed(line) == p.Aggregating(["history"])
    assert state.feed(line) is None  # said again by a resumed stream


def test_fetch_says_it_waits_and_keeps_the_line_out_of_the_file(tmp_path: Path) -> None:
    base, job = "http://agg.test", "j"
    lines: list[p.Line] = [
        p.Meta(job, ["history"], 1, resumed=False),
        p.DomainStart("history", ["CONTAINERID"], 1, 1),
        p.Records("history", 1, [{"CONTAINERID": "a"}], "t1"),
        p.DomainEnd("history", 1),
        p.Aggregating(["history"]),
        p.Aggregation(p.JobAggregation({"history": p.DomainCount(1, 1)})),
        p.Complete(0.1, 1),
    ]
    described = {"job_id": job, "cid_count": 1, "domains": ["history"], "expires_at": "x"}
    progress = io.StringIO()
    with respx.mock() as router:
        router.get(f"{base}/api/trace/job/{job}").respond(json=described)
        router.get(f"{base}/api/trace/job/{job}/stream").respond(
            content=b"".join(p.encode_line(x) for x in lines)
        )
        code = fetch(f"{base}/api/trace/job/{job}", tmp_path / "out", progress_out=progress)
    assert code == 0
    assert "fetch: computing aggregations (history)..." in progress.getvalue()
    written = [json.loads(x)["type"] for x in (tmp_path / "out").read_text().splitlines()]
    assert "aggregating" not in written and written[-2:] == ["aggregation", "complete"]
