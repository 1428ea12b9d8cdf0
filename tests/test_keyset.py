"""Keyset planning and SQL: pure text checks, and exhaustive walks on a real SQLite file."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svc.core.aggregates.queries import aggregate_sql, distinct_sql
from svc.core.domains import parse_domains
from svc.core.sql.dialects import ORACLE, SQLITE
from svc.core.sql.pages import json_page_sql, json_value_guard, page_sql, totals_sql
from svc.core.sql.plan import SLOTS, Key, Plan
from svc.core.sql.where import (
    ChunkOptions,
    FilterSlot,
    filter_binds,
    filter_sql,
    in_width,
    where_shape,
)
from svc.protocol import Condition, Range
from svc.sources.demo import build_demo_database
from tests.support import DOMAINS, FILTER_CASES, all_cids, expected_rows

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


# --- filters -------------------------------------------------------------------------------


def test_filter_sql_is_rendered_from_the_domain_file_with_named_binds() -> None:
    where: dict[str, Condition] = {
        "EVENTNAME": ["Hold", "Release", "Rework"],
        "TXNDATE": Range("2025-01-01T00:00:00"),
    }
    shape = where_shape(where)
    assert shape == (FilterSlot("EVENTNAME", "in", 4), FilterSlot("TXNDATE", "range", 0, True))
    assert filter_sql(HISTORY, SQLITE, shape) == (
        " AND EVENTNAME IN (:f0_0, :f0_1, :f0_2, :f0_3) AND TXNDATE >= :f1_lo"
    )
    assert filter_sql(HISTORY, ORACLE, shape) == (
        " AND EVENTNAME IN (:f0_0, :f0_1, :f0_2, :f0_3)"
        " AND TXNDATE >= TO_TIMESTAMP(:f1_lo, 'YYYYMMDDHH24MISSFF6')"
    )
    assert filter_binds(HISTORY, SQLITE, where) == {
        "f0_0": "Hold",
        "f0_1": "Release",
        "f0_2": "Rework",
        "f0_3": "Rework",  # padding repeats the last value: same rows, same bind type
        "f1_lo": "2025-01-01T00:00:00",
    }
    assert filter_binds(HISTORY, ORACLE, where)["f1_lo"] == "20250101000000000000"
    early = filter_binds(HISTORY, ORACLE, {"TXNDATE": Range("0999-01-02T03:04:05.000006")})
    assert early == {"f0_lo": "09990102030405000006"}
    assert filter_sql(HISTORY, SQLITE, ()) == "" and filter_binds(HISTORY, SQLITE, None) == {}
    # the job's filter sits between the keyset predicate and ORDER BY; totals honour it too
    assert page_sql(HISTORY, SQLITE, slots=1, where=shape) == page_sql(
        HISTORY, SQLITE, slots=1
    ).replace(" ORDER BY", filter_sql(HISTORY, SQLITE, shape) + " ORDER BY")
    assert totals_sql(HISTORY, SQLITE, where=shape).endswith(filter_sql(HISTORY, SQLITE, shape))
    with pytest.raises(ValueError):  # not declared filterable: never rendered
        filter_sql(HISTORY, SQLITE, (FilterSlot("COMMENTS", "in", 1),))
    with pytest.raises(ValueError):
        filter_sql(HISTORY, SQLITE, (FilterSlot("EVENTNAME", "range", 0, True),))


def test_statement_text_depends_on_the_filter_shape_only() -> None:
    assert [in_width(n) for n in (1, 2, 3, 5, 9, 500, 513, 1000)] == [
        1,
        2,
        4,
        8,
        16,
        512,
        1000,
        1000,
    ]
    texts = set()
    for values in (["A", "B", "C"], ["Hold"] + [f"x{i}" for i in range(3)], ["D", "E", "F", "G"]):
        where: dict[str, Condition] = {"EVENTNAME": list(values), "QTY": Range(1, 2)}
        sql = page_sql(HISTORY, ORACLE, where=where_shape(where))
        texts.add(sql)
        binds = Plan(["a"]).page_binds(0, None, 10) | filter_binds(HISTORY, ORACLE, where)
        assert set(binds) == set(re.findall(r":(\w+)", sql))
    assert len(texts) == 1
    assert page_sql(HISTORY, ORACLE, where=where_shape({"QTY": Range(1)})) != page_sql(
        HISTORY, ORACLE, where=where_shape({"QTY": Range(None, 1)})
    )


def _filtered_walk(
    conn: sqlite3.Connection, plan: Plan, limit: int, where: dict[str, Condition]
) -> list[tuple[object, ...]]:
    sql = page_sql(HISTORY, SQLITE, slots=plan.slots, where=where_shape(where))
    extra = filter_binds(HISTORY, SQLITE, where)
    out: list[tuple[object, ...]] = []
    after: Key | None = None
    chunk = 0
    while chunk < plan.chunk_count:
        rows = conn.execute(sql, plan.page_binds(chunk, after, limit) | extra).fetchall()
        out.extend(r[:-1] for r in rows)
        if rows:
            after = Key(rows[-1][0], rows[-1][-1])
        if len(rows) < limit:
            chunk += 1
    return out


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(sorted(FILTER_CASES)),
    slots=st.integers(1, 300),
    limit=st.integers(1, 300),
    n=st.integers(0, 800),
)
def test_filtered_walk_returns_exactly_the_rows_of_a_direct_query(
    demo_db: Path, demo_cids: list[str], kind: str, slots: int, limit: int, n: int
) -> None:
    where, predicate, params = FILTER_CASES[kind]
    cids = sorted(demo_cids[:n])
    truth = expected_rows(demo_db, cids, HISTORY, predicate, params)
    conn = sqlite3.connect(demo_db)
    try:
        assert _filtered_walk(conn, Plan(cids, slots), limit, where) == truth
        counts = [
            conn.execute(
                totals_sql(HISTORY, SQLITE, slots=slots, where=where_shape(where)),
                Plan(cids, slots).totals_binds(c) | filter_binds(HISTORY, SQLITE, where),
            ).fetchone()
            for c in range(Plan(cids, slots).chunk_count)
        ]
    finally:
        conn.close()
    assert sum(c[0] for c in counts) == len(truth)
    assert sum(c[1] for c in counts) == len({r[0] for r in truth})


def test_every_filter_kind_selects_some_but_not_all_rows(
    demo_db: Path, demo_cids: list[str]
) -> None:
    everything = len(expected_rows(demo_db, demo_cids, HISTORY))
    for kind, (_, predicate, params) in FILTER_CASES.items():
        assert (
            0 < len(expected_rows(demo_db, demo_cids, HISTORY, predicate, params)) < everything
        ), kind


@pytest.fixture(scope="module")
def mid_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 CIDs (~50,000 history rows): a chunk of 1000 CIDs is a fifth of the table.

    On the 1,500-CID test database a chunk is two thirds of the table, and SQLite rightly
    counts a filtered chunk with one scan instead of 1000 index probes; production tables
    are hundreds of chunks long, so the plan that matters is this one.
    """
    path = tmp_path_factory.mktemp("mid") / "demo.sqlite3"
    build_demo_database(path, cids=5000, seed=3)
    return path


