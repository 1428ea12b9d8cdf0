"""Column selection (`select`), without a server: the canonical form and its errors, the
narrowed domain, the SQL that reads only the selected columns (plus key and tie-break),
and the reader over a real SQLite file against a direct query."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svc.core.domains import parse_domains
from svc.core.select import narrow, normalize_select
from svc.core.sql.dialects import ORACLE, SQLITE
from svc.core.sql.pages import json_page_sql, page_sql
from svc.core.sql.plan import Plan
from svc.engine.batches import Batches, RowBatches
from svc.engine.json_batches import JsonBatches
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


def test_a_job_names_at_most_a_thousand_columns() -> None:
    """Checked before the names are: a body's strings stay bounded (svc.http.limits)."""
    names = ["CONTAINERID"] * 600
    with pytest.raises(InvalidSelect, match="at most 1000 columns"):
        normalize_select({"history": names, "materials": names}, DOMAINS, list(DOMAINS))
    assert normalize_select({"history": names}, DOMAINS, ["history"]) == {
        "history": ["CONTAINERID"]
    }


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


async def _records(batches: Batches) -> list[Any]:
    """Every record of `batches`, as the line's JSON decodes it."""
    out: list[Any] = []
    try:
        while True:
            batch = await batches.next()
            out.extend(json.loads(msgspec.json.encode(batch.data)))
            if not batch.more:
                return out
    finally:
        batches.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), limit=st.integers(1, 400), arrays=st.booleans())
def test_any_selection_streams_a_direct_query_of_its_columns_either_way(
    demo_db: Path, demo_cids: list[str], data: st.DataObject, limit: int, arrays: bool
) -> None:
    """Any subset of a domain's columns in any order: the rows path and the JSON the
    database builds both give the direct query's values, keyed and ordered as selected."""
    domain = DOMAINS[data.draw(st.sampled_from(["history", "materials"]))]
    names = data.draw(st.lists(st.sampled_from(domain.columns), min_size=1, unique=True))
    columns = normalize_select({domain.name: names}, DOMAINS, [domain.name])
    assert columns is not None
    chosen = columns[domain.name]
    assert chosen[: len(names)] == names or chosen == [domain.key, *names]
    cids = sorted(set(data.draw(st.lists(st.sampled_from(demo_cids), min_size=1, max_size=60))))

    async def run() -> tuple[list[Any], list[Any]]:
        source = SqliteSource(str(demo_db))
        try:
            reader = DomainReader(source, domain, Plan(cids, slots=16), columns=chosen)
            rows = await _records(RowBatches(reader, None, limit, arrays))
            built = await _records(JsonBatches(reader, None, limit, arrays))
            return rows, built
        finally:
            await source.close()

    with sqlite3.connect(demo_db) as conn:
        marks = ", ".join("?" * len(cids))
        truth = conn.execute(
            f"SELECT {', '.join(chosen)} FROM {domain.table}"
            f" WHERE {domain.key} IN ({marks}) ORDER BY {domain.key}, rowid",
            cids,
        ).fetchall()
    expected = [list(r) if arrays else dict(zip(chosen, r, strict=True)) for r in truth]
    rows, built = asyncio.run(run())
    assert rows == expected
    assert built == expected
    if not arrays:
        assert all(list(record) == chosen for record in built)
