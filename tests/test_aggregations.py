"""Declared aggregations against SQL computed independently, on a real SQLite demo database.

- Every kind (count by one and by two columns, with and without an "other" bucket, sums
  with and without groups, min and max, distinct counts), merged from many chunks, equals
  one plain GROUP BY / aggregate query over the job's rows in a temporary table.
- Caching: computed once (a job's first stream folds them from its pages), stored with the
  job (embedded store and real Redis): another process's request, and a resumed stream,
  run no aggregate query at all. On the rows path they start once the last page is read.
- Over a real server: the route and the stream's line agree; a second request runs no
  aggregate query (the `trace_aggregate_query_seconds` metric does not move).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from svc import protocol as p
from svc.config import Settings
from svc.core.aggregates import merging
from svc.core.domains import Aggregation, Domain, load_domains, parse_domains
from svc.core.sql.plan import Plan
from svc.core.tokens import TokenCodec
from svc.engine.ndjson import JobStream
from svc.engine.reader import DomainReader
from svc.engine.service import Service
from svc.sources import Lane, Row
from svc.sources.sqlite import SqliteSource
from svc.store import JobStore
from svc.store.embedded import EmbeddedJobStore
from svc.store.redis import RedisJobStore
from tests.support import create_job, iter_lines
from tests.support.servers import TEST_SECRET, ServerProcess
from tests.support.truth import close_enough

DOMAIN_FILE = """
[domains.history]
table = "MES_CONTAINER_HISTORY"
columns = ["CONTAINERID", "TXNDATE", "EVENTNAME", "SPECNAME", "WORKCENTERNAME", "EQUIPMENTNAME",
           "QTY", "QTY2", "EMPLOYEENAME", "COMMENTS"]
aggregations = [
  { name = "events", kind = "count", by = ["EVENTNAME"] },
  { name = "spec_wc", kind = "count", by = ["SPECNAME", "WORKCENTERNAME"], top = 3 },
  { name = "equipment", kind = "count", by = ["EQUIPMENTNAME"], top = 5 },
  { name = "comments", kind = "count", by = ["COMMENTS"], top = 1000 },
  { name = "qty", kind = "sum", column = "QTY" },
  { name = "qty2_by_event", kind = "sum", column = "QTY2", by = ["EVENTNAME"], top = 4 },
  { name = "txndate", kind = "min_max", column = "TXNDATE" },
  { name = "qty_range", kind = "min_max", column = "QTY" },
  { name = "employees", kind = "distinct", column = "EMPLOYEENAME" },
  { name = "equipment_names", kind = "distinct", column = "EQUIPMENTNAME" },
]

[domains.materials]
table = "MES_CONTAINER_MATERIALS"
columns = ["CONTAINERID", "MATERIALPARTNAME", "MATERIALLOTNAME", "QTYCONSUMED", "UOM"]
aggregations = [
  { name = "by_part", kind = "sum", column = "QTYCONSUMED", by = ["MATERIALPARTNAME", "UOM"] },
  { name = "lots", kind = "distinct", column = "MATERIALLOTNAME" },
  { name = "qty_range", kind = "min_max", column = "QTYCONSUMED" },
]
"""
DOMAINS = parse_domains(DOMAIN_FILE)
AGGREGATE_SQL = re.compile(r"^SELECT (DISTINCT |.*GROUP BY|COUNT\(\*\), SUM\()")


def _job(cids: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    # CIDs without rows sort among the real ones: chunks with no rows at all occur.
    return sorted(set(rng.sample(cids, n)) | {f"{rng.getrandbits(64):016x}z" for _ in range(30)})


class Truth:
    """Plain SQL over the job's rows (a temporary table of its CIDs): no chunks, no merging."""

    def __init__(self, db: Path, cids: list[str]) -> None:
        self.conn = sqlite3.connect(db)
        self.conn.execute("CREATE TEMP TABLE job_cids (cid TEXT PRIMARY KEY)")
        self.conn.executemany("INSERT INTO job_cids VALUES (?)", ((c,) for c in cids))

    def rows(self, domain: Domain, select: str, tail: str = "") -> list[Row]:
        return self.conn.execute(
            f"SELECT {select} FROM {domain.table}"
            f" WHERE {domain.key} IN (SELECT cid FROM job_cids) {tail}"
        ).fetchall()

    def of(self, domain: Domain, agg: Aggregation) -> dict[str, Any]:
        """What `agg` must come to, in wire form."""
        name = domain.columns
        if agg.kind == "min_max":
            assert agg.column is not None
            low, high = self.rows(domain, f"MIN({name[agg.column]}), MAX({name[agg.column]})")[0]
            return {"kind": "min_max", "column": name[agg.column], "min": low, "max": high}
        if agg.kind == "distinct":
            assert agg.column is not None
            (n,) = self.rows(domain, f"COUNT(DISTINCT {name[agg.column]})")[0]
            return {"kind": "distinct", "column": name[agg.column], "count": n}
        by = [name[i] for i in agg.by]
        measure = "COUNT(*)" + (f", SUM({name[agg.column]})" if agg.column is not None else "")
        rows, total = self.rows(domain, "COUNT(*)")[0][0], None
        if agg.column is not None:
            total = self.rows(domain, f"SUM({name[agg.column]})")[0][0]
        out: dict[str, Any] = {"kind": agg.kind, "by": by, "count": rows}
        if agg.kind == "sum":
            out = {"kind": "sum", "column": name[agg.column or 0], "by": by, "sum": total}
            out["count"] = rows
        out["groups"], out["other"] = [], None
        if by:
            keys = ", ".join(by)
            ranked = self.rows(
                domain, f"{keys}, {measure}", f"GROUP BY {keys} ORDER BY COUNT(*) DESC, {keys}"
            )

            def group(r: Row) -> dict[str, Any]:
                g = {"key": list(r[: len(by)]), "count": r[len(by)]}
                if agg.kind == "sum":
                    g["sum"] = r[len(by) + 1]
                return g

            out["groups"] = [group(r) for r in ranked[: agg.top]]
            rest = ranked[agg.top :]
            if rest:
                out["other"] = {"groups": len(rest), "count": sum(r[len(by)] for r in rest)}
                if agg.kind == "sum":
                    out["other"]["sum"] = sum(r[len(by) + 1] for r in rest)
        out["exact"] = True
        return out


