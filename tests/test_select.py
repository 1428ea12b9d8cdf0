"""Column selection (`select`), without a server: the canonical form and its errors, the
narrowed domain, the SQL that reads only the selected columns (plus key and tie-break),
and the reader over a real SQLite file against a direct query."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest
import sqlglot

from svc.core.domains import parse_domains
from svc.core.select import narrow, normalize_select
from svc.core.sql.dialects import ORACLE, SQLITE
from svc.core.sql.pages import json_page_sql, page_sql
from svc.core.sql.plan import Plan
from svc.engine.reader import DomainReader
from svc.errors import InvalidSelect, UnknownDomain
from svc.sources.sqlite import SqliteSource
from tests.support import DOMAINS
from tests.support.oracle_on_sqlite import OracleTextOnSqlite, walk

_TZ = parse_domains(
    '[domains.h]\ntable = "T"\nkey = "K"\ncolumns = ["K", "A", "TS", \'"Lot No"\', "B"]\n'
    'timestamptz = ["TS"]\n'
    '[[domains.h.aggregations]]\nname = "a"\nkind = "count"\nby = ["A"]\n'
)["h"]


def test_the_canonical_selection_keeps_order_drops_repeats_and_adds_the_key() -> None:
    got = normalize_select(
        {"materials": ["UOM", "UOM", "CONTAINERID"], "history": ["TXNDATE"]},
        DOMAINS,
        ["history", "materials"],
    )
    assert got == {"history": ["CONTAINERID", "TXNDATE"], "materials": ["UOM", "CONTAINERID"]}
    assert list(got) == ["history", "materials"]  # the job's order
    assert normalize_select(None, DOMAINS, ["history"]) is None
    assert normalize_select({}, DOMAINS, ["history"]) is None


@pytest.mark.parametrize(
    ("select", "error", "words"),
    [
        ({"history": ["QTY", "QTYCONSUMED"]}, InvalidSelect, ["history.QTYCONSUMED", "QTY2"]),
        ({"history": ["qty"]}, InvalidSelect, ["history.qty"]),
        ({"materials": ["UOM"]}, UnknownDomain, ["'materials'"]),
    ],
)
def test_anything_but_a_declared_column_is_refused_by_name(
    select: dict[str, list[str]], error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as caught:
        normalize_select(select, DOMAINS, ["history"])
    for word in words:
        assert word in str(caught.value.detail), caught.value.detail  # type: ignore[attr-defined]


def test_a_narrowed_domain_keeps_sql_names_and_utc_reads_of_its_columns() -> None:
    columns = normalize_select({"h": ["Lot No", "TS"]}, {"h": _TZ}, ["h"])
    assert columns == {"h": ["K", "Lot No", "TS"]}
    d = narrow(_TZ, tuple(columns["h"]))
    assert d.columns == ("K", "Lot No", "TS") and d.select == ("K", '"Lot No"', "TS")
    assert d.timestamptz == frozenset({2}) and d.key_index == 0
    assert d.aggregations == () and _TZ.aggregations  # aggregations read the declared domain
    sql = page_sql(d, ORACLE)
    assert sql.startswith('SELECT K, "Lot No", SYS_EXTRACT_UTC(TS) AS TRACE_UTC_2, ROWID AS')
    assert " A," not in sql and " B," not in sql


def test_page_sql_reads_only_the_selected_columns_the_key_and_the_tiebreak() -> None:
    d = narrow(DOMAINS["history"], ("EVENTNAME", "CONTAINERID"))
    for sql in (page_sql(d, SQLITE), page_sql(d, SQLITE, offset=True)):
        head = re.match(r"SELECT (.*?) FROM", sql)
        assert head is not None and head.group(1) == "EVENTNAME, CONTAINERID, rowid AS TRACE_RID"
    json_sql = json_page_sql(d, SQLITE, arrays=False)
    assert "'EVENTNAME', TRACE_V0, 'CONTAINERID', TRACE_V1)" in json_sql
    assert "TXNDATE" not in json_sql and "COMMENTS" not in json_sql


def test_the_reader_of_a_selection_reads_what_a_direct_query_reads(
    demo_db: Path, demo_cids: list[str]
) -> None:
    cids = sorted(demo_cids)[:300]
    plan = Plan(cids, slots=128)  # pages cross chunk boundaries
    columns = ["QTY", "CONTAINERID", "EVENTNAME"]

    async def read_all() -> list[tuple[object, ...]]:
        source = SqliteSource(str(demo_db))
        try:
            reader = DomainReader(source, DOMAINS["history"], plan, columns=columns)
            assert reader.domain.columns == tuple(columns)
            rows: list[tuple[object, ...]] = []
            page = await reader.read(None, 97)
            rows.extend(page.rows)
            while page.more:
                page = await reader.read(page.last, 97)
                rows.extend(page.rows)
            return [row[:-1] for row in rows]  # without the tie-break
        finally:
            await source.close()

    with sqlite3.connect(demo_db) as conn:
        marks = ", ".join("?" * len(cids))
        truth = conn.execute(
            f"SELECT QTY, CONTAINERID, EVENTNAME FROM MES_CONTAINER_HISTORY"
            f" WHERE CONTAINERID IN ({marks}) ORDER BY CONTAINERID, rowid",
            cids,
        ).fetchall()
    assert len(truth) > 1000
    assert asyncio.run(read_all()) == truth


def test_the_oracle_text_of_a_selection_walks_like_a_direct_query(
    demo_db: Path, demo_cids: list[str]
) -> None:
    """The Oracle dialect's statements of a selected domain (the key not first), run on
    SQLite, and parsed as Oracle."""
    cids = sorted(demo_cids)[:500]
    plan = Plan(cids, slots=200)
    columns = ("UOM", "CONTAINERID", "QTYCONSUMED")
    narrowed = narrow(DOMAINS["materials"], columns)
    for offset in (False, True):
        parsed = sqlglot.parse_one(page_sql(narrowed, ORACLE, offset=offset), read="oracle")
        assert isinstance(parsed, sqlglot.exp.Select)

    async def run() -> list[tuple[object, ...]]:
        source = OracleTextOnSqlite(demo_db)
        try:
            reader = DomainReader(source, DOMAINS["materials"], plan, columns=columns)
            return [row[:-1] for row in await walk(reader, [61, 500])]
        finally:
            await source.close()

    with sqlite3.connect(demo_db) as conn:
        marks = ", ".join("?" * len(cids))
        truth = conn.execute(
            f"SELECT UOM, CONTAINERID, QTYCONSUMED FROM MES_CONTAINER_MATERIALS"
            f" WHERE CONTAINERID IN ({marks}) ORDER BY CONTAINERID, rowid",
            cids,
        ).fetchall()
    assert len(truth) > 500
    assert asyncio.run(run()) == truth
