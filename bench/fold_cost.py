"""What folding the aggregations into the stream's own pages would cost (issue 24, item 1).

The stream's JSON page query (`svc.core.sql.pages.json_page_sql`) over one whole chunk of
1000 CIDs, three ways, on the same connection, chunk after chunk, in two rounds:

- page: the page as the stream reads it today;
- page+fold: the same page's rows materialized once (a `WITH ... AS MATERIALIZED` CTE) and
  read twice: for the records' JSON, and grouped by the history aggregations' `by` columns
  (count, sum, min/max), returned as one more JSON column;
- page then aggregate: the page, then today's separate per-chunk aggregate query
  (`svc.core.aggregates.queries.aggregate_sql`), which reads the rows again.

    .venv/bin/python bench/fold_cost.py [--db bench/out/demo114.sqlite3] [--chunks 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import apsw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import job_cids  # noqa: E402
from svc.core.aggregates.queries import aggregate_sql  # noqa: E402
from svc.core.domains import Domain, load_domains  # noqa: E402
from svc.core.sql.dialects import SQLITE  # noqa: E402
from svc.core.sql.pages import json_page_sql  # noqa: E402
from svc.core.sql.plan import Plan  # noqa: E402


def folded_sql(domain: Domain, page: str) -> str:
    """`page` with the history aggregations' groups computed from the same rows."""
    head, inner = page.split(" FROM (", 1)
    position = {c: i for i, c in enumerate(domain.select)}
    event, centre, qty, date = (
        f"TRACE_V{position[c]}" for c in ("EVENTNAME", "WORKCENTERNAME", "QTY", "TXNDATE")
    )
    groups = (
        f"SELECT json_group_array(json_array(a, b, n, s, lo, hi)) AS g FROM (SELECT {event} a,"
        f" {centre} b, count(*) n, sum({qty}) s, min({date}) lo, max({date}) hi FROM page"
        " GROUP BY 1, 2)"
    )
    select = head.replace("SELECT ", "SELECT g, ", 1)
    return f"WITH page AS MATERIALIZED ({inner[:-1]}) {select} FROM page, ({groups})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    ap.add_argument("--chunks", type=int, default=30)
    args = ap.parse_args()
    domain = load_domains()["history"]
    plan = Plan(job_cids(args.db))
    page = json_page_sql(domain, SQLITE, arrays=True, slots=plan.slots)
    fold = folded_sql(domain, page)
    aggregate = aggregate_sql(domain, SQLITE, slots=plan.slots)
    conn = apsw.Connection(str(args.db), flags=apsw.SQLITE_OPEN_READONLY)
    conn.execute("PRAGMA cache_size=-8192").fetchall()

    def run(sql: str, binds: dict[str, Any]) -> float:
        started = time.perf_counter()
        conn.execute(sql, binds).fetchall()
        return time.perf_counter() - started

    seconds: dict[str, list[float]] = {"page": [], "page+fold": [], "page then aggregate": []}
    first = min(10, plan.chunk_count - 1)
    for _ in range(2):
        for chunk in range(first, min(first + args.chunks, plan.chunk_count)):
            binds = plan.range_binds(chunk * plan.slots, (chunk + 1) * plan.slots, None, 10**6)
            seconds["page"].append(run(page, binds))
            seconds["page+fold"].append(run(fold, binds))
            together = run(page, binds) + run(aggregate, plan.totals_binds(chunk))
            seconds["page then aggregate"].append(together)
    base = statistics.median(seconds["page"])
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:20} median {median * 1000:7.1f} ms  ({median / base:.2f}x the page)")


if __name__ == "__main__":
    main()
