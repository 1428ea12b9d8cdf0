"""What Oracle's cursor sharing and session state depend on, checked without a server: one
bind type pattern per statement (IN lists padded with their last value, a first page's
`after_rid` typed like later pages'), the statement cache sized from every statement text
the service sends and capped below OPEN_CURSORS, the session in UTC and TIMESTAMP WITH
LOCAL TIME ZONE refused."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import oracledb
import pytest

from svc.core.aggregates.queries import aggregate_shape, aggregate_sql, distinct_sql
from svc.core.domains import Domain, load_domains
from svc.core.sql.dialects import ORACLE
from svc.core.sql.pages import page_sql, totals_sql
from svc.core.sql.plan import Plan
from svc.core.sql.where import WhereShape, filter_binds, in_width, where_shape
from svc.engine.reader import DomainReader
from svc.errors import SourceMisconfigured
from svc.protocol import FilterValue, Range
from svc.sources import oracle as ora
from svc.sources import oracle_types
from svc.sources.demo import build_demo_database
from tests.support import DOMAINS, expected_rows
from tests.support.oracle_fakes import _Conn, _Cursor, _Pool, _source_with
from tests.support.oracle_on_sqlite import OracleTextOnSqlite, walk


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle-binds") / "demo.sqlite3"
    build_demo_database(path, cids=400, seed=25)
    return path


# --- IN lists: one bind type at every slot, the same rows ---------------------------------


@pytest.mark.parametrize("n", [3, 5, 7])
def test_a_number_in_list_binds_numbers_in_every_slot_and_keeps_its_rows(
    demo: Path, n: int
) -> None:
    """The live BIND_MISMATCH test's lists (3, 5, 7 values in 4, 8, 8 slots), on the Oracle
    text run by SQLite: padding repeats a value, so the rows are the unpadded list's."""
    with sqlite3.connect(demo) as conn:
        cids = sorted(r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS"))
        qtys = [r[0] for r in conn.execute("SELECT DISTINCT QTY FROM MES_CONTAINER_HISTORY")]
    values = sorted(qtys)[:n]
    assert len(values) == n
    where = {"QTY": values, "EVENTNAME": ["Hold"]}
    binds = filter_binds(DOMAINS["history"], ORACLE, where)
    slots = [b for name, b in binds.items() if name.startswith("f1_")]
    assert len(slots) == in_width(n) > n
    assert {type(b) for b in slots} == {type(values[0])} and None not in binds.values()
    assert slots[n:] == [values[-1]] * (in_width(n) - n)
    marks = ", ".join("?" * n)
    truth = expected_rows(demo, cids, DOMAINS["history"], f"QTY IN ({marks})", tuple(values))
    plan = Plan(cids, slots=150)
    source = OracleTextOnSqlite(demo)
    try:
        reader = DomainReader(source, DOMAINS["history"], plan, where={"QTY": values})
        rows = asyncio.run(walk(reader, [53]))
    finally:
        asyncio.run(source.close())
    assert [r[:-1] for r in rows] == truth and truth


def test_every_list_width_binds_one_type_per_column() -> None:
    for n in range(1, 70):
        lists: list[tuple[str, list[FilterValue]]] = [
            ("QTY", [float(i) for i in range(n)]),
            ("QTY", list(range(n))),
            ("EVENTNAME", [f"E{i}" for i in range(n)]),
        ]
        for column, values in lists:
            binds = filter_binds(DOMAINS["history"], ORACLE, {column: values})
            assert len(binds) == in_width(n)
            assert {type(b) for b in binds.values()} == {type(values[0])}, (n, column)


# --- after_rid: a NUMBER tie-break's first page --------------------------------------------


def test_a_first_page_binds_after_rid_as_a_number_once_later_pages_did() -> None:
    cursors: list[_Cursor] = []

    async def seen(cursor: _Cursor) -> None:
        cursors.append(cursor)

    source = _source_with(_Pool(_Conn(seen)))

    async def pages() -> None:
        await source.fetch("PAGE BY ID", {"after_rid": None, "after_cid": None, "limit": 5})
        await source.fetch("PAGE BY ID", {"after_rid": 41, "after_cid": "C1", "limit": 5})
        await source.fetch("PAGE BY ID", {"after_rid": None, "after_cid": None, "limit": 5})
        await source.fetch("PAGE BY ROWID", {"after_rid": "AAAR3s", "after_cid": "C", "limit": 5})
        await source.fetch("PAGE BY ROWID", {"after_rid": None, "after_cid": None, "limit": 5})
        await source.fetch("TOTALS", {"c0": "C"})

    asyncio.run(pages())
    # the very first page cannot know yet; every later first page binds NUMBER, not VARCHAR2
    assert [c.input_sizes for c in cursors] == [{}, {}, {"after_rid": int}, {}, {}, {}]


# --- the statement cache ---------------------------------------------------------------------


def _texts(domain: Domain, snapshot: bool, where: WhereShape) -> set[str]:
    """Every statement text the service sends for `domain` in one mode and filter shape."""
    texts = {
        page_sql(domain, ORACLE, snapshot=snapshot, where=where),
        page_sql(domain, ORACLE, offset=True, snapshot=snapshot, where=where),
        totals_sql(domain, ORACLE, snapshot=snapshot, where=where),
    }
    if aggregate_shape(domain) is not None:
        texts.add(aggregate_sql(domain, ORACLE, snapshot=snapshot, where=where))
    for agg in domain.aggregations:
        if agg.kind == "distinct" and agg.column is not None:
            texts.add(distinct_sql(domain, agg.column, ORACLE, snapshot=snapshot, where=where))
    return texts


def test_the_cache_counts_every_statement_text_of_the_demo() -> None:
    domains = load_domains()
    shapes: dict[str, list[WhereShape]] = {
        "history": [(), where_shape({"EVENTNAME": ["Hold"]}), where_shape({"QTY": Range(1)})],
        "materials": [
            (),
            where_shape({"MATERIALPARTNAME": ["P"]}),
            where_shape({"TXNDATE": Range("2025-01-01T00:00:00")}),
        ],
    }
    for name, d in domains.items():
        assert len(_texts(d, False, ())) == ora.domain_statements(d), name
    # The count: the demo in SCN mode, one filter shape per domain: 23 statements.
    scn_one_shape = set().union(
        *(_texts(d, True, ()) | _texts(d, True, shapes[n][1]) for n, d in domains.items())
    )
    checks = {ora.IOT_SQL, *(ora.rowid_probe_sql(d.table) for d in domains.values())}
    assert len(scn_one_shape) + len({ora.PING_SQL, ora.SNAPSHOT_SQL} | checks) == 23
    everything = set().union(
        *(
            _texts(d, snap, s)
            for n, d in domains.items()
            for snap in (False, True)
            for s in shapes[n]
        )
    )
    assert ora.statement_cache_size(domains.values(), snapshot=True) >= len(everything) + 2
    assert ora.statement_cache_size(domains.values()) >= len(everything) // 2 + 2


@pytest.mark.parametrize("count", [49, 100, 1000])
def test_the_cache_stays_below_the_default_open_cursors(count: int) -> None:
    many = [DOMAINS["history"]] * count
    assert ora.statement_cache_size(many, snapshot=True) == ora.MAX_STATEMENT_CACHE < 300


# --- the session's time zone; TIMESTAMP WITH LOCAL TIME ZONE -------------------------------


def test_every_session_runs_in_utc() -> None:
    """Thin mode sends the host's UTC offset as the session's TIME_ZONE at connect time;
    the session set-up overrides it in the same round trip as the NLS settings."""
    assert ora.SESSION_SETUP == (
        "ALTER SESSION SET NLS_SORT = BINARY NLS_COMP = BINARY TIME_ZONE = '+00:00'"
    )

    async def ok(cursor: _Cursor) -> None:
        pass

    pool = _Pool(_Conn(ok))
    asyncio.run(_source_with(pool)._init_session(pool.conn, None))  # type: ignore[arg-type]
    assert [sql for sql, _, _ in pool.conn.executed] == [ora.SESSION_SETUP]


class _Meta:
    def __init__(self, type_code: Any, name: str) -> None:
        self.type_code, self.name, self.precision, self.scale = type_code, name, 0, 0


class _VarCursor:
    arraysize = 100

    def var(self, typ: Any, arraysize: int, outconverter: Any = None) -> tuple[Any, ...]:
        return (typ, arraysize, outconverter)


@pytest.mark.parametrize("zoned", [oracledb.DB_TYPE_TIMESTAMP_LTZ, oracledb.DB_TYPE_TIMESTAMP_TZ])
def test_zoned_timestamps_not_read_in_utc_are_refused(zoned: Any) -> None:
    with pytest.raises(SourceMisconfigured) as info:
        oracle_types.output_type_handler(_VarCursor(), _Meta(zoned, "SHIFT_START"))
    assert not info.value.retryable and "timestamptz" in info.value.detail
    assert "SHIFT_START" not in info.value.detail  # the column is in the log only
