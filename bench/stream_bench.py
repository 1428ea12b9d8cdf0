"""Stream benchmark on the 114,892-CID demo database (~1.7M records), in one run:

- records/s and MB/s of the whole job over HTTP on loopback, against the same stream code
  (`svc.stream.JobStream`) run in-process without HTTP (the ceiling);
- the server's peak RSS (VmHWM) after streaming the whole job;
- time to the first records line (warm: totals already computed; cold: a new job);
- first-page and last-page latency of a domain, in-process and over REST, and the bare-OR
  keyset form for contrast.

    .venv/bin/python bench/stream_bench.py [--cids 114892] [--db bench/out/demo114.sqlite3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svc.config import Settings  # noqa: E402
from svc.demo import build_demo_database  # noqa: E402
from svc.domains import load_domains  # noqa: E402
from svc.keyset import Key, Plan  # noqa: E402
from svc.reader import DomainReader  # noqa: E402
from svc.server import build_service  # noqa: E402
from svc.sources.sqlite import SqliteSource  # noqa: E402
from svc.stream import JobStream  # noqa: E402
from svc.tokens import Cursor, TokenCodec  # noqa: E402
from tests.servers import TEST_SECRET, start_server  # noqa: E402

DOMAINS = load_domains()
BATCH = 5000


def demo_db(path: Path, cids: int) -> Path:
    if path.exists():
        with sqlite3.connect(path) as conn:
            n = conn.execute("SELECT COUNT(*) FROM TRACE_DEMO_CONTAINERS").fetchone()[0]
        if n == cids:
            return path
    t = time.perf_counter()
    counts = build_demo_database(path, cids=cids)
    print(f"built {path} in {time.perf_counter() - t:.1f}s: {counts}", file=sys.stderr)
    return path


def job_cids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return sorted(r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS"))


async def ceiling(db: Path, cids: list[str], data_dir: Path) -> dict[str, float]:
    """The stream's own code without HTTP: `JobStream` in-process, every line encoded."""
    settings = Settings(db_url=f"sqlite:///{db}", secrets=[TEST_SECRET], data_dir=data_dir)
    svc = await build_service(settings)
    spec = await svc.create_job(cids, None, None)
    for name in spec.domains:
        await svc.totals(spec, name)  # warm, as in the HTTP run
    records = size = 0
    t = time.perf_counter()
    async for line in JobStream(svc, spec, None, None, arrays=False).lines():
        size += len(line)
    elapsed = time.perf_counter() - t
    records = json.loads(line)["total_records"]
    await svc.close()
    return {"records": records, "bytes": size, "seconds": elapsed}


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


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stream_over_http(base: str, job_id: str) -> dict[str, Any]:
    """Stream the whole job with a lean client: raw bytes, no per-line work."""
    t = time.perf_counter()
    first_records = None
    size = 0
    head = tail = b""
    # The JSON as it is (httpx asks for gzip by default): bench/gzip_bench.py measures gzip.
    with httpx.Client(timeout=120, headers={"Accept-Encoding": "identity"}) as client:
        with client.stream("GET", f"{base}/api/trace/job/{job_id}/stream") as r:
            for chunk in r.iter_raw(1 << 20):
                size += len(chunk)
                if first_records is None:
                    head += chunk
                    if b'{"type":"records"' in head:
                        first_records = time.perf_counter() - t
                        head = b""
                tail = (tail + chunk)[-4096:]
    complete = json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    assert complete["type"] == "complete", complete
    return {
        "seconds": time.perf_counter() - t,
        "bytes": size,
        "ttfr_ms": (first_records or 0) * 1000,
        "records": complete["total_records"],
    }


def first_records_line_ms(base: str, job_id: str) -> float:
    t = time.perf_counter()
    with httpx.stream("GET", f"{base}/api/trace/job/{job_id}/stream", timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith('{"type":"records"'):
                return (time.perf_counter() - t) * 1000
    raise RuntimeError("no records line")


def rest_page_ms(base: str, job_id: str, since: str | None, repeat: int = 7) -> float:
    params = {"domain": "history", "limit": str(BATCH), "format": "arrays"}
    if since:
        params["since"] = since
    samples = []
    with httpx.Client(timeout=60) as client:
        for _ in range(repeat):
            t = time.perf_counter()
            r = client.get(f"{base}/api/trace/job/{job_id}/result", params=params)
            r.raise_for_status()
            samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def wait_for_totals(base: str, job_id: str) -> None:
    while len(httpx.get(f"{base}/api/trace/job/{job_id}").json()["totals"]) < len(DOMAINS):
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cids", type=int, default=114_892)
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    args = ap.parse_args()
    db = demo_db(args.db, args.cids)
    cids = job_cids(db)

    roof = asyncio.run(ceiling(db, cids, ROOT / "bench/out/data-inprocess"))
    pages = asyncio.run(page_latency(db, cids))
    bare = bare_or_latency(db)

    server = start_server(ROOT / "bench/out/data", db)
    try:
        base = server.url
        r = httpx.post(f"{base}/api/trace/job", json={"container_ids": cids}, timeout=60)
        r.raise_for_status()
        job_id = r.json()["job_id"]
        wait_for_totals(base, job_id)
        rss_before = vm_hwm_mb(server.proc.pid)
        http = stream_over_http(base, job_id)
        rss_peak = vm_hwm_mb(server.proc.pid)
        warm_ttfr = statistics.median(first_records_line_ms(base, job_id) for _ in range(5))
        cold = httpx.post(f"{base}/api/trace/job", json={"container_ids": cids}, timeout=60)
        cold_ttfr = first_records_line_ms(base, cold.json()["job_id"])
        # A token for the last history page, signed as the server would sign it.
        codec = TokenCodec([TEST_SECRET])
        history = DOMAINS["history"]
        cid, rid = pages["last_key"]
        last_token = codec.sign(Cursor(job_id, history.name, 1, cid, rid, 0))
        rest_first = rest_page_ms(base, job_id, None)
        rest_last = rest_page_ms(base, job_id, last_token)
    finally:
        server.stop()

    results = {
        "records": http["records"],
        "http_records_per_s": http["records"] / http["seconds"],
        "http_mb_per_s": http["bytes"] / http["seconds"] / 1e6,
        "http_seconds": http["seconds"],
        "ceiling_records_per_s": roof["records"] / roof["seconds"],
        "ceiling_mb_per_s": roof["bytes"] / roof["seconds"] / 1e6,
        "ceiling_seconds": roof["seconds"],
        "http_over_ceiling": (http["records"] / http["seconds"])
        / (roof["records"] / roof["seconds"]),
        "server_rss_idle_mb": rss_before,
        "server_rss_peak_mb": rss_peak,
        "ttfr_warm_ms": warm_ttfr,
        "ttfr_cold_ms": cold_ttfr,
        "page_first_ms": pages["first_ms"],
        "page_last_ms": pages["last_ms"],
        "page_last_over_first": pages["last_ms"] / pages["first_ms"],
        "rest_first_ms": rest_first,
        "rest_last_ms": rest_last,
        "bare_or_first_ms": bare["first_ms"],
        "bare_or_last_ms": bare["last_ms"],
    }
    out = ROOT / "bench/out/results.json"
    out.write_text(json.dumps(results, indent=2))
    width = max(map(len, results))
    for k, v in results.items():
        print(f"{k:<{width}}  {v:,.3f}" if isinstance(v, float) else f"{k:<{width}}  {v:,}")


if __name__ == "__main__":
    main()
