"""How many threads should read SQLite pages? N concurrent streams against servers that differ
only in `TRACE_SQLITE_READ_THREADS`, alternating, in one run.

The driver releases the interpreter lock around each step of a query and takes it back to
build each row; reading threads that run at once queue on that lock at every row. Streams
read rows here (`TRACE_DATABASE_JSON=false`): pages the database builds as JSON run on
their own threads (`TRACE_SQLITE_JSON_THREADS`).
This measures the aggregate records/s of N concurrent full streams of a 20,000-CID job
(300k records each) and the server's peak RSS, for each thread count.

    .venv/bin/python bench/read_threads_bench.py [--streams 4] [--threads 1 4] [--cids 20000]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.concurrency_bench import stream  # noqa: E402
from bench.stream_bench import (  # noqa: E402
    QUIET,
    demo_db,
    job_cids,
    new_job,
    proc_status_mb,
    wait_for_totals,
)
from tests.support.servers import start_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--cids", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    db = demo_db(ROOT / "bench/out/demo114.sqlite3", 114_892)
    cids = job_cids(db)[: args.cids]
    env = {**QUIET, "TRACE_MAX_STREAMS_PER_CLIENT": "1000", "TRACE_DATABASE_JSON": "false"}
    servers = {
        n: start_server(
            ROOT / f"bench/out/data-threads-{n}", db, {**env, "TRACE_SQLITE_READ_THREADS": str(n)}
        )
        for n in args.threads
    }
    try:
        jobs = {}
        for n, srv in servers.items():
            jobs[n] = new_job(srv.url, cids)
            wait_for_totals(srv.url, jobs[n])
        for _ in range(args.rounds):
            for n, srv in servers.items():
                done: list[dict[str, int | str]] = [{} for _ in range(args.streams)]
                url = f"{srv.url}/api/trace/job/{jobs[n]}/stream"
                threads = [threading.Thread(target=stream, args=(url, out)) for out in done]
                started = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                elapsed = time.perf_counter() - started
                print(
                    f"{n} read thread(s), {args.streams} streams:"
                    f" {sum(int(d['records']) for d in done) / elapsed:,.0f}"
                    f" records/s aggregate ({elapsed:.1f} s), peak RSS"
                    f" {proc_status_mb(srv.proc.pid):.0f} MB",
                    flush=True,
                )
    finally:
        for srv in servers.values():
            srv.stop()


if __name__ == "__main__":
    main()
