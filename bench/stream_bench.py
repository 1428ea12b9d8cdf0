"""Stream benchmark on the 114,892-CID demo database (~1.7M records), in one run, against
yardsticks outside the service's own code:

- records/s of the whole job over HTTP on loopback (objects and `format=arrays`, bytes per
  record of each), against a plain in-process Python loop over the same tables
  (`bench/plain_loop.py`) and against Datasette's CSV stream of the same file
  (`bench/peers.py`), each measured three times, interleaved, medians reported;
- the server's peak RSS (VmHWM) after the whole job, and after a 1,000-CID job on a fresh
  server;
- time to the first records line, read by a raw socket: for a job just created (its totals
  still being counted), and once its totals are known;
- first-page and last-page latency of a domain: in-process, over REST with `since` and with
  `offset`, and the bare-OR keyset form for contrast.

    .venv/bin/python bench/stream_bench.py [--cids 114892] [--db bench/out/demo114.sqlite3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import datasette_csv  # noqa: E402
from bench.plain_loop import plain_loop  # noqa: E402
from svc.core.domains import load_domains  # noqa: E402
from svc.core.sql.plan import Key, Plan  # noqa: E402
from svc.core.tokens import Cursor, TokenCodec  # noqa: E402
from svc.engine.reader import DomainReader  # noqa: E402
from svc.sources.demo import build_demo_database  # noqa: E402
from svc.sources.sqlite import SqliteSource  # noqa: E402
from tests.support.servers import TEST_SECRET, start_server  # noqa: E402

DOMAINS = load_domains()
BATCH = 5000


def demo_db(path: Path, cids: int) -> Path:
    """The demo database of `cids` containers at `path`, built if missing. A file there of
    another size is kept (other benches use it): this size then lives beside it."""
    if path.exists():
        with sqlite3.connect(path) as conn:
            n = conn.execute("SELECT COUNT(*) FROM TRACE_DEMO_CONTAINERS").fetchone()[0]
        if n == cids:
            return path
        path = path.with_name(f"{path.stem}-{cids}{path.suffix}")
        if path.exists():
            return demo_db(path, cids)
    t = time.perf_counter()
    counts = build_demo_database(path, cids=cids)
    print(f"built {path} in {time.perf_counter() - t:.1f}s: {counts}", file=sys.stderr)
    return path


def job_cids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return sorted(r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS"))


async def page_latency(db: Path, cids: list[str], repeat: int = 7) -> dict[str, Any]:
    """Median ms of the first and the last 5000-record page of `history`, in-process."""
    source = SqliteSource(str(db))
    reader = DomainReader(source, DOMAINS["history"], Plan(cids))
    # The key just before the last page: read the last chunk to find it.
    last_chunk = reader.plan.chunk_count - 1
    rows = await source.fetch(reader._sql, reader.plan.page_binds(last_chunk, None, 10**6))
    before_last = rows[-BATCH - 1]
    last_key = Key(before_last[0], before_last[-1])

    async def timed(after: Key | None) -> float:
        samples = []
        for _ in range(repeat):
            t = time.perf_counter()
            await reader.read(after, BATCH)
            samples.append((time.perf_counter() - t) * 1000)
        return statistics.median(samples)

    first, last = await timed(None), await timed(last_key)
    await source.close()
    return {"first_ms": first, "last_ms": last, "last_key": [last_key.cid, last_key.rid]}


def bare_or_latency(db: Path, repeat: int = 5) -> dict[str, float]:
    """The index-hostile form `a > :x OR (a = :x AND rowid > :y)`, for contrast."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    sql = (
        "SELECT *, rowid FROM MES_CONTAINER_HISTORY WHERE CONTAINERID > :c OR"
        " (CONTAINERID = :c AND rowid > :r) ORDER BY CONTAINERID, rowid LIMIT 5000"
    )
    end = conn.execute(
        "SELECT CONTAINERID, rowid FROM MES_CONTAINER_HISTORY ORDER BY CONTAINERID DESC,"
        " rowid DESC LIMIT 1 OFFSET 5000"
    ).fetchone()

    def timed(c: str, r: int) -> float:
        samples = []
        for _ in range(repeat):
            t = time.perf_counter()
            conn.execute(sql, {"c": c, "r": r}).fetchall()
            samples.append((time.perf_counter() - t) * 1000)
        return statistics.median(samples)

    result = {"first_ms": timed("", -1), "last_ms": timed(end[0], end[1])}
    conn.close()
    return result


