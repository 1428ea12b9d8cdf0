"""Clients that stop reading: the server's RSS while N of them hold the whole job's stream.

Each opens the stream of the 114,892-CID job on a raw socket, reads 64 KB and stops; the
server's RSS is sampled for 20 s (less than TRACE_SLOW_READER_SECONDS, which ends them).

    .venv/bin/python bench/stalled_readers_bench.py [--streams 64] [--rows]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import (  # noqa: E402
    demo_db,
    job_cids,
    new_job,
    proc_status_mb,
    wait_for_totals,
)
from tests.support.servers import start_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    ap.add_argument("--rows", action="store_true", help="TRACE_DATABASE_JSON=false")
    args = ap.parse_args()
    db = demo_db(args.db, 114_892)
    env = {"TRACE_MAX_STREAMS": str(args.streams), "TRACE_MAX_STREAMS_PER_CLIENT": "1000"}
    if args.rows:
        env["TRACE_DATABASE_JSON"] = "false"
    srv = start_server(Path(tempfile.mkdtemp()), db, env)
    socks = []
    try:
        job = new_job(srv.url, job_cids(db))
        wait_for_totals(srv.url, job)
        host, port = srv.url.rsplit("/", 1)[1].split(":")
        idle = proc_status_mb(srv.proc.pid, "VmRSS")
        for _ in range(args.streams):
            s = socket.create_connection((host, int(port)))
            s.sendall(f"GET /api/trace/job/{job}/stream HTTP/1.1\r\nHost: b\r\n\r\n".encode())
            s.recv(65536)
            socks.append(s)
        peak = 0
        for _ in range(20):
            time.sleep(1)
            peak = max(peak, proc_status_mb(srv.proc.pid, "VmRSS"))
        shed = sum(
            float(x.split()[-1])
            for x in httpx.get(f"{srv.url}/metrics").text.splitlines()
            if x.startswith("trace_read_ahead_shed_total ")
        )
        print(
            f"{args.streams} stalled readers ({'rows' if args.rows else 'database JSON'}): "
            f"RSS idle {idle:.0f} MB, after 20 s {proc_status_mb(srv.proc.pid, 'VmRSS'):.0f} MB, "
            f"peak {peak:.0f} MB; read-ahead dropped {shed:.0f} times"
        )
    finally:
        for s in socks:
            s.close()
        srv.stop()


if __name__ == "__main__":
    main()