def _plan_steps(db: Path, sql: str, binds: dict[str, object]) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, binds)]
    finally:
        conn.close()


def _seeks_the_key_index(steps: list[str]) -> bool:
    return (
        any("USING INDEX MES_CONTAINER_HISTORY_CID (CONTAINERID=?)" in s for s in steps)
        and not any(s.startswith("SCAN") for s in steps)
        and not any("TEMP B-TREE FOR ORDER BY" in s for s in steps)
    )


@pytest.mark.parametrize("kind", sorted(FILTER_CASES))
@pytest.mark.parametrize("offset", [False, True])
def test_sqlite_plan_of_a_filtered_page_still_seeks_the_key_index(
    demo_db: Path, demo_cids: list[str], offset: bool, kind: str
) -> None:
    where, _, _ = FILTER_CASES[kind]
    plan = Plan(sorted(demo_cids))
    binds = plan.page_binds(0, None, 10) | filter_binds(HISTORY, SQLITE, where)
    if offset:
        binds["skip"] = 5
    steps = _plan_steps(
        demo_db, page_sql(HISTORY, SQLITE, offset=offset, where=where_shape(where)), binds
    )
    assert _seeks_the_key_index(steps), steps


@pytest.mark.parametrize("kind", sorted(FILTER_CASES))
def test_sqlite_plan_of_filtered_totals_seeks_the_key_index(mid_db: Path, kind: str) -> None:
    where, _, _ = FILTER_CASES[kind]
    plan = Plan(sorted(all_cids(mid_db)))
    sql = totals_sql(HISTORY, SQLITE, where=where_shape(where))
    steps = _plan_steps(mid_db, sql, plan.totals_binds(1) | filter_binds(HISTORY, SQLITE, where))
    assert _seeks_the_key_index(steps), steps