def proc_status_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory field of /proc/PID/status, in MB: `VmHWM` peak RSS, `VmRSS` RSS, `RssAnon`
    the process's own memory (without the database file pages the JSON lane maps)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stream_over_http(base: str, job_id: str, fmt: str = "objects") -> dict[str, Any]:
    """Stream the whole job with a lean client: raw bytes, no per-line work."""
    t = time.perf_counter()
    size = 0
    tail = b""
    # The JSON as it is (httpx asks for gzip by default): bench/gzip_bench.py measures gzip.
    with httpx.Client(timeout=600, headers={"Accept-Encoding": "identity"}) as client:
        url = f"{base}/api/trace/job/{job_id}/stream?format={fmt}"
        with client.stream("GET", url) as r:
            for chunk in r.iter_raw(1 << 20):
                size += len(chunk)
                tail = (tail + chunk)[-4096:]
    complete = json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    assert complete["type"] == "complete", complete
    return {"seconds": time.perf_counter() - t, "bytes": size, "records": complete["total_records"]}


def first_records_line_ms(base: str, job_id: str) -> float:
    """From sending the request to holding the whole first records line, on a raw socket."""
    host, port = base.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port))) as s:
        t = time.perf_counter()
        s.sendall(f"GET /api/trace/job/{job_id}/stream HTTP/1.1\r\nHost: b\r\n\r\n".encode())
        buf = b""
        while chunk := s.recv(1 << 20):
            buf += chunk
            at = buf.find(b'{"type":"records"')
            if at >= 0 and buf.find(b"\n", at) >= 0:
                return (time.perf_counter() - t) * 1000
    raise RuntimeError("no records line")


def rest_page_ms(base: str, job_id: str, repeat: int = 7, **query: str) -> float:
    params = {"domain": "history", "limit": str(BATCH), "format": "arrays", **query}
    samples = []
    with httpx.Client(timeout=60) as client:
        for _ in range(repeat):
            t = time.perf_counter()
            r = client.get(f"{base}/api/trace/job/{job_id}/result", params=params)
            r.raise_for_status()
            samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def wait_for_totals(base: str, job_id: str) -> dict[str, Any]:
    """Wait until the job's totals and aggregations are computed: a stream's last line
    waits for the aggregations, which the first stream of a job would otherwise pay for
    (`bench/aggregation_bench.py` measures them)."""
    while len(totals := httpx.get(f"{base}/api/trace/job/{job_id}").json()["totals"]) < len(
        DOMAINS
    ):
        time.sleep(0.05)
    httpx.get(f"{base}/api/trace/job/{job_id}/aggregation", timeout=600).raise_for_status()
    return dict(totals)


def new_job(base: str, cids: list[str]) -> str:
    r = httpx.post(f"{base}/api/trace/job", json={"container_ids": cids}, timeout=60)
    r.raise_for_status()
    return str(r.json()["job_id"])


