"""Live Oracle: the page query's plan, from DBMS_XPLAN.DISPLAY_CURSOR.

It must seek the CONTAINERID index (INDEX RANGE SCAN, under an INLIST ITERATOR) and read
rows in (CONTAINERID, ROWID) order off it: no SORT ORDER BY, and, since FETCH FIRST is
implemented as a ROW_NUMBER window, no WINDOW SORT either (WINDOW NOSORT STOPKEY is the
sort-free form). Needs SELECT on V_$SQL, V_$SQL_PLAN and V_$SQL_PLAN_STATISTICS_ALL.

The optimizer costs this against the data it has: on a tiny table a full scan may win.
The demo loader gathers statistics; if this fails on your own tables, the printed plan
says why.
"""

from __future__ import annotations

import oracledb
import pytest

from svc.keyset import ORACLE, Key, Plan, page_sql
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


@pytest.mark.parametrize("limit", [5001, 101])
@pytest.mark.parametrize("domain", ["history", "materials"])
def test_page_query_is_an_index_range_scan_without_a_sort(
    job_cids: list[str], domain: str, limit: int
) -> None:
    d = DOMAINS[domain]
    sql = page_sql(d, ORACLE)
    plan = Plan(job_cids)
    with connect() as conn, conn.cursor() as cur:
        cur.arraysize, cur.prefetchrows = limit, limit + 1
        cur.execute(sql, plan.page_binds(0, None, limit))
        first = cur.fetchall()
        assert len(first) == limit
        mid = Key(first[-1][d.key_index], first[-1][-1])  # a ROWID string, bound back as is
        cur.execute(sql, plan.page_binds(plan.chunk_of(mid), mid, limit))
        assert cur.fetchall()[0][-1] != mid.rid
        text = _plan_of(cur, sql)
    assert "INDEX RANGE SCAN" in text and f"{d.table}_CID" in text, text
    assert "TABLE ACCESS FULL" not in text, text
    assert "SORT ORDER BY" not in text, text
    assert "WINDOW SORT" not in text, text
