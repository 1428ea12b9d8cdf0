"""The Oracle dialect's SQL, verified without an Oracle server.

- The Oracle dialect's page, totals and aggregate SQL run on a real SQLite demo file,
  rewriting only the row-limit clause, through the real reader: every page of multi-chunk
  jobs matches the SQLite dialect and a direct ORDER BY query; every declared aggregation
  matches the SQLite dialect's.
- Every Oracle statement parses with sqlglot's Oracle dialect (no "Command" fallback).
- One constant statement text, with the same bind names, for every position.
- A job's filters: the Oracle text (``TO_TIMESTAMP`` of digit-only binds, emulated on SQLite by
  a function that reads the same mask) walks and counts like SQLite, and parses as Oracle.
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from svc.core.aggregates.queries import aggregate_shape, aggregate_sql, distinct_sql
from svc.core.domains import Domain, parse_domains
from svc.core.sql.dialects import ORACLE
from svc.core.sql.pages import page_sql, totals_sql
from svc.core.sql.plan import SLOTS, Key, Plan
from svc.core.sql.where import filter_binds, filter_sql, where_shape
from svc.engine.reader import DomainReader
from svc.protocol import Range
from svc.sources import Lane, Row, Source, migrate
from svc.sources import oracle as ora
from svc.sources.demo import build_demo_database
from svc.sources.migrate import migration_files
from svc.sources.sqlite import SqliteSource
from tests.support import DOMAINS, FILTER_CASES, expected_rows
from tests.support.oracle_on_sqlite import OracleTextOnSqlite, walk

# --- (a) the Oracle SQL text, executed on SQLite ------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle-sql") / "demo.sqlite3"
    build_demo_database(path, cids=2000, seed=11)
    return path


@pytest.fixture(scope="module")
def cids(demo: Path) -> list[str]:
    with sqlite3.connect(demo) as conn:
        return sorted(r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS"))


def _job(cids: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    # Unknown CIDs sort between and after real ones: chunks with no rows at all occur.
    return sorted(set(rng.sample(cids, n)) | {f"{rng.getrandbits(64):016x}z" for _ in range(40)})


@pytest.mark.parametrize(
    ("n", "slots", "limits"),
    [(700, 50, [37]), (700, 50, [1, 5000, 13]), (2000, SLOTS, [5000]), (1200, SLOTS, [999, 1])],
)
@pytest.mark.parametrize("domain", ["history", "materials"])
def test_oracle_page_sql_walks_exactly_like_sqlite(
    demo: Path, cids: list[str], n: int, slots: int, limits: list[int], domain: str
) -> None:
    job = _job(cids, n, seed=n + slots)
    plan = Plan(job, slots=slots)
    truth = expected_rows(demo, job, DOMAINS[domain])

    async def run() -> tuple[list[Row], list[Row], list[Row]]:
        oracle_text, lite = OracleTextOnSqlite(demo), SqliteSource(str(demo))
        try:
            a = await walk(DomainReader(oracle_text, DOMAINS[domain], plan), limits)
            b = await walk(DomainReader(lite, DOMAINS[domain], plan), limits)
            # Resume from arbitrary keys, chunk boundaries included: the rest is exact.
            rng = random.Random(n)
            for k in sorted(rng.sample(range(1, len(a)), 8)) + [len(a)]:
                key = Key(a[k - 1][DOMAINS[domain].key_index], a[k - 1][-1])
                rest = await walk(DomainReader(oracle_text, DOMAINS[domain], plan), limits, key)
                assert rest == a[k:], f"resume after row {k}"
            return a, b, truth
        finally:
            await oracle_text.close()
            await lite.close()

    a, b, truth_rows = asyncio.run(run())
    assert plan.chunk_count > 1
    assert a == b
    assert [r[:-1] for r in a] == truth_rows


@pytest.mark.parametrize("domain", ["history", "materials"])
def test_oracle_totals_sql_counts_like_sqlite(demo: Path, cids: list[str], domain: str) -> None:
    plan = Plan(_job(cids, 900, seed=3), slots=100)

    async def run() -> tuple[Any, Any]:
        oracle_text, lite = OracleTextOnSqlite(demo), SqliteSource(str(demo))
        try:
            return (
                await DomainReader(oracle_text, DOMAINS[domain], plan).chunk_totals(),
                await DomainReader(lite, DOMAINS[domain], plan).chunk_totals(),
            )
        finally:
            await oracle_text.close()
            await lite.close()

    got, want = asyncio.run(run())
    assert got == want and len(got) == plan.chunk_count
    assert sum(c.records for c in got) > 0 and sum(c.containers for c in got) == 900


@pytest.mark.parametrize("domain", ["history", "materials"])
def test_oracle_aggregate_sql_aggregates_like_sqlite(
    demo: Path, cids: list[str], domain: str
) -> None:
    plan = Plan(_job(cids, 900, seed=4), slots=100)
    assert DOMAINS[domain].aggregations

    async def run() -> tuple[Any, Any]:
        oracle_text, lite = OracleTextOnSqlite(demo), SqliteSource(str(demo))
        try:
            return (
                await DomainReader(oracle_text, DOMAINS[domain], plan).aggregate(),
                await DomainReader(lite, DOMAINS[domain], plan).aggregate(),
            )
        finally:
            await oracle_text.close()
            await lite.close()

    got, want = asyncio.run(run())
    assert got == want and set(got) == {a.name for a in DOMAINS[domain].aggregations}


# --- (b) every Oracle statement parses with sqlglot's Oracle dialect -------------------------


def _parse(sql: str) -> exp.Expr:
    tree = sqlglot.parse_one(sql, read="oracle")  # raises on a syntax error
    assert tree is not None
    assert not isinstance(tree, exp.Command), f"sqlglot fell back to a Command: {sql[:80]}"
    return tree


@pytest.mark.parametrize("snapshot", [False, True])
@pytest.mark.parametrize("domain", ["history", "materials"])
def test_page_sql_parses_as_oracle(domain: str, snapshot: bool) -> None:
    d = DOMAINS[domain]
    tree = _parse(page_sql(d, ORACLE, snapshot=snapshot))
    assert isinstance(tree, exp.Select)
    fetch = tree.args["limit"]
    assert isinstance(fetch, exp.Fetch) and fetch.args["count"] == exp.Placeholder(this="limit")
    in_list = tree.find(exp.In)
    assert in_list is not None and in_list.this == exp.column(d.key)
    assert [e.this for e in in_list.expressions] == [f"c{i}" for i in range(SLOTS)]
    assert [o.this.name for o in tree.args["order"].expressions] == [d.key, "ROWID"]
    version = tree.find(exp.Version)
    if snapshot:
        assert version is not None and version.args["kind"] == "AS OF"
        assert version.name == "SCN" and version.expression == exp.Placeholder(this="scn")
    else:
        assert version is None


@pytest.mark.parametrize("snapshot", [False, True])
@pytest.mark.parametrize("domain", ["history", "materials"])
def test_totals_sql_parses_as_oracle(domain: str, snapshot: bool) -> None:
    tree = _parse(totals_sql(DOMAINS[domain], ORACLE, snapshot=snapshot))
    assert isinstance(tree, exp.Select) and tree.find(exp.Count) is not None
    assert (tree.find(exp.Version) is not None) == snapshot


_AGGREGATING = parse_domains(
    """
    [domains.h]
    table = "OWNER.EVENTS"
    columns = ["CONTAINERID", "EVENTNAME", '"Step"', "QTY", "TS"]
    timestamptz = ["TS"]
    aggregations = [
      { name = "count", kind = "count", by = ["EVENTNAME", '"Step"'] },
      { name = "sum", kind = "sum", column = "QTY" },
      { name = "sum_by", kind = "sum", column = "QTY", by = ["TS"] },
      { name = "span", kind = "min_max", column = "TS" },
      { name = "distinct", kind = "distinct", column = '"Step"' },
    ]
    """
)["h"]


@pytest.mark.parametrize("snapshot", [False, True])
@pytest.mark.parametrize("domain", [*DOMAINS.values(), _AGGREGATING], ids=[*DOMAINS, "quoted-tstz"])
def test_aggregate_sql_parses_as_oracle(domain: Domain, snapshot: bool) -> None:
    shape = aggregate_shape(domain)
    statements = [] if shape is None else [aggregate_sql(domain, ORACLE, snapshot=snapshot)]
    distinct = [a.column for a in domain.aggregations if a.kind == "distinct"]
    statements += [distinct_sql(domain, c, ORACLE, snapshot=snapshot) for c in distinct if c]
    assert statements
    plan = Plan([f"c{i:04d}" for i in range(2500)])
    for sql in statements:
        tree = _parse(sql)
        assert isinstance(tree, exp.Select)
        assert (tree.find(exp.Version) is not None) == snapshot
        in_list = tree.find(exp.In)
        assert in_list is not None and len(in_list.expressions) == SLOTS
        group = tree.args.get("group")
        if shape is not None and sql.startswith("SELECT") and "DISTINCT" not in sql:
            assert tree.find(exp.Count) is not None
            assert (group is not None) == bool(shape.groups), sql
            if group is not None:
                assert [e.sql("oracle") for e in group.expressions] == [
                    ("SYS_EXTRACT_UTC(TS)" if i in domain.timestamptz else domain.select[i])
                    for i in shape.groups
                ]
        else:
            assert tree.args.get("distinct") is not None and group is None
        # One constant text per statement: its binds are the totals' binds.
        scn = 5 if snapshot else None
        assert frozenset(plan.totals_binds(2, scn)) == frozenset(_placeholders(sql))


def test_source_statements_parse_as_oracle() -> None:
    for sql in (ora.SNAPSHOT_SQL, ora.PING_SQL, migrate._MIGRATIONS_TABLE):
        _parse(sql)
    _parse("SELECT NAME FROM TRACE_SCHEMA_MIGRATIONS")
    _parse("INSERT INTO TRACE_SCHEMA_MIGRATIONS (NAME, APPLIED_AT) VALUES (:name, :at)")


def _table(tree: exp.Expr) -> str:
    table = tree.find(exp.Table)
    assert table is not None
    return table.name


def test_oracle_migrations_split_and_parse() -> None:
    files = migration_files("oracle")
    assert [f.name for f in files] == ["001_demo_tables.sql", "002_containerid_indexes.sql"]
    trees = [_parse(s) for f in files for s in migrate.split_statements(f.read_text("utf-8"))]
    tables = {_table(t): t for t in trees if t.args.get("kind") == "TABLE"}
    assert set(tables) == {
        "MES_CONTAINER_HISTORY",
        "MES_CONTAINER_MATERIALS",
        "TRACE_DEMO_CONTAINERS",
    }
    indexes = [t for t in trees if t.args.get("kind") == "INDEX"]
    assert len(indexes) == 2
    # The same tables and columns as the SQLite demo schema, and as the domains select.
    lite = sqlite3.connect(":memory:")
    for f in migration_files("sqlite"):
        lite.executescript(f.read_text("utf-8"))
    for name, tree in tables.items():
        columns = [c.name for c in tree.find_all(exp.ColumnDef)]
        assert columns == [r[1] for r in lite.execute(f"PRAGMA table_info({name})")]
    for d in DOMAINS.values():
        assert set(d.columns) <= {c.name for c in tables[d.table].find_all(exp.ColumnDef)}


def test_split_statements_honours_quotes_comments_and_plsql() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE T (A VARCHAR2(10) DEFAULT 'x;y' NOT NULL); /* block; comment */
    INSERT INTO T VALUES ('it''s; fine');
    INSERT INTO T VALUES (q'[a ' ; b]');
    BEGIN
      DBMS_STATS.GATHER_TABLE_STATS(USER, 'T'); -- keeps its semicolons
    END;
    /
    CREATE OR REPLACE PROCEDURE P AS BEGIN NULL; END;
    /
    SELECT "odd;name" FROM T
    """
    assert migrate.split_statements(script) == [
        "CREATE TABLE T (A VARCHAR2(10) DEFAULT 'x;y' NOT NULL)",
        "INSERT INTO T VALUES ('it''s; fine')",
        "INSERT INTO T VALUES (q'[a ' ; b]')",
        "BEGIN\n      DBMS_STATS.GATHER_TABLE_STATS(USER, 'T'); \n    END;",
        "CREATE OR REPLACE PROCEDURE P AS BEGIN NULL; END;",
        'SELECT "odd;name" FROM T',
    ]
    with pytest.raises(ValueError):
        migrate.split_statements("SELECT 'open")