def small_job_peak_rss(db: Path, cids: list[str]) -> tuple[float, float]:
    """A fresh server's peak RSS after streaming a 1,000-CID job (CIDs spread over all),
    and its RssAnon then."""
    server = start_server(ROOT / "bench/out/data-small", db, QUIET)
    try:
        job = new_job(server.url, cids[:: max(1, len(cids) // 1000)][:1000])
        wait_for_totals(server.url, job)
        stream_over_http(server.url, job)
        return proc_status_mb(server.proc.pid), proc_status_mb(server.proc.pid, "RssAnon")
    finally:
        server.stop()


QUIET = {"TRACE_MAX_JOBS_PER_KEY": "0", "TRACE_JOB_CREATE_RATE": "0"}


def rate(run: dict[str, Any]) -> float:
    return float(run["records"]) / float(run["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cids", type=int, default=114_892)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    ap.add_argument("--no-peer", action="store_true", help="skip Datasette")
    args = ap.parse_args()
    db = demo_db(args.db, args.cids)
    cids = job_cids(db)

    pages = asyncio.run(page_latency(db, cids))
    bare = bare_or_latency(db)
    small_rss, small_anon = small_job_peak_rss(db, cids)

    plain: list[dict[str, Any]] = []
    peer: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    arrays: list[dict[str, Any]] = []
    server = start_server(ROOT / "bench/out/data", db, QUIET)
    try:
        base = server.url
        job_id = new_job(base, cids)
        totals = wait_for_totals(base, job_id)
        rss_idle = proc_status_mb(server.proc.pid)
        for _ in range(3):  # interleaved: each yardstick sees the same machine
            plain.append(plain_loop(db, cids))
            if not args.no_peer:
                peer.append(datasette_csv(db))
            objects.append(stream_over_http(base, job_id))
            arrays.append(stream_over_http(base, job_id, "arrays"))
        rss_peak = proc_status_mb(server.proc.pid)
        rss_anon = proc_status_mb(server.proc.pid, "RssAnon")
        warm = statistics.median(first_records_line_ms(base, job_id) for _ in range(7))
        cold = statistics.median(first_records_line_ms(base, new_job(base, cids)) for _ in range(5))
        history_total = totals["history"]["records"]
        codec = TokenCodec([TEST_SECRET])  # a token for the last page, as the server signs it
        cid, rid = pages["last_key"]
        last_token = codec.sign(Cursor(job_id, "history", 1, cid, rid, 0))
        rest = {
            "since_first": rest_page_ms(base, job_id),
            "since_last": rest_page_ms(base, job_id, since=last_token),
            "offset_first": rest_page_ms(base, job_id, offset="0"),
            "offset_last": rest_page_ms(base, job_id, offset=str(history_total - BATCH)),
        }
    finally:
        server.stop()

    def med(runs: list[dict[str, Any]]) -> float:
        return statistics.median(rate(r) for r in runs)

    results: dict[str, Any] = {
        "records": objects[0]["records"],
        "plain_loop_records_per_s": med(plain),
        "objects_records_per_s": med(objects),
        "arrays_records_per_s": med(arrays),
        "objects_over_plain_loop": med(objects) / med(plain),
        "arrays_over_objects": med(arrays) / med(objects),
        "objects_bytes_per_record": objects[0]["bytes"] / objects[0]["records"],
        "arrays_bytes_per_record": arrays[0]["bytes"] / arrays[0]["records"],
        "server_rss_idle_mb": rss_idle,
        "server_rss_peak_mb": rss_peak,
        "server_rss_anon_after_mb": rss_anon,
        "server_rss_peak_1000_cids_mb": small_rss,
        "server_rss_anon_1000_cids_mb": small_anon,
        "first_records_new_job_ms": cold,
        "first_records_counted_ms": warm,
        "page_first_ms": pages["first_ms"],
        "page_last_ms": pages["last_ms"],
        "page_last_over_first": pages["last_ms"] / pages["first_ms"],
        "rest_since_first_ms": rest["since_first"],
        "rest_since_last_ms": rest["since_last"],
        "rest_since_last_over_first": rest["since_last"] / rest["since_first"],
        "rest_offset_first_ms": rest["offset_first"],
        "rest_offset_last_ms": rest["offset_last"],
        "rest_offset_last_over_first": rest["offset_last"] / rest["offset_first"],
        "bare_or_first_ms": bare["first_ms"],
        "bare_or_last_ms": bare["last_ms"],
    }
    if peer:
        results |= {
            "datasette_csv_records_per_s": med(peer),
            "datasette_csv_bytes_per_record": peer[0]["bytes"] / peer[0]["records"],
            "datasette_csv_records": peer[0]["records"],
            "objects_over_datasette": med(objects) / med(peer),
        }
    out = ROOT / "bench/out/results.json"
    out.write_text(json.dumps(results, indent=2))
    width = max(map(len, results))
    for k, v in results.items():
        print(f"{k:<{width}}  {v:,.3f}" if isinstance(v, float) else f"{k:<{width}}  {v:,}")


if __name__ == "__main__":
    main()
