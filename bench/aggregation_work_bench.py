"""Issue 24's targets, each against its yardstick in the same run (ratios, not absolutes).

One server over the demo database (114,892 CIDs by default). Measured, in this order:

- `complete` vs the last records line on a new full-size job: seconds from the stream
  request to the last `domain_end` and to `complete`, and their ratio (target <= 1.25);
  whether an `aggregating` line came, and when; and the records' speed against the
  `sqlite3` shell writing the same rows as `json_object` lines, timed just before and just
  after the stream (target: at least 1.0), and against the same shell reading the file
  through memory maps as the service's JSON pages do (`sqlite3_shell_mapped_s`), and
  against the plain in-process loop (`bench/plain_loop.py`, rows and msgspec) right after;
  the server's RSS and RssAnon after the stream; and the same job streamed again (totals
  and aggregations known: the records alone).
- dropped aggregations: the server's CPU seconds (utime + stime, /proc) for one whole
  `GET .../aggregation` of a new job, then for 8 new jobs whose `GET .../aggregation` is
  dropped after 0.3 s, until the server is idle again (target: at most 2x the one), and
  the server's RSS growth over them (target: at most 100 MB). Totals are counted first,
  outside both figures.
- no-match streams: CPU seconds per stream of a 20,000-CID job whose filter matches nothing,
  once its totals are known (target: at most 0.3).
- memory of one computation: the peak Python allocation (tracemalloc) while one domain's
  aggregations of the full job are computed in process.

    .venv/bin/python bench/aggregation_work_bench.py [--cids 114892] [--rounds 2]
        [--skip-full | --only-full] [--against CHECKOUT]

`--against`: another checkout (e.g. `git worktree add /tmp/before <commit>`), its server
started from there with this venv, a new job streamed on it in each round too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.plain_loop import plain_loop  # noqa: E402
from bench.stream_bench import demo_db, job_cids, proc_status_mb  # noqa: E402
from svc.core.domains import load_domains  # noqa: E402
from svc.core.sql.plan import Plan  # noqa: E402
from svc.engine.reader import DomainReader  # noqa: E402
from svc.sources.sqlite import SqliteSource  # noqa: E402
from tests.support.servers import ServerProcess, start_server  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
NOTHING = {"history": {"EVENTNAME": ["no such event"]}}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def create(base: str, cids: list[str], where: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"container_ids": cids}
    if where is not None:
        body["where"] = where
        body["domains"] = list(where)
    r = httpx.post(f"{base}/api/trace/job", json=body, timeout=120)
    r.raise_for_status()
    job_id: str = r.json()["job_id"]
    return job_id


def wait_totals(base: str, job_id: str, domains: int) -> None:
    while len(httpx.get(f"{base}/api/trace/job/{job_id}", timeout=60).json()["totals"]) < domains:
        time.sleep(0.1)


def sqlite3_shell_seconds(db: Path, mapped: bool = False) -> float:
    """The `sqlite3` shell writing every record of both demo tables as `json_object` lines
    in key order (C, one core): the yardstick of the records' own speed. With its defaults,
    or `mapped`: reading the file through memory maps, as the service's JSON pages do
    (`TRACE_SQLITE_MMAP_MB`)."""
    selects = ["PRAGMA mmap_size=1073741824;"] if mapped else []
    for domain in load_domains().values():
        pairs = ", ".join(f"'{c}', {c}" for c in domain.columns)
        selects.append(
            f"SELECT json_object({pairs}) FROM {domain.table} ORDER BY {domain.key}, rowid;"
        )
    started = time.perf_counter()
    subprocess.run(
        ["sqlite3", "-readonly", str(db), " ".join(selects)],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def stream_times(base: str, job_id: str) -> dict[str, float]:
    """Seconds from the request to the last `domain_end` (right after the last records
    line), to `aggregating` and to `complete`, read raw off a socket (no gzip, no line
    splitting: the client's own work stays out of the way on two cores)."""
    host, port = base.rsplit("/", 1)[1].split(":")
    marks = {b'"type":"domain_end"': 0.0, b'"type":"aggregating"': 0.0, b'"type":"complete"': 0.0}
    with socket.create_connection((host, int(port))) as s:
        t = time.perf_counter()
        s.sendall(
            f"GET /api/trace/job/{job_id}/stream?format=arrays HTTP/1.1\r\nHost: b\r\n"
            "Accept-Encoding: identity\r\n\r\n".encode()
        )
        tail = b""
        while not marks[b'"type":"complete"']:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("the stream ended without complete")
            now = time.perf_counter() - t
            window = tail + chunk
            for mark in marks:  # found in this chunk (not only in the tail seen before)
                at = window.rfind(mark)
                if at >= 0 and at + len(mark) > len(tail):
                    marks[mark] = now
            tail = window[-64:]
    last_end, aggregating, done = marks.values()
    return {
        "records_s": round(last_end, 2),
        "complete_s": round(done, 2),
        "complete_over_records": round(done / last_end, 2),
        "aggregating_line_s": round(aggregating, 2),
    }


def dropped_aggregations(server: ServerProcess, cids: list[str], jobs: int) -> dict[str, Any]:
    base, pid = server.url, server.proc.pid
    whole = create(base, cids)
    wait_totals(base, whole, 2)
    time.sleep(0.5)
    before = cpu_seconds(pid)
    httpx.get(f"{base}/api/trace/job/{whole}/aggregation", timeout=600).raise_for_status()
    one = cpu_seconds(pid) - before
    ids = [create(base, cids) for _ in range(jobs)]
    for job_id in ids:
        wait_totals(base, job_id, 2)
    time.sleep(0.5)
    rss0, before = proc_status_mb(pid, "VmRSS"), cpu_seconds(pid)
    peak = rss0
    for job_id in ids:
        try:
            httpx.get(f"{base}/api/trace/job/{job_id}/aggregation", timeout=0.3)
        except httpx.TimeoutException:
            pass  # dropped, as the check does
        peak = max(peak, proc_status_mb(pid, "VmRSS"))
    quiet_since, last = time.monotonic(), cpu_seconds(pid)
    deadline = time.monotonic() + 300
    while time.monotonic() - quiet_since < 3 and time.monotonic() < deadline:
        # whatever work outlives its clients shows up here, until idle: a second without
        # a tick (a busy thread gets ticks in a second even on a loaded machine)
        time.sleep(1.0)
        peak, now = max(peak, proc_status_mb(pid, "VmRSS")), cpu_seconds(pid)
        if now - last > 0.02:
            quiet_since = time.monotonic()
        last = now
    dropped = cpu_seconds(pid) - before
    return {
        "one_whole_cpu_s": round(one, 2),
        f"{jobs}_dropped_cpu_s": round(dropped, 2),
        "dropped_over_one": round(dropped / one, 2) if one else None,
        "rss_before_mb": round(rss0, 1),
        "rss_peak_growth_mb": round(peak - rss0, 1),
        "rss_after_growth_mb": round(proc_status_mb(pid, "VmRSS") - rss0, 1),
    }


def no_match_streams(server: ServerProcess, cids: list[str], n: int) -> dict[str, Any]:
    base, pid = server.url, server.proc.pid
    job_id = create(base, cids, NOTHING)
    wait_totals(base, job_id, 1)
    before = cpu_seconds(pid)
    sizes = []
    for _ in range(n):
        r = httpx.get(f"{base}/api/trace/job/{job_id}/stream", timeout=120)
        sizes.append(len(r.content))
    return {
        "cids": len(cids),
        "cpu_s_per_stream": round((cpu_seconds(pid) - before) / n, 3),
        "bytes_per_stream": sizes[0],
    }


async def computation_memory(db: Path, cids: list[str]) -> dict[str, float]:
    out = {}
    for name, domain in load_domains().items():
        reader = DomainReader(SqliteSource(str(db)), domain, Plan(cids))
        tracemalloc.start()
        t = time.perf_counter()
        await reader.aggregate()
        out[f"{name}_seconds"] = round(time.perf_counter() - t, 2)
        out[f"{name}_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 2)
        tracemalloc.stop()
        await reader.source.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cids", type=int, default=114_892)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--skip-full", action="store_true", help="no whole stream of a new job")
    ap.add_argument("--only-full", action="store_true", help="only the whole streams")
    ap.add_argument("--rounds", type=int, default=2, help="whole streams, each a new job")
    ap.add_argument(
        "--against", type=Path, help="another checkout's server, streamed in the same rounds"
    )
    args = ap.parse_args()
    db = demo_db(args.db, args.cids)
    cids = job_cids(db)
    print(f"load average at start: {os.getloadavg()}")
    server = start_server(ROOT / "bench/out/data-i24", db, {"TRACE_LOG_FORMAT": "text"})
    other = None
    if args.against is not None:
        data = ROOT / "bench/out/data-i24-against"
        other = start_server(data, db, {"TRACE_LOG_FORMAT": "text"}, cwd=args.against)
    try:
        for round_ in range(0 if args.skip_full else args.rounds):
            shell = sqlite3_shell_seconds(db)
            mapped = sqlite3_shell_seconds(db, mapped=True)
            job_id = create(server.url, cids)
            times = stream_times(server.url, job_id)
            # the same job again: totals and aggregations known, the records alone
            times["records_again_s"] = stream_times(server.url, job_id)["records_s"]
            times["server_rss_mb"] = round(proc_status_mb(server.proc.pid, "VmRSS"), 1)
            times["server_rss_anon_mb"] = round(proc_status_mb(server.proc.pid, "RssAnon"), 1)
            shell_after = sqlite3_shell_seconds(db)  # before and after: the load moves
            mapped_after = sqlite3_shell_seconds(db, mapped=True)
            times["sqlite3_shell_s"] = round((shell + shell_after) / 2, 2)
            times["records_speed_vs_shell"] = round(
                times["sqlite3_shell_s"] / times["records_s"], 2
            )
            times["sqlite3_shell_mapped_s"] = round((mapped + mapped_after) / 2, 2)
            times["records_speed_vs_mapped_shell"] = round(
                times["sqlite3_shell_mapped_s"] / times["records_s"], 2
            )
            times["plain_loop_s"] = round(plain_loop(db, cids)["seconds"], 2)
            times["records_speed_vs_plain_loop"] = round(
                times["plain_loop_s"] / times["records_s"], 2
            )
            print(f"round {round_ + 1}, new job: complete vs last records, vs the shell:", times)
            if other is not None:
                theirs = stream_times(other.url, create(other.url, cids))
                theirs["records_speed_vs_shell"] = round(
                    times["sqlite3_shell_s"] / theirs["records_s"], 2
                )
                print(f"round {round_ + 1}, new job on {args.against}:", theirs)
        if args.only_full:
            return
        print("dropped aggregations:", dropped_aggregations(server, cids, args.jobs))
        print("no-match streams:", no_match_streams(server, cids[:20_000], 5))
    finally:
        server.stop()
        if other is not None:
            other.stop()
    print("one computation in process:", asyncio.run(computation_memory(db, cids)))
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