# --- (e) one statement text for every position -------------------------------------------


def _placeholders(sql: str) -> set[str]:
    return set(re.findall(r":(\w+)", sql))


@pytest.mark.parametrize("snapshot", [False, True])
def test_statement_text_and_bind_names_are_the_same_at_every_position(
    cids: list[str], snapshot: bool
) -> None:
    d: Domain = DOMAINS["history"]
    plan = Plan(cids[:2500], slots=SLOTS)
    scn = 123456 if snapshot else None
    sql = page_sql(d, ORACLE, snapshot=snapshot)
    assert sql.count(":c") == SLOTS <= 1000  # ORA-01795: at most 1000 expressions in a list
    positions: list[Key | None] = [None] + [Key(c, "AAAR3sAAEAAAACXAAA") for c in cids[:2500:97]]
    names = {frozenset(plan.page_binds(plan.chunk_of(k), k, 5001, scn)) for k in positions}
    assert names == {frozenset(_placeholders(sql))}
    totals = totals_sql(d, ORACLE, snapshot=snapshot)
    assert {frozenset(plan.totals_binds(c, scn)) for c in range(plan.chunk_count)} == {
        frozenset(_placeholders(totals))
    }
    # The reader sends one text per statement, whatever the position.
    readers = {DomainReader(_NoSource(), d, plan, scn)._sql for _ in range(3)}
    assert readers == {sql}


