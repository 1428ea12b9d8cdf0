"""What folding the aggregations into the stream's own pages costs (issue 24, item 1).

The stream's JSON page query (`svc.core.sql.pages.json_page_sql`) over one whole chunk of
1000 CIDs, three ways, on the same connection, chunk after chunk, in two rounds, per domain:

- page: the page as a stream reads it when the job's aggregations are known;
- page+fold: `svc.core.aggregates.queries.folded_page_sql`, what a job's first stream reads:
  the same page's rows materialized once and read again for the domain's aggregations;
- page then aggregate: the page, then the separate per-chunk aggregate and distinct queries
  (`svc.core.aggregates.queries.aggregate_sql`, `distinct_sql`), which read the rows again.

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
from svc.core.aggregates.queries import (  # noqa: E402
    aggregate_shape,
    aggregate_sql,
    distinct_sql,
    folded_page_sql,
)
from svc.core.domains import load_domains  # noqa: E402
from svc.core.sql.dialects import SQLITE  # noqa: E402
from svc.core.sql.pages import json_page_sql  # noqa: E402
from svc.core.sql.plan import Plan  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    ap.add_argument("--chunks", type=int, default=30)
    ap.add_argument("--mmap-mb", type=int, default=0, help="PRAGMA mmap_size, in MB")
    args = ap.parse_args()
    plan = Plan(job_cids(args.db))
    conn = apsw.Connection(str(args.db), flags=apsw.SQLITE_OPEN_READONLY)
    conn.execute("PRAGMA cache_size=-8192").fetchall()
    conn.execute(f"PRAGMA mmap_size={args.mmap_mb * 2**20}").fetchall()

    def run(sql: str, binds: dict[str, Any]) -> float:
        started = time.perf_counter()
        conn.execute(sql, binds).fetchall()
        return time.perf_counter() - started

    for domain in load_domains().values():
        page = json_page_sql(domain, SQLITE, arrays=True, slots=plan.slots)
        fold = folded_page_sql(domain, domain, SQLITE, arrays=True, slots=plan.slots, where=())
        separate = [
            distinct_sql(domain, a.column, SQLITE, slots=plan.slots)
            for a in domain.aggregations
            if a.kind == "distinct" and a.column is not None
        ]
        if aggregate_shape(domain) is not None:
            separate.append(aggregate_sql(domain, SQLITE, slots=plan.slots))
        seconds: dict[str, list[float]] = {"page": [], "page+fold": [], "page then aggregate": []}
        first = min(10, plan.chunk_count - 1)
        for _ in range(2):
            for chunk in range(first, min(first + args.chunks, plan.chunk_count)):
                binds = plan.range_binds(chunk * plan.slots, (chunk + 1) * plan.slots, None, 10**6)
                seconds["page"].append(run(page, binds))
                seconds["page+fold"].append(run(fold, binds))
                together = run(page, binds)
                for sql in separate:
                    together += run(sql, plan.totals_binds(chunk))
                seconds["page then aggregate"].append(together)
        base = statistics.median(seconds["page"])
        for name, values in seconds.items():
            median = statistics.median(values)
            print(
                f"{domain.name:10} {name:20} median {median * 1000:7.1f} ms"
                f"  ({median / base:.2f}x the page)"
            )


if __name__ == "__main__":
    main()