@pytest.mark.parametrize(("n", "slots"), [(900, 100), (1500, 1000), (40, 7)])
@pytest.mark.parametrize("domain", ["history", "materials"])
def test_every_kind_equals_independent_sql(
    demo_db: Path, demo_cids: list[str], domain: str, n: int, slots: int
) -> None:
    job = _job(demo_cids, n, seed=n + slots)
    plan = Plan(job, slots=slots)
    d = DOMAINS[domain]

    async def run() -> dict[str, Any]:
        source = SqliteSource(str(demo_db))
        try:
            return await DomainReader(source, d, plan).aggregate()
        finally:
            await source.close()

    got = msgspec.to_builtins(asyncio.run(run()))
    truth = Truth(demo_db, job)
    assert list(got) == [a.name for a in d.aggregations]
    for agg in d.aggregations:
        want = truth.of(d, agg)
        assert close_enough(got[agg.name], want), (agg.name, got[agg.name], want)
    if n >= 900:  # the job is big enough for the buckets to be used
        assert got.get("equipment", {"other": 1})["other"] is not None
        assert got.get("spec_wc", {"other": 1})["other"] is not None


def test_past_the_tracked_groups_totals_stay_exact_and_the_outcome_says_so(
    demo_db: Path, demo_cids: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A count by a column of ~320 values, tracking at most 40 groups while merging."""
    monkeypatch.setattr(merging, "MAX_TRACKED_GROUPS", 40)
    job = _job(demo_cids, 1200, seed=1)
    d = parse_domains(
        """
        [domains.history]
        table = "MES_CONTAINER_HISTORY"
        columns = ["CONTAINERID", "EVENTNAME", "EQUIPMENTNAME", "QTY"]
        aggregations = [
          { name = "events", kind = "count", by = ["EVENTNAME"] },
          { name = "equipment", kind = "count", by = ["EQUIPMENTNAME"], top = 5 },
          { name = "eq_qty", kind = "sum", column = "QTY", by = ["EQUIPMENTNAME"], top = 5 },
        ]
        """
    )["history"]

    async def run() -> dict[str, Any]:
        source = SqliteSource(str(demo_db))
        try:
            return await DomainReader(source, d, Plan(job, slots=100)).aggregate()
        finally:
            await source.close()

    got = msgspec.to_builtins(asyncio.run(run()))
    truth = Truth(demo_db, job)
    for name in ("equipment", "eq_qty"):
        agg = next(a for a in d.aggregations if a.name == name)
        want = truth.of(d, agg)
        assert got[name]["exact"] is False and want["exact"] is True
        assert got[name]["count"] == want["count"]  # every row is in a group or in other
        listed = sum(g["count"] for g in got[name]["groups"])
        assert listed + got[name]["other"]["count"] == want["count"]
        assert len(got[name]["groups"]) == 5
        if name == "eq_qty":
            assert got[name]["sum"] == pytest.approx(want["sum"], rel=1e-9)
            assert sum(g["sum"] for g in got[name]["groups"]) + got[name]["other"][
                "sum"
            ] == pytest.approx(want["sum"], rel=1e-9)
    # Groups with few rows still merge exactly: 12 event names never reach the limit.
    assert got["events"]["exact"] is True


# --- caching: computed once per job, reused by every process and every resume ----------------


class RecordingSource(SqliteSource):
    """The real SQLite source, recording each statement's kind and lane."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.seen: list[tuple[str, Lane]] = []

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        kind = "aggregate" if AGGREGATE_SQL.match(sql) else "other"
        if sql.startswith("WITH page AS MATERIALIZED"):
            kind = "folded"  # a page that brings its aggregations (folded_page_sql)
        if sql.startswith("SELECT COUNT(*), COUNT(DISTINCT"):
            kind = "totals"
        self.seen.append((kind, lane))
        return await super().fetch(sql, binds, lane=lane)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.seen if k == kind)


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> JobStore:
    if kind == "embedded":
        return EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
    url = request.getfixturevalue("redis_url")
    return RedisJobStore(url, prefix=request.getfixturevalue("redis_prefix"), ttl=600)


