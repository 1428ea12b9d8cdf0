"""Aggregate throughput of 1, 2 and 4 concurrent full-job streams, served by 1 and 2 worker
processes (`serve --workers N`), in one run.

The demo job of bench/stream_bench.py (114,892 CIDs, ~1.7M records, objects format). Each
stream is its own connection, read raw (not decoded, identity encoding so that gzip's CPU
does not mix in: `--gzip` to stream compressed), in threads of this process; all streams of
a round start together and the round's time is until the last ends. The job's totals and
aggregations are computed before the first round (a job's first stream would wait for
them). Also the server's CPU seconds over the round (all its processes, from /proc) and
how busy that kept the cores.

    make bench-workers      # or: .venv/bin/python bench/workers_bench.py [--cids 114892] [--rows]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import demo_db, job_cids, new_job, wait_for_totals  # noqa: E402
from tests.support.servers import start_server  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of `root` and its children (the workers), read from /proc."""
    total = 0.0
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
        pending.extend(int(k) for k in kids)
    return total


def one_stream(url: str, encoding: str, out: dict[str, Any]) -> None:
    size = 0
    tail = b""
    with httpx.stream("GET", url, headers={"Accept-Encoding": encoding}, timeout=900) as r:
        for chunk in r.iter_raw(1 << 20):
            size += len(chunk)
            tail = (tail + chunk)[-4096:]
    out["bytes"] = size
    if encoding == "identity":
        out["complete"] = json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])["type"] == "complete"


def round_of(base: str, job_id: str, streams: int, encoding: str, pid: int) -> dict[str, Any]:
    url = f"{base}/api/trace/job/{job_id}/stream"
    outs: list[dict[str, Any]] = [{} for _ in range(streams)]
    threads = [threading.Thread(target=one_stream, args=(url, encoding, out)) for out in outs]
    cpu = tree_cpu_seconds(pid)
    t = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "server_cpu_s": tree_cpu_seconds(pid) - cpu,
        "complete": all(o.get("complete", True) for o in outs),
        "bytes": sum(o["bytes"] for o in outs),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cids", type=int, default=114_892)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--streams", default="1,2,4")
    ap.add_argument("--gzip", action="store_true", help="stream gzip (level 1) instead")
    ap.add_argument("--rows", action="store_true", help="TRACE_DATABASE_JSON=false: rows")
    args = ap.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    db = demo_db(args.db, args.cids)
    cids = job_cids(db)
    records = None
    encoding = "gzip" if args.gzip else "identity"
    results = []
    for workers in [int(x) for x in args.workers.split(",")]:
        env = {"TRACE_MAX_STREAMS_PER_CLIENT": "64"}
        if args.rows:  # Python builds every record, as for CSV, REST pages and Oracle
            env["TRACE_DATABASE_JSON"] = "false"
        srv = start_server(Path(tempfile.mkdtemp()), db, env, args=("--workers", str(workers)))
        try:
            job_id = new_job(srv.url, cids)
            # Totals and aggregations first: a job's first stream would wait for the latter.
            totals = wait_for_totals(srv.url, job_id)
            records = sum(t["records"] for t in totals.values())
            for streams in [int(x) for x in args.streams.split(",")]:
                res = round_of(srv.url, job_id, streams, encoding, srv.proc.pid)
                res.update(workers=workers, streams=streams)
                res["records_per_s"] = records * streams / res["seconds"]
                res["cores_busy"] = res["server_cpu_s"] / res["seconds"]
                results.append(res)
                print(
                    f"workers {workers}  streams {streams}  {res['seconds']:6.1f} s  "
                    f"{res['records_per_s']:>10,.0f} records/s  server CPU "
                    f"{res['server_cpu_s']:5.1f} s ({res['cores_busy']:.2f} cores)"
                    + ("" if res["complete"] else "  INCOMPLETE"),
                    flush=True,
                )
        finally:
            srv.stop()
    out = ROOT / "bench/out/workers.json"
    out.write_text(json.dumps({"records_per_job": records, "results": results}, indent=2))
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()}; wrote {out}")


if __name__ == "__main__":
    main()
