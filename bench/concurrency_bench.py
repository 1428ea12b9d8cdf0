"""Concurrent full streams of the 114,892-CID demo job (~1.7M records each), in one run:
the aggregate records/s, every stream's completion, and the server's peak RSS, sampled from
/proc while they run.

    .venv/bin/python bench/concurrency_bench.py [--streams 20] [--cids 114892]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import demo_db, job_cids, proc_status_mb  # noqa: E402
from tests.support.servers import start_server  # noqa: E402

ENCODING = "identity"  # --gzip: what a browser asks for


def stream(url: str, out: dict[str, int | str]) -> None:
    """A lean client: raw bytes, only the last line parsed (its `complete` has the count), so
    that 20 client threads on the server's two cores measure the server, not `json.loads`."""
    tail = b""
    with httpx.stream("GET", url, timeout=1200, headers={"Accept-Encoding": ENCODING}) as r:
        for chunk in r.iter_bytes(1 << 20):  # gunzipped if --gzip
            tail = (tail + chunk)[-4096:]
    last = json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    out["records"], out["last"] = int(last.get("total_records", 0)), str(last["type"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--cids", type=int, default=114_892)
    parser.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    parser.add_argument("--format", default="objects", choices=["objects", "arrays"])
    parser.add_argument("--gzip", action="store_true", help="ask for gzip, as browsers do")
    args = parser.parse_args()
    global ENCODING
    ENCODING = "gzip" if args.gzip else "identity"
    args.db.parent.mkdir(parents=True, exist_ok=True)
    db = demo_db(args.db, args.cids)
    env = {"TRACE_MAX_STREAMS": str(args.streams), "TRACE_MAX_STREAMS_PER_CLIENT": "1000"}
    srv = start_server(Path(tempfile.mkdtemp()), db, env)
    try:
        job = httpx.post(
            f"{srv.url}/api/trace/job", json={"container_ids": job_cids(db)}, timeout=60
        ).json()
        httpx.get(f"{srv.url}{job['links']['result']}?domain=materials&limit=1", timeout=60)
        httpx.get(f"{srv.url}{job['links']['self']}/aggregation", timeout=600)  # computed once
        idle = proc_status_mb(srv.proc.pid, "VmRSS")
        url = f"{srv.url}{job['links']['stream']}?format={args.format}"
        results: list[dict[str, int | str]] = [{} for _ in range(args.streams)]
        threads = [threading.Thread(target=stream, args=(url, r)) for r in results]
        peak, started = idle, time.perf_counter()
        idle_anon = peak_anon = proc_status_mb(srv.proc.pid, "RssAnon")
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, proc_status_mb(srv.proc.pid, "VmRSS"))
            peak_anon = max(peak_anon, proc_status_mb(srv.proc.pid, "RssAnon"))
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        total = sum(int(r["records"]) for r in results)
        complete = sum(r["last"] == "complete" for r in results)
        print(
            f"{args.streams} concurrent {args.format} streams ({ENCODING}) of {args.cids} CIDs: "
            f"{complete}/{args.streams} complete, {total:,} records in {elapsed:.1f} s = "
            f"{total / elapsed:,.0f} records/s aggregate; server RSS idle {idle:.0f} MB, "
            f"peak {peak:.0f} MB; RssAnon idle {idle_anon:.0f} MB, "
            f"peak {peak_anon:.0f} MB"
        )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
