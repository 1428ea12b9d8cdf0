"""Live Oracle, question (b) of the page query's plan (tests/oracle/test_live_plan.py asks
(a)): does the optimizer pick the sort-free plan by itself, without a hint, on tables of
production size?

That depends on data and statistics, not on the service, so it is a report, not a test.
The demo tables are reloaded with --cids CIDs (default 114,892: about 1.1M history rows;
statistics gathered) when they hold fewer.

    TRACE_TEST_ORACLE_DSN=oracle://user:pw@host:port/service \\
        .venv/bin/python bench/oracle_costing.py [--cids 114892]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svc.core.sql.dialects import ORACLE  # noqa: E402
from svc.core.sql.pages import page_sql  # noqa: E402
from svc.sources.demo import load_demo_oracle  # noqa: E402
from tests.oracle.live import DSN, connect  # noqa: E402
from tests.oracle.plans import run_pages  # noqa: E402
from tests.support import DOMAINS  # noqa: E402

JOB_CIDS = 2200  # as the live suite's jobs: three 1000-CID chunks
PAGE = 5001


def large_demo(cids: int) -> list[str]:
    """The smallest JOB_CIDS demo CIDs, reloading the demo tables if they hold fewer than
    `cids` containers."""
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM TRACE_DEMO_CONTAINERS")
        row = cur.fetchone()
        if row is None or row[0] < cids:
            load_demo_oracle(DSN, cids=cids, seed=7)  # gathers statistics too
        cur.execute(
            "SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS ORDER BY CONTAINERID"
            " FETCH FIRST :n ROWS ONLY",
            {"n": JOB_CIDS},
        )
        return [r[0] for r in cur.fetchall()]


def sort_free(plan: str) -> bool:
    bad = ("SORT ORDER BY", "WINDOW SORT", "UNION-ALL")
    return "WINDOW NOSORT STOPKEY" in plan and not any(b in plan for b in bad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = int(os.environ.get("TRACE_TEST_ORACLE_COST_CIDS", "114892"))
    parser.add_argument("--cids", type=int, default=default)
    args = parser.parse_args()
    if not DSN:
        sys.exit("set TRACE_TEST_ORACLE_DSN=oracle://user:pw@host:port/service (docs/oracle.md)")
    cids = large_demo(args.cids)
    for name in ("history", "materials"):
        d = DOMAINS[name]
        with connect() as conn, conn.cursor() as cur:
            plan = run_pages(cur, page_sql(d, ORACLE), cids, d.key_index, PAGE)
        print(f"[costing] {name}: sort-free without a hint: {sort_free(plan)}\n{plan}\n")


if __name__ == "__main__":
    main()