def test_a_walk_sends_one_page_text_only(demo: Path, cids: list[str]) -> None:
    source = OracleTextOnSqlite(demo)
    plan = Plan(_job(cids, 1500, seed=5), slots=SLOTS)
    rows = asyncio.run(walk(DomainReader(source, DOMAINS["materials"], plan), [333]))
    source.conn.close()
    assert len(rows) > 333 * 3
    assert len({sql for sql, _ in source.seen}) == 1
    assert len({names for _, names in source.seen}) == 1


class _NoSource(Source):
    dialect = ORACLE

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        raise AssertionError("no query expected")

    async def ping(self) -> None:
        pass


# --- (f) a job's filters --------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FILTER_CASES))
def test_filtered_oracle_sql_walks_and_counts_exactly_like_sqlite(
    demo: Path, cids: list[str], kind: str
) -> None:
    where, predicate, params = FILTER_CASES[kind]
    d = DOMAINS["history"]
    job = _job(cids, 1500, seed=len(kind))
    plan = Plan(job, slots=200)
    truth = expected_rows(demo, job, d, predicate, params)

    async def run() -> tuple[list[Row], list[Row], Any, Any]:
        oracle_text, lite = OracleTextOnSqlite(demo), SqliteSource(str(demo))
        try:
            a_reader = DomainReader(oracle_text, d, plan, where=where)
            b_reader = DomainReader(lite, d, plan, where=where)
            a, b = await walk(a_reader, [77, 5000]), await walk(b_reader, [77, 5000])
            # an offset page enters mid-domain: the same rows on both dialects
            counts = [c.records for c in await b_reader.chunk_totals()]
            at_a = await a_reader.read_at(len(a) // 2, 50, counts)
            at_b = await b_reader.read_at(len(a) // 2, 50, counts)
            assert at_a.rows == at_b.rows == b[len(a) // 2 : len(a) // 2 + 50]
            return a, b, await a_reader.chunk_totals(), await b_reader.chunk_totals()
        finally:
            await oracle_text.close()
            await lite.close()

    a, b, totals_a, totals_b = asyncio.run(run())
    assert a == b and [r[:-1] for r in a] == truth and truth
    assert totals_a == totals_b and sum(t.records for t in totals_a) == len(truth)


def _filters_of(tree: exp.Expr) -> list[exp.Expr]:
    """The predicates ANDed to the WHERE clause after the key IN list."""
    where = tree.args["where"].this
    parts: list[exp.Expr] = []
    while isinstance(where, exp.And):
        parts.insert(0, where.expression)
        where = where.this
    parts.insert(0, where)
    return parts


@pytest.mark.parametrize("snapshot", [False, True])
def test_filtered_sql_parses_as_oracle(snapshot: bool) -> None:
    d = DOMAINS["history"]
    where, _, _ = FILTER_CASES["range-both+in"]
    shape = where_shape(where)
    page = _parse(page_sql(d, ORACLE, snapshot=snapshot, where=shape))
    parts = _filters_of(page)
    assert isinstance(parts[0], exp.In) and parts[0].this == exp.column(d.key)
    assert isinstance(parts[1], exp.Paren)  # the keyset predicate
    ge, lt, in_list = parts[2:]
    assert isinstance(ge, exp.GTE) and isinstance(lt, exp.LT) and isinstance(in_list, exp.In)
    assert ge.this == exp.column("TXNDATE") and isinstance(ge.expression, exp.StrToTime)
    assert ge.expression.this == exp.Placeholder(this="f0_lo")
    assert lt.expression.this == exp.Placeholder(this="f0_hi")
    assert [e.this for e in in_list.expressions] == ["f1_0", "f1_1", "f1_2", "f1_3"]
    assert isinstance(page.args["limit"], exp.Fetch)
    totals = _parse(totals_sql(d, ORACLE, snapshot=snapshot, where=shape))
    assert [type(x) for x in _filters_of(totals)] == [exp.In, exp.GTE, exp.LT, exp.In]
    offset = _parse(page_sql(d, ORACLE, snapshot=snapshot, offset=True, where=shape))
    assert offset.args["offset"].expression.this == "skip"


def test_a_timestamptz_filter_compares_in_utc() -> None:
    d = parse_domains(
        '[domains.e]\ntable = "EV"\ncolumns = ["TS"]\ntimestamptz = ["TS"]\n'
        '[domains.e.filters]\nTS = { op = "range", type = "timestamptz" }\n'
    )["e"]
    sql = filter_sql(d, ORACLE, where_shape({"TS": Range("2025-01-01T00:00:00")}))
    assert sql == (" AND SYS_EXTRACT_UTC(TS) >= TO_TIMESTAMP(:f0_lo, 'YYYYMMDDHH24MISSFF6')")
    _parse(page_sql(d, ORACLE, where=where_shape({"TS": Range("2025-01-01T00:00:00")})))


def test_filtered_statement_text_and_bind_names_are_the_same_at_every_position(
    cids: list[str],
) -> None:
    d = DOMAINS["history"]
    where, _, _ = FILTER_CASES["range-both+in"]
    plan = Plan(cids[:2500], slots=SLOTS)
    sql = page_sql(d, ORACLE, where=where_shape(where))
    extra = filter_binds(d, ORACLE, where)
    positions: list[Key | None] = [None] + [Key(c, "AAAR3sAAEAAAACXAAA") for c in cids[:2500:97]]
    names = {frozenset(plan.page_binds(plan.chunk_of(k), k, 5001) | extra) for k in positions}
    assert names == {frozenset(_placeholders(sql))}
    totals = totals_sql(d, ORACLE, where=where_shape(where))
    assert frozenset(plan.totals_binds(0) | extra) == frozenset(_placeholders(totals))
    reader = DomainReader(_NoSource(), d, plan, where=where)
    assert reader._sql == sql and reader._totals_query == totals
