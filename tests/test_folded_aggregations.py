"""A job's first stream folds its aggregations from its own pages (`svc.engine.folding`).

On a real SQLite demo database through the real source, against the separate pass
(`DomainReader.aggregate`, one grouped query per chunk) over the same job:

- the folded outcome is the computed one, for filtered and narrowed jobs, objects and
  arrays, batch sizes that make ranges continue by keyset; no aggregate query runs;
- each row counts once or the fold is dropped: a client that stops reading (pages read
  ahead are shed), a page JSON cannot hold (the rest of the domain goes to rows), a stream
  that leaves early or resumes mid-domain leave the aggregations to the separate pass,
  which then gives them; across a cut the records are still exactly once;
- one stream folds a job's domain at a time; an abandoned fold lets the next stream fold.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from svc import protocol as p
from svc.config import Settings
from svc.core.domains import load_domains
from svc.core.tokens import TokenCodec
from svc.engine import tallies
from svc.engine.folding import AggregationFold
from svc.engine.json_batches import JsonBatches
from svc.engine.ndjson import JobStream
from svc.engine.service import Service
from svc.sources import Lane, Row
from svc.sources.sqlite import SqliteSource
from svc.store import JobSpec
from svc.store.embedded import EmbeddedJobStore
from tests.support.servers import TEST_SECRET
from tests.support.truth import close_enough

AGGREGATE_SQL = re.compile(r"^SELECT (DISTINCT |.*GROUP BY)")
FOLDED_SQL = "WITH page AS MATERIALIZED"


class CountingSource(SqliteSource):
    """The real source, counting aggregate queries and folded pages."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.aggregate = self.folded = 0
        self.statements: list[str] = []

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        self.statements.append(sql)
        if AGGREGATE_SQL.match(sql):
            self.aggregate += 1
        elif sql.startswith(FOLDED_SQL):
            self.folded += 1
        return await super().fetch(sql, binds, lane=lane)


def _service(db: Path, tmp_path: Path, batch_size: int = 300) -> tuple[Service, CountingSource]:
    source = CountingSource(str(db))
    settings = Settings(batch_size=batch_size, data_dir=tmp_path)
    store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
    return Service(settings, load_domains(), source, store, TokenCodec([TEST_SECRET])), source


async def _computed(svc: Service, spec: JobSpec) -> dict[str, Any]:
    """The separate pass over the job's chunks, every domain with aggregations."""
    out = {}
    for name in spec.domains:
        if svc.domains[name].aggregations:
            out[name] = json.loads(p.encode(await svc.reader(spec, name).aggregate()))
    return out


async def _lines(stream: JobStream) -> list[dict[str, Any]]:
    return [json.loads(x) async for x in stream.lines()]


