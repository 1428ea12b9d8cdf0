"""Live Oracle: the page query's plan, from DBMS_XPLAN.DISPLAY_CURSOR, in two questions.

(a) Sort elimination: can Oracle read a page off the CONTAINERID index in (CONTAINERID,
    ROWID) order at all? Under an index hint the plan must be an INLIST ITERATOR over an
    INDEX RANGE SCAN with WINDOW NOSORT STOPKEY (FETCH FIRST's sort-free form): no SORT,
    no WINDOW SORT, no UNION-ALL (OR-expansion of the keyset predicate). Asserted.
(b) Costing, in test_live_zcosting.py (it runs last: it may reload the demo tables).

Needs SELECT on V_$SQL, V_$SQL_PLAN and V_$SQL_PLAN_STATISTICS_ALL.
"""

from __future__ import annotations

import oracledb
import pytest

from svc.core.sql.dialects import ORACLE
from svc.core.sql.pages import page_sql
from svc.core.sql.plan import Key, Plan
from svc.sources.oracle_types import output_type_handler
from tests.oracle.live import LIVE, connect
from tests.support import DOMAINS

pytestmark = LIVE


def _plan_of(cur: oracledb.Cursor, sql: str) -> str:
    cur.execute(
        "SELECT SQL_ID, CHILD_NUMBER FROM V$SQL WHERE SQL_TEXT = :head"
        " AND PARSING_SCHEMA_NAME = USER ORDER BY LAST_ACTIVE_TIME DESC FETCH FIRST 1 ROW ONLY",
        {"head": sql[:1000]},
    )
    row = cur.fetchone()
    assert row is not None, "the page query is not in V$SQL"
    cur.execute(
        "SELECT PLAN_TABLE_OUTPUT FROM TABLE(DBMS_XPLAN.DISPLAY_CURSOR(:id, :child, 'TYPICAL'))",
        {"id": row[0], "child": row[1]},
    )
    return "\n".join(r[0] or "" for r in cur.fetchall())


def _run_pages(cur: oracledb.Cursor, sql: str, cids: list[str], key_index: int, limit: int) -> str:
    plan = Plan(cids)
    cur.outputtypehandler = output_type_handler
    cur.arraysize, cur.prefetchrows = limit, limit + 1
    cur.execute(sql, plan.page_binds(0, None, limit))
    first = cur.fetchall()
    assert len(first) == limit
    mid = Key(first[-1][key_index], first[-1][-1])  # a ROWID string, bound back as is
    cur.execute(sql, plan.page_binds(plan.chunk_of(mid), mid, limit))
    assert cur.fetchall()[0][-1] != mid.rid
    return _plan_of(cur, sql)


def _hinted(sql: str, table: str) -> str:
    return sql.replace("SELECT ", f"SELECT /*+ INDEX({table} {table}_CID) */ ", 1)


@pytest.mark.parametrize("limit", [5001, 101])
@pytest.mark.parametrize("domain", ["history", "materials"])
def test_a_sort_free_plan_exists_under_an_index_hint(
    job_cids: list[str], domain: str, limit: int
) -> None:
    d = DOMAINS[domain]
    sql = _hinted(page_sql(d, ORACLE), d.table)
    with connect() as conn, conn.cursor() as cur:
        text = _run_pages(cur, sql, job_cids, d.key_index, limit)
    assert "INLIST ITERATOR" in text, text
    assert "INDEX RANGE SCAN" in text and f"{d.table}_CID" in text, text
    assert "WINDOW NOSORT STOPKEY" in text, text
    for bad in ("SORT ORDER BY", "WINDOW SORT", "UNION-ALL", "TABLE ACCESS FULL"):
        assert bad not in text, f"{bad}:\n{text}"
