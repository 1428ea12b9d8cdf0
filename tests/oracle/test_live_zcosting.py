"""Live Oracle, question (b) of the plan: does the optimizer pick the sort-free plan of
test_live_plan.py by itself, without a hint, on a table of production size?

That depends on data and statistics, not on the service, so it is reported, not asserted.
The demo tables are reloaded with TRACE_TEST_ORACLE_COST_CIDS CIDs (default 114,892: about
1.1M history rows; statistics gathered) when they hold fewer. This file runs last.
"""

from __future__ import annotations

import os

import pytest

from svc.core.sql.dialects import ORACLE
from svc.core.sql.pages import page_sql
from svc.sources.demo import load_demo_oracle
from tests.oracle.live import DSN, LIVE, connect
from tests.oracle.test_live_plan import _run_pages
from tests.support import DOMAINS

pytestmark = LIVE

COST_CIDS = int(os.environ.get("TRACE_TEST_ORACLE_COST_CIDS", "114892"))


@pytest.fixture(scope="module")
def large_demo() -> list[str]:
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM TRACE_DEMO_CONTAINERS")
        row = cur.fetchone()
        if row is None or row[0] < COST_CIDS:
            load_demo_oracle(DSN, cids=COST_CIDS, seed=7)  # gathers statistics too
        cur.execute(
            "SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS ORDER BY CONTAINERID"
            " FETCH FIRST 2200 ROWS ONLY"
        )
        return [r[0] for r in cur.fetchall()]


@pytest.mark.parametrize("domain", ["history", "materials"])
def test_costing_without_the_hint_is_reported(
    large_demo: list[str], domain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = DOMAINS[domain]
    sql = page_sql(d, ORACLE)
    with connect() as conn, conn.cursor() as cur:
        text = _run_pages(cur, sql, large_demo, d.key_index, 5001)
    sort_free = "WINDOW NOSORT STOPKEY" in text and "SORT ORDER BY" not in text
    sort_free = sort_free and "WINDOW SORT" not in text and "UNION-ALL" not in text
    with capsys.disabled():
        print(f"\n[costing] {domain}: sort-free without a hint: {sort_free}\n{text}")
