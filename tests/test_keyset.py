"""Keyset planning and SQL: pure text checks, and exhaustive walks on a real SQLite file."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svc.domains import parse_domains
from svc.keyset import (
    ORACLE,
    SQLITE,
    Key,
    Plan,
    aggregate_sql,
    distinct_sql,
    page_sql,
    totals_sql,
)
from tests.support import DOMAINS, expected_rows

HISTORY = DOMAINS["history"]


def test_page_sql_is_seekable_and_built_from_configuration_only() -> None:
    sql = page_sql(HISTORY, SQLITE, slots=3)
    assert sql == (
        "SELECT CONTAINERID, TXNDATE, EVENTNAME, SPECNAME, WORKCENTERNAME, EQUIPMENTNAME, QTY,"
        " QTY2, EMPLOYEENAME, COMMENTS, rowid AS TRACE_RID FROM MES_CONTAINER_HISTORY"
        " WHERE CONTAINERID IN (:c0, :c1, :c2)"
        " AND (:after_rid IS NULL OR CONTAINERID > :after_cid OR rowid > :after_rid)"
        " ORDER BY CONTAINERID, rowid LIMIT :limit"
    )


def test_oracle_sql_differs_only_in_rowid_and_row_limit() -> None:
    ora = page_sql(HISTORY, ORACLE)
    assert ora.endswith("ORDER BY CONTAINERID, ROWID FETCH FIRST :limit ROWS ONLY")
    lite = page_sql(HISTORY, SQLITE)
    assert (
        ora.replace("ROWID", "rowid").replace("FETCH FIRST :limit ROWS ONLY", "LIMIT :limit")
        == lite
    )
    assert " AS OF SCN :scn " in page_sql(HISTORY, ORACLE, snapshot=True)
    with pytest.raises(ValueError):
        page_sql(HISTORY, SQLITE, snapshot=True)
    assert totals_sql(HISTORY, ORACLE).count(":c") == 1000


def test_binds_fill_a_fixed_number_of_slots_from_the_last_key_on() -> None:
    plan = Plan([f"c{i:03d}" for i in range(10)], slots=4)
    assert plan.chunk_count == 3
    b = plan.page_binds(1, Key("c005", 99), 11)
    assert [b[f"c{i}"] for i in range(4)] == ["c005", "c006", "c007", None]
    assert (b["after_cid"], b["after_rid"], b["limit"]) == ("c005", 99, 11)
    assert plan.chunk_of(Key("c005", 99)) == 1
    fresh = plan.page_binds(2, None, 5)
    assert [fresh[f"c{i}"] for i in range(4)] == ["c008", "c009", None, None]
    assert fresh["after_rid"] is None
    # Every page of a job binds the same names: the statement text never changes.
    assert set(b) == set(fresh)


def _walk(conn: sqlite3.Connection, plan: Plan, limit: int) -> list[tuple[object, ...]]:
    sql = page_sql(HISTORY, SQLITE, slots=plan.slots)
    out: list[tuple[object, ...]] = []
    after: Key | None = None
    chunk = 0
    while chunk < plan.chunk_count:
        rows = conn.execute(sql, plan.page_binds(chunk, after, limit)).fetchall()
        out.extend(r[:-1] for r in rows)
        if rows:
            after = Key(rows[-1][0], rows[-1][-1])
        if len(rows) < limit:
            chunk += 1
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(slots=st.integers(1, 300), limit=st.integers(1, 500), n=st.integers(0, 800))
def test_walk_returns_exactly_the_rows_of_a_direct_query(
    demo_db: Path, demo_cids: list[str], slots: int, limit: int, n: int
) -> None:
    cids = sorted(demo_cids[:n])
    conn = sqlite3.connect(demo_db)
    try:
        assert _walk(conn, Plan(cids, slots), limit) == expected_rows(demo_db, cids, HISTORY)
    finally:
        conn.close()


def test_sqlite_plan_uses_the_index_and_no_sort(demo_db: Path, demo_cids: list[str]) -> None:
    plan = Plan(sorted(demo_cids))
    conn = sqlite3.connect(demo_db)
    try:
        steps = [
            r[3]
            for r in conn.execute(
                "EXPLAIN QUERY PLAN " + page_sql(HISTORY, SQLITE), plan.page_binds(0, None, 10)
            )
        ]
    finally:
        conn.close()
    assert any(re.search(r"USING INDEX MES_CONTAINER_HISTORY_CID", s) for s in steps), steps
    assert not any("TEMP B-TREE" in s for s in steps), steps


def test_offset_pages_differ_only_in_their_row_limiting_clause() -> None:
    import sqlglot

    lite = page_sql(HISTORY, SQLITE, offset=True)
    assert lite.endswith("ORDER BY CONTAINERID, rowid LIMIT :limit OFFSET :skip")
    ora = page_sql(HISTORY, ORACLE, offset=True)
    assert ora.endswith(
        "ORDER BY CONTAINERID, ROWID OFFSET :skip ROWS FETCH FIRST :limit ROWS ONLY"
    )
    tree = sqlglot.parse_one(ora, read="oracle")  # Oracle reads the skip and the fetch
    assert tree.args["offset"].expression.this == "skip"
    assert tree.args["limit"].args["count"].this == "limit"
    assert page_sql(HISTORY, SQLITE).removesuffix("LIMIT :limit") == lite.removesuffix(
        "LIMIT :limit OFFSET :skip"
    )


def test_aggregate_sql_has_the_shape_of_totals_sql() -> None:
    d = parse_domains(
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
    where = " FROM OWNER.EVENTS WHERE CONTAINERID IN (:c0, :c1)"
    assert totals_sql(d, SQLITE, slots=2).endswith(where)
    # One grouped query serves all counts, sums and min/max: grouped by all their `by`.
    assert aggregate_sql(d, SQLITE, slots=2) == (
        'SELECT EVENTNAME, "Step", TS AS TRACE_UTC_4, COUNT(*), SUM(QTY),'
        f" MIN(TS) AS TRACE_UTC_4_MIN, MAX(TS) AS TRACE_UTC_4_MAX{where}"
        ' GROUP BY EVENTNAME, "Step", TS'
    )
    assert distinct_sql(d, 2, SQLITE, slots=2) == (
        f'SELECT DISTINCT "Step"{where} AND "Step" IS NOT NULL'
    )
    # Oracle: the same text but for the UTC reading and the snapshot clause.
    ora = aggregate_sql(d, ORACLE, snapshot=True)
    assert ora.startswith(
        'SELECT EVENTNAME, "Step", SYS_EXTRACT_UTC(TS) AS TRACE_UTC_4, COUNT(*), SUM(QTY),'
        " MIN(SYS_EXTRACT_UTC(TS)) AS TRACE_UTC_4_MIN, MAX(SYS_EXTRACT_UTC(TS)) AS"
        " TRACE_UTC_4_MAX FROM OWNER.EVENTS AS OF SCN :scn WHERE CONTAINERID IN (:c0, "
    )
    assert ora.endswith(') GROUP BY EVENTNAME, "Step", SYS_EXTRACT_UTC(TS)')
    assert ora.count(":c") == 1000
    # Ungrouped: no GROUP BY; only distinct counts: no grouped query at all.
    only_sum = parse_domains(
        '[domains.h]\ntable = "T"\ncolumns = ["Q"]\n'
        'aggregations = [{ name = "s", kind = "sum", column = "Q" }]'
    )["h"]
    assert aggregate_sql(only_sum, SQLITE, slots=1) == (
        "SELECT COUNT(*), SUM(Q) FROM T WHERE CONTAINERID IN (:c0)"
    )
    only_distinct = parse_domains(
        '[domains.h]\ntable = "T"\ncolumns = ["Q"]\n'
        'aggregations = [{ name = "s", kind = "distinct", column = "Q" }]'
    )["h"]
    with pytest.raises(ValueError):
        aggregate_sql(only_distinct, SQLITE)
