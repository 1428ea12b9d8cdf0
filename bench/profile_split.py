"""Where a stream's time goes: py-spy samples the server while it streams the whole demo job.

Every thread is sampled (`py-spy record --threads`, idle frames excluded) while one client
streams the 114,892-CID job over HTTP; each sample is put in one bucket by the first frame
that names it, and each bucket is reported as a share of the stream's wall time:

- fetch: `SqliteSource._query` in the reading threads (SQLite building each page's JSON,
  on two threads at once: their sum may pass 100 % of the wall time; or, with
  TRACE_DATABASE_JSON off, SQLite and the driver building row tuples);
- cut: `JsonBatches` cutting the database's JSON into raw records and batches;
- shape / encode: `shape_records` (rows only) and `encode_line` on the event loop;
- send: handing lines to the socket (uvicorn's h11 cycle, the response's write);
- thread hand-off: submitting a query to a read thread and waking the loop with its rows;
- loop, other: everything else on the event loop (tokens, binds, scheduling);
- waiting: the loop in epoll and worker threads at their queues, where py-spy cannot tell
  a wait from work (reported, not part of the split).

    .venv/bin/python bench/profile_split.py [--rows]   (py-spy is in the bench extra)

`--rows` profiles the rows path (`TRACE_DATABASE_JSON=0`: what Oracle streams get), and
also splits the fetch: SQLite stepping the query, the driver building row tuples.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import (  # noqa: E402
    QUIET,
    demo_db,
    job_cids,
    new_job,
    stream_over_http,
    wait_for_totals,
)
from tests.support.servers import start_server  # noqa: E402

RATE = 250  # samples a second
BUCKETS = (  # (bucket, frame-name prefix it is recognised by), first match wins
    ("fetch", "SqliteSource._query"),
    ("cut", "JsonBatches."),
    ("shape", "shape_records"),
    ("encode", "encode_line"),
    ("send", "RequestResponseCycle.send"),
    ("send", "NdjsonResponse._stream.<locals>.write"),
    ("thread hand-off", "_chain_future.<locals>._call_set_state"),
    ("thread hand-off", "ThreadPoolExecutor.submit"),
)
# Leaves where a thread waits without being idle to py-spy: uvloop's epoll, a worker's queue.
WAITING = ("Runner.run", "_worker")


def bucket(stack: str) -> str:
    frames = [f.split(" (", 1)[0] for f in stack.split(";")[1:]]
    for name, prefix in BUCKETS:
        if any(f.startswith(prefix) for f in frames):
            return name
    if frames and frames[-1] in WAITING:
        return "waiting"
    return "loop, other" if "MainThread" in stack.split(";", 1)[0] else "other threads"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", action="store_true", help="TRACE_DATABASE_JSON=0")
    rows = ap.parse_args().rows
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    db = demo_db(ROOT / "bench/out/demo114.sqlite3", 114_892)
    env = QUIET | ({"TRACE_DATABASE_JSON": "0"} if rows else {})
    server = start_server(ROOT / "bench/out/data-profile", db, env)
    out = ROOT / "bench/out/profile.txt"
    try:
        job = new_job(server.url, job_cids(db))
        wait_for_totals(server.url, job)
        args = ["record", "-p", str(server.proc.pid), "-r", str(RATE), "-f", "raw"]
        recorder = subprocess.Popen(
            [spy, *args, "-o", str(out), "--threads", "--nonblocking"],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches
        run = stream_over_http(server.url, job)
        recorder.send_signal(signal.SIGINT)
        recorder.wait(30)
    finally:
        server.stop()
    counts: collections.Counter[str] = collections.Counter()
    for line in out.read_text().splitlines():
        stack, n = line.rsplit(" ", 1)
        counts[bucket(stack)] += int(n)
    wall = run["seconds"] * RATE
    print(f"{run['records']:,} records in {run['seconds']:.1f} s; share of wall time:")
    names = ("fetch", "cut", "shape", "encode", "send", "thread hand-off", "loop, other")
    for name in (*names, "other threads", "waiting"):
        print(f"  {name:<16} {100 * counts[name] / wall:5.1f} %")


if __name__ == "__main__":
    main()
