"""Column selection benchmark: one domain streamed with every column against the same job
with `select` (the key and two columns of ten), over HTTP on loopback, in one run.

For each form (NDJSON objects, `format=arrays`, `export.csv`) and each job, in turn, three
rounds: wall time, the server's CPU seconds (from /proc: steadier than wall time on a
shared machine) and bytes per record (uncompressed); medians, and the selected job's share
of each.

    .venv/bin/python bench/select_bench.py [--cids 20000] [--db bench/out/demo20k.sqlite3]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.csv_bench import cpu_seconds, demo_db  # noqa: E402
from tests.support.servers import start_server  # noqa: E402

SELECT = {"history": ["EVENTNAME", "TXNDATE"]}  # records: CONTAINERID, EVENTNAME, TXNDATE


def timed(url: str) -> tuple[float, int]:
    """Seconds and bytes of a whole response, uncompressed on the wire."""
    started = time.perf_counter()
    size = 0
    with httpx.stream("GET", url, headers={"Accept-Encoding": "identity"}, timeout=600) as r:
        r.raise_for_status()
        for chunk in r.iter_raw():
            size += len(chunk)
    return time.perf_counter() - started, size


def create(base: str, cids: list[str], select: dict[str, list[str]] | None) -> str:
    body: dict[str, object] = {"container_ids": cids, "domains": ["history"]}
    if select is not None:
        body["select"] = select
    r = httpx.post(f"{base}/api/trace/job", json=body, timeout=60)
    r.raise_for_status()
    job_id: str = r.json()["job_id"]
    return job_id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cids", type=int, default=20000)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo20k.sqlite3")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    db = demo_db(args.db, args.cids)
    with sqlite3.connect(db) as conn:
        cids = [r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS")]
        records = conn.execute("SELECT COUNT(*) FROM MES_CONTAINER_HISTORY").fetchone()[0]
    env = {"TRACE_STREAM_BATCH_SIZE": "5000", "TRACE_JOB_CREATE_RATE": "0"}
    server = start_server(ROOT / "bench/out/select-bench-data", db, env)
    try:
        jobs = {"all": create(server.url, cids, None), "select": create(server.url, cids, SELECT)}
        forms = {
            "objects": "/stream",
            "arrays": "/stream?format=arrays",
            "export.csv": "/export.csv?domain=history",
        }
        for job in jobs.values():  # totals and aggregations computed, caches warm
            timed(f"{server.url}/api/trace/job/{job}/stream")
        got: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
        for _ in range(args.rounds):
            for form, path in forms.items():
                for name, job in jobs.items():
                    cpu = cpu_seconds(server)
                    seconds, size = timed(f"{server.url}/api/trace/job/{job}{path}")
                    got.setdefault((form, name), []).append(
                        (seconds, cpu_seconds(server) - cpu, size)
                    )
        print(f"{records} history records, {args.rounds} rounds, medians")
        for form in forms:
            row = []
            for name in jobs:
                runs = got[(form, name)]
                wall = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                per = runs[0][2] / records
                row.append((wall, cpu, per))
                print(f"{form:10s} {name:6s} {wall:6.2f} s  {cpu:5.2f} s CPU  {per:6.1f} B/record")
            (w0, c0, b0), (w1, c1, b1) = row
            print(
                f"{form:10s} select/all: wall {w1 / w0:.2f}, CPU {c1 / c0:.2f}, bytes {b1 / b0:.2f}"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