@pytest.mark.parametrize("store_kind", ["embedded", "redis"])
def test_computed_once_then_reused_by_another_process_and_a_resumed_stream(
    demo_db: Path,
    demo_cids: list[str],
    tmp_path: Path,
    store_kind: str,
    request: pytest.FixtureRequest,
) -> None:
    domains = load_domains()  # the demo's declarations
    settings = Settings(batch_size=400, data_dir=tmp_path)
    # history: one grouped query; materials: one grouped and one SELECT DISTINCT
    per_chunk = 3

    def service() -> tuple[Service, RecordingSource]:
        source = RecordingSource(str(demo_db))
        store = _store(store_kind, tmp_path, request)
        return Service(settings, domains, source, store, TokenCodec([TEST_SECRET])), source

    async def run() -> None:
        first, source = service()
        spec = await first.create_job(demo_cids[:1400], None, None)
        lines = [json.loads(x) async for x in JobStream(first, spec, None, None, True).lines()]
        assert lines[-1]["type"] == "complete"
        # The stream folded them from its pages: no aggregate query ran.
        assert source.count("aggregate") == 0 and source.count("folded") > 2
        line = lines[-2]
        assert line["type"] == "aggregation"
        assert set(line["data"]["aggregations"]) == {"history", "materials"}
        assert line["data"]["domains"]["history"]["containers"] == 1400
        # ... and they are what the separate pass computes: every aggregate query once per
        # chunk, on the count lane.
        computed = await first.reader(spec, "history").aggregate()
        computed_m = await first.reader(spec, "materials").aggregate()
        assert source.count("aggregate") == per_chunk * Plan(spec.cids).chunk_count == 6
        assert {lane for kind, lane in source.seen if kind == "aggregate"} == {"count"}
        folded = line["data"]["aggregations"]
        assert close_enough(folded["history"], json.loads(p.encode(computed)))
        assert close_enough(folded["materials"], json.loads(p.encode(computed_m)))
        # The same process again: no query at all.
        before = len(source.seen)
        again = await first.aggregation(spec)
        assert len(source.seen) == before
        assert msgspec.to_builtins(again) == line["data"]
        await first.close()

        # Another process (or replica): from the store, no aggregate or count query.
        second, source2 = service()
        spec2 = await second.job(spec.job_id, None)
        got = await second.aggregation(spec2)
        assert source2.count("aggregate") == 0 and source2.count("totals") == 0
        assert json.loads(p.encode(got)) == line["data"]  # stored decimals read as sent
        await second.close()

        # A stream resumed in a third process, from its last history batch.
        third, source3 = service()
        spec3 = await third.job(spec.job_id, None)
        since = [x for x in lines if x["type"] == "records"][-1]["since"]
        resumed = [
            json.loads(x)
            async for x in JobStream(third, spec3, third.cursor(spec3, since), since, True).lines()
        ]
        assert resumed[0]["resumed"] is True and resumed[-2] == line
        assert source3.count("aggregate") == 0 and source3.count("folded") == 0
        await third.close()

    asyncio.run(run())


