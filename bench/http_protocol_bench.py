"""HTTP protocol benchmark: uvicorn's h11 and httptools, and the service's own h11 subclass
(`svc.http.h11`, with its limits), on the 20,000-CID demo database, in one run:

- RSS growth of the server under pipelining: MB of pipelined `GET /healthz` sent on one
  connection that never reads its responses (peak while it lasts, and after the close);
- full-stream throughput of a demo job over HTTP on loopback (records/s: median, min and
  max of runs, the servers taking turns), and the latency of /healthz during the pipelining.

Each protocol gets its own server process on 127.0.0.1; they take turns streaming.

    .venv/bin/python bench/http_protocol_bench.py [--cids 20000] [--pipeline-mb 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import (  # noqa: E402
    demo_db,
    job_cids,
    proc_status_mb,
    stream_over_http,
    wait_for_totals,
)
from tests.support.servers import TEST_SECRET, free_port  # noqa: E402

PROTOCOLS = ("h11", "httptools", "svc.http.h11")
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


def child(protocol: str, port: int) -> None:
    """The server process: the service as `serve` runs it, with `protocol`."""
    import logging

    from svc.config import Settings
    from svc.run.server import serve

    logging.basicConfig(level=logging.WARNING)
    serve(
        Settings.from_env(),
        "127.0.0.1",
        port,
        unready_seconds=0,
        http=None if protocol == "svc.http.h11" else protocol,
    )


def start(protocol: str, db: Path, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    env.update(
        TRACE_DB_URL=f"sqlite:///{db}", TRACE_SECRET=TEST_SECRET, TRACE_DATA_DIR=str(data_dir)
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", protocol, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{protocol}: the server did not start")


def healthz_ms(base: str) -> float:
    t = time.perf_counter()
    httpx.get(base + "/healthz", timeout=30).raise_for_status()
    return (time.perf_counter() - t) * 1000


def pipelining(pid: int, base: str, megabytes: int, seconds: float = 15) -> dict[str, float]:
    """Send `megabytes` of pipelined GET /healthz, never reading; RSS while and after."""
    port = int(base.rsplit(":", 1)[1])
    before = proc_status_mb(pid, "VmRSS")
    payload = HEALTHZ * (megabytes * (1 << 20) // len(HEALTHZ))
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    sent = 0
    peak = before
    deadline = time.monotonic() + seconds
    while sent < len(payload) and time.monotonic() < deadline:
        if select.select([], [sock], [], 0.2)[1]:
            sent += sock.send(payload[sent : sent + 65536])
        peak = max(peak, proc_status_mb(pid, "VmRSS"))
    healthz = healthz_ms(base)
    for _ in range(10):  # let the server work through what it accepted
        time.sleep(0.2)
        peak = max(peak, proc_status_mb(pid, "VmRSS"))
    sock.close()
    time.sleep(2)
    return {
        "sent_mb": sent / (1 << 20),
        "peak_growth_mb": peak - before,
        "after_close_growth_mb": proc_status_mb(pid, "VmRSS") - before,
        "healthz_ms": healthz,
    }


def create_job(base: str, cids: list[str]) -> str:
    r = httpx.post(f"{base}/api/trace/job", json={"container_ids": cids}, timeout=120)
    r.raise_for_status()
    job_id: str = r.json()["job_id"]
    wait_for_totals(base, job_id)
    stream_over_http(base, job_id)  # warm-up
    return job_id


def throughput(jobs: dict[str, tuple[str, str]], runs: int) -> dict[str, list[float]]:
    """Records/s of every run, per protocol; the servers take turns, so a busy moment on a shared
    machine falls on all of them alike."""
    rates: dict[str, list[float]] = {protocol: [] for protocol in jobs}
    for _ in range(runs):
        for protocol, (base, job_id) in jobs.items():
            res = stream_over_http(base, job_id)
            rates[protocol].append(res["records"] / res["seconds"])
    return rates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cids", type=int, default=20_000)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo20k.sqlite3")
    ap.add_argument("--pipeline-mb", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", choices=PROTOCOLS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.port)
        return
    db = demo_db(args.db, args.cids)
    cids = job_cids(db)
    servers = {p: start(p, db, ROOT / f"bench/out/data-{p}") for p in PROTOCOLS}
    try:
        idle = {p: proc_status_mb(proc.pid, "VmRSS") for p, (proc, _) in servers.items()}
        jobs = {p: (base, create_job(base, cids)) for p, (_, base) in servers.items()}
        records = stream_over_http(*jobs[PROTOCOLS[0]])["records"]
        speed = throughput(jobs, args.runs)
        pipe = {
            p: pipelining(proc.pid, base, args.pipeline_mb) for p, (proc, base) in servers.items()
        }
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in servers.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    print(f"\n{args.cids} CIDs, {records} records; {args.pipeline_mb} MB pipelined")
    print(
        "| protocol | RSS idle MB | stream records/s, median (min-max) | pipelined MB accepted "
        "| RSS growth peak MB | RSS growth after close MB | /healthz meanwhile ms |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|")
    for p in PROTOCOLS:
        print(
            f"| {p} | {idle[p]:.0f} | {statistics.median(speed[p]):,.0f} "
            f"({min(speed[p]):,.0f}-{max(speed[p]):,.0f}) | {pipe[p]['sent_mb']:.1f} "
            f"| {pipe[p]['peak_growth_mb']:.0f} | {pipe[p]['after_close_growth_mb']:.0f} "
            f"| {pipe[p]['healthz_ms']:.0f} |"
        )


if __name__ == "__main__":
    main()
