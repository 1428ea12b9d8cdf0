"""What heartbeats cost while data flows (issue #16): the same job streamed from servers that
differ only in TRACE_HEARTBEAT_SECONDS, alternating, in one run.

Three servers over the same demo database, each with the same job, totals counted first:
`on` (heartbeats every 15 s, the default), `off` (0: no heartbeats, the slow-reader watchdog
still runs) and `bare` (heartbeats and slow-reader limit both 0: no watchdog task at all).
Each round streams the whole job once from each, in an order that rotates every round, with
a lean client (raw bytes, no per-line work). Per stream: records/s, and the server's CPU
seconds (utime + stime from /proc) per million records, which a shared machine disturbs less
than wall time. The ratios are of medians over the rounds.

    .venv/bin/python bench/heartbeat_bench.py [--rounds 5] [--cids 114892]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import demo_db, job_cids, stream_over_http, wait_for_totals  # noqa: E402
from tests.support.servers import ServerProcess, start_server  # noqa: E402

VARIANTS = {
    "on": {"TRACE_HEARTBEAT_SECONDS": "15"},
    "off": {"TRACE_HEARTBEAT_SECONDS": "0"},
    "bare": {"TRACE_HEARTBEAT_SECONDS": "0", "TRACE_SLOW_READER_SECONDS": "0"},
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cids", type=int, default=114_892)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    args = ap.parse_args()
    db = demo_db(args.db, args.cids)
    cids = job_cids(db)

    servers: dict[str, ServerProcess] = {}
    jobs: dict[str, str] = {}
    try:
        for name, env in VARIANTS.items():
            srv = start_server(ROOT / f"bench/out/data-heartbeat-{name}", db, env)
            servers[name] = srv
            r = httpx.post(f"{srv.url}/api/trace/job", json={"container_ids": cids}, timeout=120)
            r.raise_for_status()
            jobs[name] = r.json()["job_id"]
            wait_for_totals(srv.url, jobs[name])
        rate: dict[str, list[float]] = {name: [] for name in VARIANTS}
        cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
        names = list(VARIANTS)
        records = 0
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                srv = servers[name]
                before = cpu_seconds(srv.proc.pid)
                run = stream_over_http(srv.url, jobs[name])
                spent = cpu_seconds(srv.proc.pid) - before
                records = run["records"]
                rate[name].append(records / run["seconds"])
                cpu[name].append(spent / run["records"] * 1e6)
                print(
                    f"round {round_ + 1} {name:>4}: {rate[name][-1]:,.0f} records/s,"
                    f" {cpu[name][-1]:.2f} server CPU s per 1M records",
                    file=sys.stderr,
                )
                time.sleep(1)
    finally:
        for srv in servers.values():
            srv.stop()

    median_rate = {n: statistics.median(v) for n, v in rate.items()}
    median_cpu = {n: statistics.median(v) for n, v in cpu.items()}
    results = {
        "rounds": args.rounds,
        "cids": args.cids,
        "records": records,
        "records_per_s": median_rate,
        "server_cpu_s_per_million_records": median_cpu,
        "rate_on_over_off": median_rate["on"] / median_rate["off"],
        "rate_on_over_bare": median_rate["on"] / median_rate["bare"],
        "cpu_on_over_off": median_cpu["on"] / median_cpu["off"],
        "cpu_on_over_bare": median_cpu["on"] / median_cpu["bare"],
        "every_rate": rate,
        "every_cpu": cpu,
    }
    out = ROOT / "bench/out/heartbeat.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    for key in ("records_per_s", "server_cpu_s_per_million_records"):
        print(f"{key:<34} " + "  ".join(f"{n} {v:,.2f}" for n, v in results[key].items()))
    for key in ("rate_on_over_off", "rate_on_over_bare", "cpu_on_over_off", "cpu_on_over_bare"):
        print(f"{key:<34} {results[key]:.3f}")


if __name__ == "__main__":
    main()