@pytest.mark.parametrize("path", ["json", "rows", "remote rows"])
def test_aggregations_start_once_the_last_page_is_read(
    demo_db: Path, demo_cids: list[str], tmp_path: Path, path: str
) -> None:
    """The stream's pages never compete with its aggregations on the service's cores: on
    the JSON path the pages bring them (no aggregate query at all), on the rows path they
    start after the last page; on a remote source (Oracle: its server runs them) they start
    at once, beside the pages."""
    database_json = path == "json"
    source = RecordingSource(str(demo_db))
    source.remote = path == "remote rows"
    settings = Settings(batch_size=300, data_dir=tmp_path, database_json=database_json)
    store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
    svc = Service(settings, load_domains(), source, store, TokenCodec([TEST_SECRET]))

    async def run() -> list[tuple[str, str | None, int]]:
        spec = await svc.create_job(demo_cids[:1000], None, None)
        seen = []  # each line's type and domain, and the aggregate queries run before it
        async for raw in JobStream(svc, spec, None, None, True).lines():
            line = json.loads(raw)
            seen.append((line["type"], line.get("domain"), source.count("aggregate")))
        await svc.close()
        return seen

    seen = asyncio.run(run())
    last_records = max(i for i, (kind, _, _) in enumerate(seen) if kind == "records")
    assert seen[last_records][1] == "materials"
    assert sum(1 for kind, _, _ in seen if kind == "records") > 10
    if path == "remote rows":
        assert seen[last_records][2] >= 1 and seen[-1][2] == 3  # started before the last records
        return
    assert all(ran == 0 for _, _, ran in seen[:last_records])
    # one chunk: 1 + 2 statements on the rows path
    assert seen[-1][0] == "complete" and seen[-1][2] == (0 if database_json else 3)
    assert (source.count("folded") > 0) == database_json


# --- over a real server --------------------------------------------------------------------


def _aggregate_queries(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return sum(
        float(v)
        for v in re.findall(r"^trace_aggregate_query_seconds_count\{[^}]*\} (\S+)$", text, re.M)
    )


def test_route_and_stream_line_agree_and_the_second_request_queries_nothing(
    server: ServerProcess, demo_db: Path, demo_cids: list[str]
) -> None:
    cids = demo_cids[200:1300]
    job = create_job(server.url, cids)
    url = f"{server.url}/api/trace/job/{job['job_id']}/aggregation"
    before = _aggregate_queries(server)
    r = httpx.get(url, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    ran = _aggregate_queries(server) - before
    assert ran == 3 * 2  # the demo's three aggregate queries, over two chunks of CIDs
    assert httpx.get(url, timeout=60).json() == body
    lines = list(iter_lines(server.url, job["job_id"]))
    assert lines[-2] == {"type": "aggregation", "data": body}
    assert _aggregate_queries(server) - before == ran  # neither ran another aggregate query

    # The demo's declarations, against plain SQL over the job's rows.
    demo = load_domains()
    truth = Truth(demo_db, cids)
    for name, d in demo.items():
        for agg in d.aggregations:
            assert close_enough(body["aggregations"][name][agg.name], truth.of(d, agg)), agg.name
    events = body["aggregations"]["history"]["events"]
    assert events["count"] == body["domains"]["history"]["records"] > 0


def test_route_errors(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/api/trace/job/no-such-job/aggregation")
    assert r.status_code == 404 and r.json()["code"] == "job_not_found"
    r = httpx.post(f"{server.url}/api/trace/job/no-such-job/aggregation")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_aggregations_honour_the_jobs_filter(demo_db: Path, demo_cids: list[str]) -> None:
    """A filtered job's counts, sums, min/max and distinct values are over its matching rows."""
    job = _job(demo_cids, 900, seed=7)
    where: dict[str, p.Condition] = {
        "EVENTNAME": ["Hold", "MoveIn"],
        "TXNDATE": p.Range("2025-02-01T00:00:00", "2025-04-01T00:00:00"),
    }
    d = load_domains()["history"]  # the demo's: history's filterable columns and aggregations

    async def run() -> dict[str, Any]:
        source = SqliteSource(str(demo_db))
        try:
            return await DomainReader(source, d, Plan(job, slots=100), where=where).aggregate()
        finally:
            await source.close()

    got = msgspec.to_builtins(asyncio.run(run()))
    with sqlite3.connect(demo_db) as conn:
        marks = ",".join("?" * len(job))
        rows = conn.execute(
            f"SELECT EVENTNAME, COUNT(*), SUM(QTY), MIN(TXNDATE), MAX(TXNDATE)"
            f" FROM MES_CONTAINER_HISTORY WHERE CONTAINERID IN ({marks})"
            " AND EVENTNAME IN ('Hold', 'MoveIn') AND TXNDATE >= '2025-02-01T00:00:00'"
            " AND TXNDATE < '2025-04-01T00:00:00' GROUP BY EVENTNAME",
            job,
        ).fetchall()
    assert rows, "the filter should match some rows"
    events = {tuple(g["key"]): g["count"] for g in got["events"]["groups"]}
    assert events == {(name,): n for name, n, *_ in rows}
    assert got["events"]["count"] == sum(r[1] for r in rows)
    assert got["qty"]["sum"] == pytest.approx(sum(r[2] or 0 for r in rows), rel=1e-9)
    assert got["txndate"]["min"] == min(r[3] for r in rows)
    assert got["txndate"]["max"] == max(r[4] for r in rows)
