"""Export formats benchmark: one domain of one job exported as ndjson.gz, csv.zip, xlsx and
parquet, each by a fresh server (so each peak RSS is that format's), over HTTP on loopback.

Reports per format: wall seconds from request to `done`, the server's CPU seconds (from
/proc: steadier than wall time on a shared machine), the file's size, and the server's peak
RSS (VmHWM) against its RSS before the export: every format holds one batch while writing
and one chunk while packing, so the growth should not follow the domain's size (run with
two `--cids` values to see it).

    .venv/bin/python bench/export_formats_bench.py [--cids 20000] [--domain history]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.csv_bench import cpu_seconds, demo_db, peak_rss_mb  # noqa: E402
from bench.stream_bench import proc_status_mb  # noqa: E402
from svc.core.domains import load_domains  # noqa: E402
from tests.support import all_cids, create_job  # noqa: E402
from tests.support.exports import poll, start_export  # noqa: E402
from tests.support.servers import start_server  # noqa: E402

FORMATS = ("ndjson.gz", "csv.zip", "xlsx", "parquet")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cids", type=int, default=20000)
    parser.add_argument("--domain", default="history")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    db = demo_db(args.out / f"demo{args.cids // 1000}k.sqlite3", args.cids)
    cids = all_cids(db)
    columns = len(load_domains()[args.domain].columns)
    print(f"{args.cids} CIDs, domain {args.domain} ({columns} columns)")
    print(f"{'format':<10} {'records':>8} {'wall s':>7} {'cpu s':>6} {'MB':>7} {'RSS MB':>14}")
    env = {"TRACE_JOB_CREATE_RATE": "0", "TRACE_MAX_JOBS_PER_KEY": "0"}
    for fmt in FORMATS:
        server = start_server(args.out / f"exports-bench-{fmt}", db, env)
        try:
            job = create_job(server.url, cids, domains=[args.domain])
            before_rss, before_cpu = proc_status_mb(server.proc.pid, "VmRSS"), cpu_seconds(server)
            started = time.perf_counter()
            status = start_export(server.url, job["job_id"], fmt, args.domain)
            status = poll(server.url, status, lambda s: s["state"] in ("done", "failed"), 3600)
            assert status["state"] == "done", status
            wall = time.perf_counter() - started
            cpu = cpu_seconds(server) - before_cpu
            peak = peak_rss_mb(server)
            print(
                f"{fmt:<10} {status['records']:>8} {wall:>7.1f} {cpu:>6.1f} "
                f"{status['size'] / 1e6:>7.1f} {before_rss:>6.0f} -> {peak:>4.0f}"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
