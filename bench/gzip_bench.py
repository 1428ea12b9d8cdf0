"""gzip: CPU per MB against bytes saved, and the whole job's throughput with it on and off.

1. In-process, on the demo job's first 50,000 `history` records as the stream encodes them
   (5000-record lines), each level's ratio and CPU milliseconds per MB of JSON, the way the
   stream compresses (one gzip member, a sync flush per line).
2. Over HTTP on loopback, the whole job (114,892 CIDs, ~1.7M records, objects format), one
   server per setting: records/s, bytes on the wire, and the server's CPU seconds (from
   /proc) per MB of JSON. The client reads raw bytes and does not decompress, so its own CPU
   stays out of the way (a real client pays ~1.4 ms of CPU per MB of JSON to gunzip).

    .venv/bin/python bench/gzip_bench.py [--cids 114892] [--levels 1,6] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import demo_db, job_cids, new_job, wait_for_totals  # noqa: E402
from svc import protocol as p  # noqa: E402
from svc.core.domains import load_domains  # noqa: E402
from svc.core.gzip_lines import GzipLines  # noqa: E402
from tests.support.servers import start_server  # noqa: E402

MB = 1e6
TICK = os.sysconf("SC_CLK_TCK")


def lines_of(db: Path, arrays: bool, records: int = 50_000, batch: int = 5000) -> list[bytes]:
    domain = load_domains()["history"]
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(domain.columns)} FROM {domain.table} "
            f"ORDER BY {domain.key} LIMIT {records}"
        ).fetchall()
    token = "x" * 120  # a since token's length
    return [
        p.encode_line(
            p.Records(
                "history", i, p.shape_records(rows[i : i + batch], domain.columns, arrays), token
            )
        )
        for i in range(0, len(rows), batch)
    ]


def levels_in_process(db: Path) -> list[dict[str, Any]]:
    out = []
    for arrays in (False, True):
        lines = lines_of(db, arrays)
        raw = sum(map(len, lines))
        for level in (1, 3, 6, 9):
            cpu, size = [], 0
            for _ in range(3):
                gz = GzipLines(level)
                t = time.process_time()
                size = sum(len(gz.line(line)) for line in lines)
                cpu.append(time.process_time() - t)
            out.append(
                {
                    "format": "arrays" if arrays else "objects",
                    "level": level,
                    "ratio": raw / size,
                    "saved": 1 - size / raw,
                    "cpu_ms_per_mb": min(cpu) * 1000 / (raw / MB),
                }
            )
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def stream_once(base: str, job_id: str, pid: int, encoding: str) -> dict[str, float]:
    """One whole stream, raw bytes counted, not decoded; the server's JSON bytes and
    records from its own counters."""
    records, json_before = sent(base)
    cpu = cpu_seconds(pid)
    t = time.perf_counter()
    wire = 0
    headers = {"Accept-Encoding": encoding}
    url = f"{base}/api/trace/job/{job_id}/stream"
    with httpx.stream("GET", url, headers=headers, timeout=600) as r:
        assert r.headers.get("content-encoding", "identity") == encoding, r.headers
        for chunk in r.iter_raw(1 << 20):
            wire += len(chunk)
    seconds = time.perf_counter() - t
    server_cpu = cpu_seconds(pid) - cpu
    records_after, json_after = sent(base)
    return {
        "seconds": seconds,
        "wire_bytes": wire,
        "server_cpu": server_cpu,
        "records": records_after - records,
        "json_bytes": json_after - json_before,
    }


def sent(base: str) -> tuple[float, float]:
    """The server's trace_records_sent and trace_bytes_sent (JSON, before compression)."""
    records = size = 0.0
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("trace_records_sent_total{"):
            records += float(line.rsplit(" ", 1)[1])
        elif line.startswith("trace_bytes_sent_total{"):
            size += float(line.rsplit(" ", 1)[1])
    return records, size


def over_http(db: Path, cids: list[str], levels: list[int], repeat: int) -> list[dict[str, Any]]:
    results = []
    for level in [0, *levels]:
        env = {"TRACE_GZIP": str(level) if level else "off"}
        srv = start_server(Path(tempfile.mkdtemp()), db, env)
        try:
            job_id = new_job(srv.url, cids)
            wait_for_totals(srv.url, job_id)  # and aggregations: a first stream waits for them
            encoding = "gzip" if level else "identity"
            runs = [stream_once(srv.url, job_id, srv.proc.pid, encoding) for _ in range(repeat)]
        finally:
            srv.stop()
        best = min(runs, key=lambda r: r["seconds"])
        results.append(
            {
                "gzip": level or "off",
                "seconds": best["seconds"],
                "records_per_s": best["records"] / best["seconds"],
                "wire_mb": best["wire_bytes"] / MB,
                "json_mb": best["json_bytes"] / MB,
                "saved": 1 - best["wire_bytes"] / best["json_bytes"],
                "server_cpu_s": best["server_cpu"],
                "server_cpu_ms_per_json_mb": best["server_cpu"] * 1000 / (best["json_bytes"] / MB),
            }
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cids", type=int, default=114_892)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    ap.add_argument("--levels", default="1,6", help="gzip levels to stream with, besides off")
    ap.add_argument("--repeat", type=int, default=2, help="streams per setting (best kept)")
    args = ap.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    db = demo_db(args.db, args.cids)
    cids = job_cids(db)
    levels = levels_in_process(db)
    http = over_http(db, cids, [int(x) for x in args.levels.split(",")], args.repeat)
    out = ROOT / "bench/out/gzip.json"
    out.write_text(json.dumps({"levels": levels, "http": http}, indent=2))
    print("format   level  ratio  saved  CPU ms/MB")
    for r in levels:
        print(
            f"{r['format']:<8} {r['level']:>5}  {r['ratio']:5.2f}  {r['saved']:5.1%}"
            f"  {r['cpu_ms_per_mb']:8.2f}"
        )
    print("\ngzip   seconds  records/s  wire MB  JSON MB  saved  server CPU s  CPU ms/JSON MB")
    for r in http:
        print(
            f"{r['gzip']!s:<5} {r['seconds']:8.1f} {r['records_per_s']:10,.0f} {r['wire_mb']:8.1f}"
            f" {r['json_mb']:8.1f} {r['saved']:6.1%} {r['server_cpu_s']:13.1f}"
            f" {r['server_cpu_ms_per_json_mb']:15.1f}"
        )


if __name__ == "__main__":
    main()
