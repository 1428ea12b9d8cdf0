"""The page query's plan on a live Oracle, shared by test_live_plan.py and
bench/oracle_costing.py: run two pages, then read the cursor's plan from DBMS_XPLAN."""

from __future__ import annotations

import oracledb

from svc.core.sql.plan import Key, Plan
from svc.sources.oracle_types import output_type_handler


def plan_of(cur: oracledb.Cursor, sql: str) -> str:
    """DBMS_XPLAN.DISPLAY_CURSOR of the latest cursor of `sql` in this schema."""
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


def run_pages(cur: oracledb.Cursor, sql: str, cids: list[str], key_index: int, limit: int) -> str:
    """A first page and one resumed mid-chunk (both cursors share the plan); its text."""
    plan = Plan(cids)
    cur.outputtypehandler = output_type_handler
    cur.arraysize, cur.prefetchrows = limit, limit + 1
    cur.execute(sql, plan.page_binds(0, None, limit))
    first = cur.fetchall()
    assert len(first) == limit
    mid = Key(first[-1][key_index], first[-1][-1])  # a ROWID string, bound back as is
    cur.execute(sql, plan.page_binds(plan.chunk_of(mid), mid, limit))
    assert cur.fetchall()[0][-1] != mid.rid
    return plan_of(cur, sql)
