"""Live Oracle: the page query's plan, from DBMS_XPLAN.DISPLAY_CURSOR, in two questions.

(a) Sort elimination: can Oracle read a page off the CONTAINERID index in (CONTAINERID,
    ROWID) order at all? Under an index hint the plan must be an INLIST ITERATOR over an
    INDEX RANGE SCAN with WINDOW NOSORT STOPKEY (FETCH FIRST's sort-free form): no SORT,
    no WINDOW SORT, no UNION-ALL (OR-expansion of the keyset predicate). Asserted.
(b) Costing, without the hint on production-sized data: a report, not a test
    (bench/oracle_costing.py; it may reload the demo tables).

Needs SELECT on V_$SQL, V_$SQL_PLAN and V_$SQL_PLAN_STATISTICS_ALL.
"""

from __future__ import annotations

import pytest

from svc.core.sql.dialects import ORACLE
from svc.core.sql.pages import page_sql
from tests.oracle.live import LIVE, connect
from tests.oracle.plans import run_pages
from tests.support import DOMAINS

pytestmark = LIVE


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
        text = run_pages(cur, sql, job_cids, d.key_index, limit)
    assert "INLIST ITERATOR" in text, text
    assert "INDEX RANGE SCAN" in text and f"{d.table}_CID" in text, text
    assert "WINDOW NOSORT STOPKEY" in text, text
    for bad in ("SORT ORDER BY", "WINDOW SORT", "UNION-ALL", "TABLE ACCESS FULL"):
        assert bad not in text, f"{bad}:\n{text}"
