"""A unique-column tie-break and quoted identifiers, on both dialects.

A table whose ROWID is no usable tie-break (an index-organized table, a view with a join,
DISTINCT or GROUP BY) is read with ``tiebreak = "<unique column>"`` and an index on
(key, tie-break). Here such a table, with a reserved-word and a mixed-case column and a
quoted table name, is read through the real reader by the SQLite source and by the Oracle
dialect's text run on SQLite: keyset walks, resumes, offset entry, the query plan, and
the names records carry.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from svc import protocol as p
from svc.core.domains import Domain, parse_domains
from svc.core.sql.dialects import ORACLE, SQLITE
from svc.core.sql.pages import page_sql
from svc.core.sql.plan import Key, Plan
from svc.engine.reader import DomainReader
from svc.sources import Row, Source
from svc.sources.sqlite import SqliteSource
from tests.support import expected_rows
from tests.support.oracle_on_sqlite import OracleTextOnSqlite, walk

DOMAIN_FILE = """
[domains.events]
table = '"Trace Events"'
key = '"Cid"'
tiebreak = 'EVENT_ID'
columns = ['"Cid"', '"ORDER"', 'EVENT_ID', '"Note"']
"""


@pytest.fixture(scope="module")
def domain() -> Domain:
    return parse_domains(DOMAIN_FILE)["events"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiebreak") / "events.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE "Trace Events" (
            "Cid" TEXT NOT NULL, "ORDER" INTEGER, EVENT_ID INTEGER NOT NULL UNIQUE, "Note" TEXT
        );
        CREATE INDEX TRACE_EVENTS_CID_ID ON "Trace Events" ("Cid", EVENT_ID);
        """
    )
    rng = random.Random(5)
    ids = rng.sample(range(1, 10**7), 12_000)  # unique, in no relation to rowid or CID order
    conn.executemany(
        'INSERT INTO "Trace Events" VALUES (?, ?, ?, ?)',
        [
            (f"c{rng.randrange(1500):05d}", i % 7, ids[i], rng.choice([None, "ok"]))
            for i in range(12_000)
        ],
    )
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return path


def _job(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return sorted({f"c{rng.randrange(1600):05d}" for _ in range(n)})


def _sources(db: Path) -> list[Source]:
    return [SqliteSource(str(db)), OracleTextOnSqlite(db)]


@pytest.mark.parametrize(("slots", "limits"), [(40, [37]), (1000, [500, 1, 999])])
def test_keyset_walks_and_resumes_on_a_unique_column(
    db: Path, domain: Domain, slots: int, limits: list[int]
) -> None:
    job = _job(900, slots)
    plan = Plan(job, slots=slots)
    truth = expected_rows(db, job, domain)

    async def run() -> list[list[Row]]:
        walks = []
        for source in _sources(db):
            try:
                rows = await walk(DomainReader(source, domain, plan), limits)
                rng = random.Random(slots)
                for k in sorted(rng.sample(range(1, len(rows)), 6)) + [len(rows)]:
                    key = Key(rows[k - 1][domain.key_index], rows[k - 1][-1])
                    rest = await walk(DomainReader(source, domain, plan), limits, key)
                    assert rest == rows[k:], f"{source.dialect.name}: resume after row {k}"
                walks.append(rows)
            finally:
                await source.close()
        return walks

    lite, oracle_text = asyncio.run(run())
    assert lite == oracle_text
    assert [r[:-1] for r in lite] == truth and len(truth) > 2000
    assert all(isinstance(r[-1], int) for r in lite)  # the tie-break is the unique column
    assert [r[-1] for r in lite] == [r[2] for r in lite]


def test_offset_entry_then_keyset_on_a_unique_column(db: Path, domain: Domain) -> None:
    job = _job(600, 3)
    plan = Plan(job, slots=50)
    truth = expected_rows(db, job, domain)

    async def run() -> None:
        for source in _sources(db):
            try:
                reader = DomainReader(source, domain, plan)
                chunks = [c.records for c in await reader.chunk_totals()]
                assert sum(chunks) == len(truth)
                for offset in (0, 1, 49, chunks[0], chunks[0] + 3, len(truth) - 2):
                    batch = await reader.read_at(offset, 77, chunks)
                    assert [r[:-1] for r in batch.rows] == truth[offset : offset + 77]
            finally:
                await source.close()

    asyncio.run(run())


def test_sqlite_plan_reads_the_key_tiebreak_index_without_a_sort(db: Path, domain: Domain) -> None:
    plan = Plan(_job(900, 1))
    with sqlite3.connect(db) as conn:
        for sql, binds in (
            (page_sql(domain, SQLITE), plan.page_binds(0, None, 501)),
            (page_sql(domain, SQLITE), plan.page_binds(0, Key(plan.cids[7], 12345), 501)),
            (page_sql(domain, SQLITE, offset=True), {**plan.page_binds(0, None, 9), "skip": 5}),
        ):
            steps = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, binds)]
            assert any("USING INDEX TRACE_EVENTS_CID_ID" in s for s in steps), steps
            assert not any("TEMP B-TREE" in s or "SCAN" in s.split()[0] for s in steps), steps


def test_quoted_identifiers_reach_the_sql_quoted_and_records_unquoted(
    db: Path, domain: Domain
) -> None:
    sql = page_sql(domain, ORACLE)
    tree = sqlglot.parse_one(sql, read="oracle")
    assert isinstance(tree, exp.Select)
    order = [o.this for o in tree.args["order"].expressions]
    assert [(c.name, c.this.quoted) for c in order] == [("Cid", True), ("EVENT_ID", False)]
    table = tree.find(exp.Table)
    assert table is not None and table.name == "Trace Events" and table.this.quoted
    assert domain.columns == ("Cid", "ORDER", "EVENT_ID", "Note")

    async def first_page() -> list[Row]:
        source = SqliteSource(str(db))
        try:
            return (await DomainReader(source, domain, Plan(_job(50, 2))).read(None, 3)).rows
        finally:
            await source.close()

    rows = asyncio.run(first_page())
    line: Any = p.line_decoder.decode(
        p.encode_line(p.Records("events", 1, p.shape_records(rows, domain.columns, False), "t"))
    )
    assert list(line.data[0]) == ["Cid", "ORDER", "EVENT_ID", "Note"]
    assert len(rows) == 3
