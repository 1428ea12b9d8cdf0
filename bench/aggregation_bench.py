"""What declared aggregations cost a stream, on the 114,892-CID demo database (~1.7M rows).

Two servers over the same database, one at a time, rounds alternating between them:
`agg` with the demo's domain file (six aggregations), `base` with the same domains and no
aggregations. Per round, on a fresh job of every CID:

- first records line: ms from the stream request to its first `records` line;
- whole stream: seconds to the last `domain_end` (the records) and to `complete`, and how
  long the `aggregation` line came after the last `domain_end`;
- `agg` only: GET /aggregation cold (nothing computed) and warm (stored); and the first
  records line of a new job's stream while another job's aggregations run (the count
  lane busy), against the same with the machine idle.

    .venv/bin/python bench/aggregation_bench.py [--cids 114892] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import demo_db, job_cids  # noqa: E402
from svc.core.domains import load_domains  # noqa: E402
from tests.support.servers import ServerProcess, start_server  # noqa: E402


def domains_without_aggregations(path: Path) -> Path:
    """The demo's domain file minus its aggregations (the baseline)."""
    out = []
    for d in load_domains().values():
        cols = ", ".join(f'"{c}"' for c in d.select)
        out.append(f'[domains.{d.name}]\ntable = "{d.table}"\ncolumns = [{cols}]\n')
    path.write_text("\n".join(out))
    return path


def create(base: str, cids: list[str]) -> str:
    r = httpx.post(f"{base}/api/trace/job", json={"container_ids": cids}, timeout=60)
    r.raise_for_status()
    job_id: str = r.json()["job_id"]
    return job_id


def first_records_ms(base: str, job_id: str) -> float:
    t = time.perf_counter()
    url = f"{base}/api/trace/job/{job_id}/stream?format=arrays"
    with httpx.stream("GET", url, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith('{"type":"records"'):
                return (time.perf_counter() - t) * 1000
    raise AssertionError("no records line")


def whole_stream(base: str, job_id: str) -> dict[str, float]:
    t = time.perf_counter()
    last_end = aggregation = 0.0
    url = f"{base}/api/trace/job/{job_id}/stream?format=arrays"
    with httpx.stream("GET", url, timeout=300) as r:
        for line in r.iter_lines():
            kind = line[9:24]
            if kind.startswith("domain_end"):
                last_end = time.perf_counter()
            elif kind.startswith("aggregation"):
                aggregation = time.perf_counter()
            elif kind.startswith("complete"):
                done = time.perf_counter()
    return {
        "records_s": last_end - t,
        "stream_s": done - t,
        "aggregation_wait_s": aggregation - last_end,
    }


def timed_get(url: str) -> float:
    t = time.perf_counter()
    httpx.get(url, timeout=300).raise_for_status()
    return time.perf_counter() - t


def settle(base: str, job_id: str) -> None:
    """Wait until the job's totals are counted (creation warms them in the background)."""
    while not json.loads(httpx.get(f"{base}/api/trace/job/{job_id}").text)["totals"].keys() >= {
        "history",
        "materials",
    }:
        time.sleep(0.1)


def round_of(srv: ServerProcess, cids: list[str], aggregations: bool) -> dict[str, float]:
    base = srv.url
    out: dict[str, float] = {}
    job = create(base, cids)
    settle(base, job)
    out["first_records_ms"] = first_records_ms(base, job)
    job = create(base, cids)
    out.update(whole_stream(base, job))
    if aggregations:
        job = create(base, cids)
        settle(base, job)
        out["first_records_idle_ms"] = first_records_ms(base, job)
        busy = create(base, cids)
        settle(base, busy)
        url = f"{base}/api/trace/job/{busy}/aggregation"
        cold: list[float] = []
        worker = threading.Thread(target=lambda: cold.append(timed_get(url)))
        worker.start()
        time.sleep(0.5)  # the aggregations are running on the count lane
        out["first_records_busy_ms"] = first_records_ms(base, job)
        worker.join()
        out["aggregation_cold_s"] = cold[0]
        out["aggregation_warm_ms"] = timed_get(url) * 1000
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cids", type=int, default=114_892)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    args = ap.parse_args()
    db = demo_db(args.db, args.cids)
    cids = job_cids(db)
    out_dir = ROOT / "bench/out/aggregation"
    out_dir.mkdir(parents=True, exist_ok=True)
    plain = domains_without_aggregations(out_dir / "no-aggregations.toml")
    env = {"TRACE_JOB_CREATE_RATE": "0", "TRACE_MAX_JOBS_PER_KEY": "0"}
    results: dict[str, list[dict[str, float]]] = {"agg": [], "base": []}
    for n in range(args.rounds):
        for name in ("agg", "base") if n % 2 == 0 else ("base", "agg"):
            extra = {} if name == "agg" else {"TRACE_DOMAINS": str(plain)}
            srv = start_server(out_dir / f"data-{name}-{n}", db, {**env, **extra})
            try:
                results[name].append(round_of(srv, cids, name == "agg"))
            finally:
                srv.stop()
            print(name, results[name][-1], file=sys.stderr)
    summary: dict[str, Any] = {"cids": len(cids), "rounds": args.rounds}
    for name, rounds in results.items():
        for key in rounds[0]:
            summary[f"{name}.{key}"] = round(statistics.median(r[key] for r in rounds), 3)
    summary["first_records_ratio_agg_over_base"] = round(
        summary["agg.first_records_ms"] / summary["base.first_records_ms"], 2
    )
    for key in ("records_s", "stream_s"):
        summary[f"{key}_ratio_agg_over_base"] = round(
            summary[f"agg.{key}"] / summary[f"base.{key}"], 2
        )
    summary["first_records_ratio_busy_over_idle"] = round(
        summary["agg.first_records_busy_ms"] / summary["agg.first_records_idle_ms"], 2
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