CASES: dict[str, tuple[p.Where, p.Select | None, int | None, bool]] = {
    "plain": ({}, None, None, True),
    "filtered": (
        {"history": {"EVENTNAME": ["Hold", "MoveIn", "MoveOut"]}},
        None,
        None,
        False,
    ),
    "narrowed": ({}, {"history": ["EVENTNAME"], "materials": ["UOM"]}, None, False),
    "tiny batches": ({}, None, 7, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_first_stream_folds_what_the_separate_pass_computes(
    demo_db: Path, demo_cids: list[str], tmp_path: Path, case: str
) -> None:
    where, select, batch_size, arrays = CASES[case]

    async def run() -> None:
        svc, source = _service(demo_db, tmp_path, batch_size or 300)
        cids = demo_cids[:60] if batch_size else demo_cids[100:1400]
        spec = await svc.create_job(cids, list(where) or None, None, where or None, select)
        lines = await _lines(JobStream(svc, spec, None, None, arrays))
        assert lines[-1]["type"] == "complete"
        assert source.aggregate == 0 and source.folded > 1  # only the pages were read
        folded = lines[-2]["data"]["aggregations"]
        assert close_enough(folded, await _computed(svc, spec))
        assert source.aggregate > 0  # (the pass ran, for the comparison)
        await svc.close()

    asyncio.run(run())


def test_a_cut_stream_resumed_mid_domain_is_exact_and_its_aggregations_computed(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    """Cut in `history` after a few records lines, resumed from the last `since`: the
    resumed stream does not fold `history` (it did not read its start), computes it, and
    folds `materials`; records once each, aggregations as an uncut stream's."""

    async def run() -> None:
        where: p.Where = {"history": {"EVENTNAME": ["Hold", "MoveIn"]}}
        svc, source = _service(demo_db, tmp_path, 50)
        spec = await svc.create_job(demo_cids[:900], None, None, where, None)
        seen: list[dict[str, Any]] = []
        gen = JobStream(svc, spec, None, None, False).lines()
        async for raw in gen:
            line = json.loads(raw)
            seen.append(line)
            if sum(x["type"] == "records" for x in seen) == 3:
                break
        await gen.aclose()  # the client went away: the history fold is abandoned
        since = seen[-1]["since"]
        rest = await _lines(JobStream(svc, spec, svc.cursor(spec, since), since, False))
        assert rest[-1]["type"] == "complete"
        assert source.aggregate == 1  # history's one chunk, computed; materials folded

        records = [
            (x["domain"], r) for x in seen + rest if x["type"] == "records" for r in x["data"]
        ]
        keys = [(d, r["CONTAINERID"], json.dumps(r, sort_keys=True)) for d, r in records]
        assert len(keys) == len(set(keys)) == rest[-1]["total_records"]
        with sqlite3.connect(demo_db) as conn:
            marks = ",".join("?" * 900)
            want = conn.execute(
                "SELECT (SELECT COUNT(*) FROM MES_CONTAINER_HISTORY WHERE CONTAINERID IN"
                f" ({marks}) AND EVENTNAME IN ('Hold', 'MoveIn')) + (SELECT COUNT(*) FROM"
                f" MES_CONTAINER_MATERIALS WHERE CONTAINERID IN ({marks}))",
                demo_cids[:900] * 2,
            ).fetchone()[0]
        assert len(keys) == want

        other, _ = _service(demo_db, tmp_path / "other", 50)
        spec2 = await other.create_job(demo_cids[:900], None, None, where, None)
        uncut = await _lines(JobStream(other, spec2, None, None, False))
        assert close_enough(rest[-2]["data"]["aggregations"], uncut[-2]["data"]["aggregations"])
        await other.close()
        await svc.close()

    asyncio.run(run())


@pytest.mark.parametrize("how", ["shed 100", "shed 200", "shed 300", "shed 700", "unfinished"])
def test_a_fold_that_could_count_a_row_twice_or_miss_one_gives_nothing(
    demo_db: Path, demo_cids: list[str], tmp_path: Path, how: str
) -> None:
    """Shed while a page is half handed out (its rest is read again): no outcome. Shed
    between pages (nothing merged is read again): the fold goes on, and is right."""

    async def run() -> None:
        svc, _ = _service(demo_db, tmp_path, 100)
        spec = await svc.create_job(demo_cids[:400], None, None)
        reader = svc.reader(spec, "history")
        computed = json.loads(p.encode(await reader.aggregate()))
        outcomes: list[dict[str, p.Aggregate]] = []
        fold = AggregationFold(svc.domains["history"], outcomes.append)
        batches = JsonBatches(reader, None, 100, True, fold=fold)
        records, kept = 0, True
        while True:
            batch = await batches.next()
            records += len(batch.data)
            if how == f"shed {records}":
                held = batches._held  # white box: is a page half handed out?
                kept = held is None or held.at in (0, len(held.records))
                batches.shed()  # the client stopped reading: pages read ahead dropped
            if how == "unfinished" and records == 300:
                batches.close()
                kept = False
                break
            if not batch.more:
                break
        assert not fold.live
        if kept:
            assert len(outcomes) == 1
            assert close_enough(json.loads(p.encode(outcomes[0])), computed)
        else:
            assert outcomes == []
        if how != "unfinished":  # the records are whole all the same
            assert records == (await svc.totals(spec, "history")).records
        await svc.close()

    asyncio.run(run())


def test_shedding_half_a_page_happens(demo_db: Path, demo_cids: list[str], tmp_path: Path) -> None:
    """The shed cases above meet both sides: some shed mid-page, some between pages."""

    async def run() -> set[bool]:
        svc, _ = _service(demo_db, tmp_path, 100)
        spec = await svc.create_job(demo_cids[:400], None, None)
        sides = set()
        for at in (100, 200, 300, 700):
            batches = JsonBatches(svc.reader(spec, "history"), None, 100, True)
            for _ in range(at // 100):
                await batches.next()
            held = batches._held
            sides.add(held is None or held.at in (0, len(held.records)))
            batches.close()
        await svc.close()
        return sides

    assert asyncio.run(run()) == {True, False}


def _table_service(
    tmp_path: Path, columns: str, rows: list[tuple[Any, ...]], aggregations: str
) -> tuple[Service, CountingSource]:
    """A one-domain service over a table T(CID, ...) of `rows` (batches of 10)."""
    db = tmp_path / "t.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TABLE T (CID TEXT, {columns})")
        conn.executemany(f"INSERT INTO T VALUES ({', '.join('?' * len(rows[0]))})", rows)
    names = ["CID"] + [c.split()[0] for c in columns.split(", ")]
    domains = tmp_path / "domains.toml"
    domains.write_text(
        f'[domains.t]\ntable = "T"\nkey = "CID"\ntiebreak = "rowid"\ncolumns = {names!r}\n'.replace(
            "'", '"'
        )
        + aggregations
    )
    source = CountingSource(str(db))
    settings = Settings(batch_size=10, data_dir=tmp_path)
    store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
    return Service(
        settings, load_domains(domains), source, store, TokenCodec([TEST_SECRET])
    ), source


def test_a_page_json_cannot_hold_drops_the_fold(tmp_path: Path) -> None:
    """A BLOB sends the rest of the domain to rows: the aggregations are then computed."""
    rows = [(f"c{i:03}", b"\x00" if i == 40 else f"v{i % 3}", float(i)) for i in range(80)]
    aggregations = '[[domains.t.aggregations]]\nname = "n"\nkind = "sum"\ncolumn = "N"\n'

    async def run() -> None:
        svc, source = _table_service(tmp_path, "V, N REAL", rows, aggregations)
        spec = await svc.create_job([r[0] for r in rows], None, None)
        lines = await _lines(JobStream(svc, spec, None, None, True))
        assert lines[-1]["type"] == "complete" and lines[-1]["total_records"] == 80
        computed = [s for s in source.statements if s.startswith("SELECT COUNT(*), SUM(")]
        assert source.folded > 0 and len(computed) == 1  # folded first, then computed
        assert lines[-2]["data"]["aggregations"]["t"]["n"]["sum"] == sum(range(80))
        await svc.close()

    asyncio.run(run())


def test_one_stream_folds_a_domain_and_an_abandoned_fold_frees_it(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    async def run() -> None:
        svc, source = _service(demo_db, tmp_path)
        spec = await svc.create_job(demo_cids[:500], None, None)
        first = await svc.fold_for(spec, "history")
        assert first is not None
        assert await svc.fold_for(spec, "history") is None  # another stream reads plain pages
        svc.fold_ended(spec, first)  # the first stream left before its last page
        assert not first.live
        second = await svc.fold_for(spec, "history")
        assert second is not None and second.live
        svc.fold_ended(spec, second)

        await _lines(JobStream(svc, spec, None, None, True))  # folds and keeps them
        assert await svc.fold_for(spec, "history") is None  # known now
        before = source.aggregate + source.folded
        again = await _lines(JobStream(svc, spec, None, None, True))
        assert source.aggregate == 0 and source.folded == before  # plain pages this time
        assert again[-2]["type"] == "aggregation"
        await svc.close()

    asyncio.run(run())


async def _until_records(gen: Any, seen: list[dict[str, Any]], n: int) -> None:
    """Read `gen` until `n` records lines in all (the generator stays open)."""
    async for raw in gen:
        seen.append(json.loads(raw))
        if sum(x["type"] == "records" for x in seen) == n:
            return


def test_the_aggregation_asked_while_a_stream_folds_waits_for_the_fold(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    """`GET .../aggregation` (and a second stream) while the first stream folds: nothing is
    computed beside it; both get the fold's outcome, every domain (the stream starts
    folding materials after the request has its history)."""

    async def run() -> None:
        svc, source = _service(demo_db, tmp_path, 50)
        spec = await svc.create_job(demo_cids[:900], None, None)
        seen: list[dict[str, Any]] = []
        gen = JobStream(svc, spec, None, None, False).lines()
        await _until_records(gen, seen, 2)
        asked = asyncio.ensure_future(svc.aggregation(spec))
        second = asyncio.ensure_future(_lines(JobStream(svc, spec, None, None, True)))
        await asyncio.sleep(0.3)
        assert not asked.done()  # waiting for the fold, not computing
        async for raw in gen:
            seen.append(json.loads(raw))
        got = json.loads(p.encode(await asyncio.wait_for(asked, 30)))
        other = await asyncio.wait_for(second, 30)
        assert seen[-1]["type"] == other[-1]["type"] == "complete"
        assert got == seen[-2]["data"] == other[-2]["data"]
        assert source.aggregate == 0  # folded once, by the first stream
        assert close_enough(got["aggregations"], await _computed(svc, spec))
        await svc.close()

    asyncio.run(run())


@pytest.mark.parametrize("how", ["abandoned", "stalled"])
def test_a_fold_abandoned_or_stalled_leaves_the_waiter_to_compute(
    demo_db: Path, demo_cids: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The first stream's client leaves (the fold is abandoned) or stops reading (its pages
    stop coming): the request computes the aggregations rather than wait on."""
    monkeypatch.setattr(tallies, "FOLD_STALLED_SECONDS", 0.5)

    async def run() -> None:
        svc, source = _service(demo_db, tmp_path, 50)
        spec = await svc.create_job(demo_cids[:900], None, None)
        gen = JobStream(svc, spec, None, None, False).lines()
        await _until_records(gen, [], 2)
        asked = asyncio.ensure_future(svc.aggregation(spec))
        await asyncio.sleep(0.1)
        assert not asked.done() and source.aggregate == 0
        if how == "abandoned":
            await gen.aclose()
        got = json.loads(p.encode(await asyncio.wait_for(asked, 30)))
        assert source.aggregate > 0  # computed, without the first stream going on
        assert close_enough(got["aggregations"], await _computed(svc, spec))
        if how == "stalled":
            await gen.aclose()
        await svc.close()

    asyncio.run(run())


def test_infinite_and_large_values_fold_as_the_separate_pass_computes(tmp_path: Path) -> None:
    """SQLite's JSON writes an infinite REAL as 9e999 and keeps integers past 2**53: the
    fold reads them back as the rows path does."""
    values = [float("inf"), -float("inf"), 2**62 + 1, 0.1 + 0.2, 5e-324, None, 7, 7.0]
    rows = [(f"c{i:03}", f"g{i % 3}", values[i % len(values)]) for i in range(60)]
    aggregations = (
        '[[domains.t.aggregations]]\nname = "by_g"\nkind = "count"\nby = ["G", "N"]\n'
        '[[domains.t.aggregations]]\nname = "n"\nkind = "min_max"\ncolumn = "N"\n'
        '[[domains.t.aggregations]]\nname = "nd"\nkind = "distinct"\ncolumn = "N"\n'
    )

    async def run() -> None:
        svc, source = _table_service(tmp_path, "G TEXT, N", rows, aggregations)
        spec = await svc.create_job([r[0] for r in rows], None, None)
        lines = await _lines(JobStream(svc, spec, None, None, True))
        assert lines[-1]["type"] == "complete" and source.aggregate == 0 and source.folded > 1
        folded = lines[-2]["data"]["aggregations"]
        assert close_enough(folded, await _computed(svc, spec))
        assert folded["t"]["nd"]["count"] == 6  # inf, -inf, 2**62+1, 0.3.., 5e-324, 7
        await svc.close()

    asyncio.run(run())
