"""CSV download benchmark: one domain as `export.csv` against the same domain's NDJSON
(`format=arrays` stream of a job of that domain only), over HTTP on loopback, in one run.

Reports records/s and MB/s of each, the server's CPU seconds for each (from /proc: steadier
than wall time on a shared machine), and the server's peak RSS (VmHWM) after each: the
export holds one batch, so its peak should not grow with the domain's size.

    .venv/bin/python bench/csv_bench.py [--cids 20000] [--db bench/out/demo20k.sqlite3]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svc.sources.demo import build_demo_database  # noqa: E402
from tests.support import create_job  # noqa: E402
from tests.support.servers import ServerProcess, start_server  # noqa: E402


def demo_db(path: Path, cids: int) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        build_demo_database(path, cids=cids)
    return path


def peak_rss_mb(server: ServerProcess) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(server: ServerProcess) -> float:
    """User and system CPU time of the server process so far."""
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    size = 0
    with httpx.stream("GET", url, timeout=600) as r:
        r.raise_for_status()
        for chunk in r.iter_raw():
            size += len(chunk)
    return time.perf_counter() - started, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cids", type=int, default=20000)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo20k.sqlite3")
    ap.add_argument("--domain", default="history")
    args = ap.parse_args()
    db = demo_db(args.db, args.cids)
    with sqlite3.connect(db) as conn:
        cids = [r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS")]
        records = conn.execute(
            "SELECT COUNT(*) FROM MES_CONTAINER_HISTORY"
            if args.domain == "history"
            else "SELECT COUNT(*) FROM MES_CONTAINER_MATERIALS"
        ).fetchone()[0]
    env = {"TRACE_STREAM_BATCH_SIZE": "5000", "TRACE_JOB_CREATE_RATE": "0"}
    server = start_server(ROOT / "bench/out/csv-bench-data", db, env)
    try:
        job = create_job(server.url, cids, [args.domain])["job_id"]
        base = f"{server.url}/api/trace/job/{job}"
        timed(f"{base}/result?domain={args.domain}&limit=10")  # totals counted, caches warm
        print(f"{records} {args.domain} records, peak RSS at start {peak_rss_mb(server):.0f} MB")
        for name, url in (
            ("ndjson arrays", f"{base}/stream?format=arrays"),
            ("export.csv", f"{base}/export.csv?domain={args.domain}"),
            ("ndjson arrays", f"{base}/stream?format=arrays"),
            ("export.csv", f"{base}/export.csv?domain={args.domain}"),
        ):
            cpu = cpu_seconds(server)
            seconds, size = timed(url)
            cpu = cpu_seconds(server) - cpu
            print(
                f"{name:14s} {seconds:6.2f} s  {cpu:5.2f} s CPU  {records / seconds:9,.0f} rec/s  "
                f"{size / seconds / 1e6:6.1f} MB/s  {size / 1e6:6.1f} MB  "
                f"peak RSS {peak_rss_mb(server):.0f} MB"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