def test_a_range_includes_from_and_excludes_to(demo_db: Path, demo_cids: list[str]) -> None:
    cids = sorted(demo_cids[:50])
    rows = expected_rows(demo_db, cids, HISTORY)
    at = rows[17][1]  # a TXNDATE that occurs
    conn = sqlite3.connect(demo_db)
    try:
        since = _filtered_walk(conn, Plan(cids), 100, {"TXNDATE": Range(at)})
        until = _filtered_walk(conn, Plan(cids), 100, {"TXNDATE": Range(None, at)})
    finally:
        conn.close()
    assert rows[17] in since and rows[17] not in until
    assert sorted(since + until, key=rows.index) == rows  # the two halves, nothing twice


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


def test_json_page_sql_wraps_the_keyset_page_of_guarded_values() -> None:
    d = parse_domains(
        '[domains.h]\ntable = "T"\ncolumns = ["CONTAINERID", "\\"It\'s\\""]\n'
        '[domains.h.filters]\nCONTAINERID = { op = "in" }\n'
    )["h"]
    quoted = '"It\'s"'
    values = (
        f"{json_value_guard('CONTAINERID')} AS TRACE_V0, {json_value_guard(quoted)} AS TRACE_V1"
    )
    rows = (
        f"SELECT {values}, rowid AS TRACE_RID FROM T WHERE CONTAINERID IN (:c0, :c1)"
        " AND (:after_rid IS NULL OR CONTAINERID > :after_cid OR rowid > :after_rid)"
        " AND CONTAINERID IN (:f0_0) ORDER BY CONTAINERID, rowid LIMIT :limit"
    )
    tail = f", json_group_array(TRACE_RID), count(*) FROM ({rows})"
    shape = where_shape({"CONTAINERID": ["a"]})
    assert json_page_sql(d, SQLITE, arrays=True, slots=2, where=shape) == (
        "SELECT '[' || coalesce(group_concat(json_array(TRACE_V0, TRACE_V1), ','), '') || ']'"
        + tail
    )
    assert json_page_sql(d, SQLITE, arrays=False, slots=2, where=shape) == (
        "SELECT '[' || coalesce(group_concat(json_object('CONTAINERID', TRACE_V0,"
        " 'It''s', TRACE_V1), ','), '') || ']'" + tail
    )
    assert json_value_guard("C") == (
        "CASE WHEN +C < '' THEN CASE WHEN +C IN (9e999, -9e999) THEN NULL"
        " WHEN +C = 0 AND atan2(+C, -1) < 0 THEN json('{-0') ELSE C END"
        " WHEN +C >= x'' THEN json('{' || hex(C)) ELSE C END"
    )
    with pytest.raises(ValueError):
        json_page_sql(d, ORACLE, arrays=True)


def test_chunk_statements_default_to_every_slot_no_snapshot_no_filter() -> None:
    explicit = ChunkOptions(slots=SLOTS, snapshot=False, where=())
    for dialect in (SQLITE, ORACLE):
        assert page_sql(HISTORY, dialect) == page_sql(HISTORY, dialect, **explicit)
        assert totals_sql(HISTORY, dialect) == totals_sql(HISTORY, dialect, **explicit)
        assert aggregate_sql(HISTORY, dialect) == aggregate_sql(HISTORY, dialect, **explicit)
        assert distinct_sql(HISTORY, 1, dialect) == distinct_sql(HISTORY, 1, dialect, **explicit)
    assert totals_sql(HISTORY, SQLITE).count(":c") == SLOTS
