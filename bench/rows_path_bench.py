"""The rows path against the plain loop (issue 24, item 5): what Oracle streams get, and
SQLite with `TRACE_DATABASE_JSON=0`, measured against `bench/plain_loop.py` in the same run.

A server is started with `TRACE_DATABASE_JSON=0`, a job of every demo CID (114,892, ~1.7M
records) is made and its totals and aggregations computed (a warm job); then, each round,
the plain loop and the whole job streamed over HTTP (objects, raw bytes, `Accept-Encoding:
identity`: `bench/stream_bench.py`'s `stream_over_http`) run back to back, and the round's
ratio is the stream's records/s over the loop's. The order alternates between rounds (loop
first, then the stream first), so drift between them does not favour one side; the summary
is the median of the rounds' ratios. The load average is recorded at the start and the end,
and the server's CPU seconds for each stream.

`--against DIR` also runs the same server from another checkout (its `svc`, this venv),
interleaved in the same rounds: before/after ratios measured back to back. Two servers of
the same code differed by up to ~5 % in one position or the other, so a small difference
is measured both ways (`--service DIR` runs the first server from another checkout).

    .venv/bin/python bench/rows_path_bench.py [--rounds 3] [--against /work/wt/rows-base]
        [--env NAME=VALUE ...]   (extra server settings, for both servers)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.plain_loop import plain_loop  # noqa: E402
from bench.stream_bench import (  # noqa: E402
    QUIET,
    demo_db,
    job_cids,
    new_job,
    stream_over_http,
    wait_for_totals,
)
from tests.support.servers import ServerProcess, start_server  # noqa: E402

ROWS = {**QUIET, "TRACE_DATABASE_JSON": "0"}


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU seconds so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream(server: ServerProcess, job: str) -> dict[str, Any]:
    cpu = cpu_seconds(server.proc.pid)
    run = stream_over_http(server.url, job)
    run["server_cpu"] = cpu_seconds(server.proc.pid) - cpu
    return run


def rate(run: dict[str, Any]) -> float:
    return float(run["records"]) / float(run["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    ap.add_argument("--service", type=Path, default=ROOT, help="the checkout served first")
    ap.add_argument("--against", type=Path, help="another checkout, run in the same rounds")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the servers")
    args = ap.parse_args()
    db = demo_db(args.db, 114_892)
    cids = job_cids(db)
    env = ROWS | dict(e.split("=", 1) for e in args.env)
    load_start = os.getloadavg()
    servers = {"service": start_server(ROOT / "bench/out/data-rows", db, env, cwd=args.service)}
    if args.against is not None:
        servers["against"] = start_server(
            ROOT / "bench/out/data-rows-against", db, env, cwd=args.against
        )
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], **{name: [] for name in servers}}
    try:
        jobs = {name: new_job(s.url, cids) for name, s in servers.items()}
        for name, s in servers.items():
            wait_for_totals(s.url, jobs[name])
        for r in range(args.rounds):
            order = ["plain", *servers] if r % 2 == 0 else [*reversed(servers), "plain"]
            for name in order:
                if name == "plain":
                    run = plain_loop(db, cids)
                else:
                    run = stream(servers[name], jobs[name])
                run["load"] = os.getloadavg()[0]
                runs[name].append(run)
            line = [f"round {r + 1}: plain {rate(runs['plain'][r]):,.0f}/s"]
            for name in servers:
                x = runs[name][r]
                ratio = rate(x) / rate(runs["plain"][r])
                line.append(
                    f"{name} {rate(x):,.0f}/s ({ratio:.3f}x, cpu {x['server_cpu']:.1f}s"
                    f" for {x['seconds']:.1f}s)"
                )
            print("; ".join(line), flush=True)
    finally:
        for s in servers.values():
            s.stop()
    load_end = os.getloadavg()
    plain = runs["plain"]
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "env": env,
        "checkouts": {"service": str(args.service), "against": str(args.against)},
        "load_start": load_start,
        "load_end": load_end,
        "plain_records_per_s": [rate(x) for x in plain],
    }
    assert len({x["records"] for runs_ in runs.values() for x in runs_}) == 1, "record counts"
    for name in servers:
        ratios = [rate(x) / rate(p) for x, p in zip(runs[name], plain, strict=True)]
        result[name] = {
            "records_per_s": [rate(x) for x in runs[name]],
            "ratios": ratios,
            "median_ratio": statistics.median(ratios),
            "server_cpu_s": [x["server_cpu"] for x in runs[name]],
        }
    (ROOT / "bench/out/rows_path.json").write_text(json.dumps(result, indent=2))
    print(f"load average: start {load_start}, end {load_end}")
    for name in servers:
        ratios = " / ".join(f"{x:.3f}" for x in result[name]["ratios"])
        print(f"{name}: ratios {ratios}, median {result[name]['median_ratio']:.3f}x the loop")
    if "against" in result:
        paired = [rate(a) / rate(b) for a, b in zip(runs["service"], runs["against"], strict=True)]
        print(f"service / against per round: {' / '.join(f'{x:.3f}' for x in paired)}")


if __name__ == "__main__":
    main()
