"""What the records digest (`svc.core.digest`, docs/protocol.md#digest) costs per record.

A stream's digest is one SHA-256 over each records line's `data` bytes, which the service
encodes anyway. This times, on the demo database's history rows in batches of 5,000, in
one run (so the ratios are measured on one machine at one moment):

- rows path: shaping rows into objects and encoding the records line (what the service
  did per batch before the digest), and the digest of its data;
- JSON path (the database built each record's JSON): framing the records line from the
  raw records, and the digest of its data;
- an export's writer appending the rows (ndjson.gz, csv.zip), and what it adds for the
  job's digest (shaping and encoding each batch as an objects line, then the SHA-256);
- a whole stream over HTTP (objects, no gzip, this service on loopback), for the per-record cost
  of everything a stream does.

    .venv/bin/python bench/digest_bench.py [--cids 20000] [--db bench/out/digest.sqlite3]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svc import protocol as p  # noqa: E402
from svc.core import digest  # noqa: E402
from svc.core.domains import load_domains  # noqa: E402
from svc.exports.formats import writer_for  # noqa: E402
from svc.exports.runner import _objects_line_data  # noqa: E402
from svc.protocol import ExportFormat  # noqa: E402
from svc.sources.demo import build_demo_database  # noqa: E402
from tests.support.servers import start_server  # noqa: E402

BATCH = 5000
IDENTITY = {"Accept-Encoding": "identity"}  # no gzip: the stream's least cost per record


def best(runs: int, work: Any) -> float:
    """The least of `runs` timings of `work()` (seconds): the least disturbed by others."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return min(times)


FORMATS: tuple[ExportFormat, ...] = ("ndjson.gz", "csv.zip")


def _append_all(fmt: ExportFormat, batches: list[list[Any]]) -> None:
    """An export writer appending every batch to a file in a scratch directory."""
    with tempfile.TemporaryDirectory() as work:
        writer = writer_for(fmt, Path(work), "bench", [load_domains()["history"]], time.time())
        writer.resume(0, 0)
        writer.begin(0)
        for b in batches:
            writer.append(0, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cids", type=int, default=20000)
    parser.add_argument("--db", type=Path, default=ROOT / "bench/out/digest.sqlite3")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.db.exists():
        build_demo_database(args.db, cids=args.cids)
    columns = load_domains()["history"].columns
    with sqlite3.connect(args.db) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(columns)}, rowid FROM MES_CONTAINER_HISTORY "
            "ORDER BY CONTAINERID, rowid"
        ).fetchall()
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    n = len(rows)
    raw = [[msgspec.Raw(p.encode(r)) for r in p.shape_records(b, columns, False)] for b in batches]

    def rows_line() -> None:
        for b in batches:
            p.encode_line(p.Records("history", 1, p.shape_records(b, columns, False), "t"))

    def json_line() -> None:
        for b in raw:
            p.encode_line(p.Records("history", 1, b, "t"))  # type: ignore[arg-type]

    encoded = [p.encode(b) for b in raw]

    def chain() -> None:
        h = digest.START
        for data in encoded:
            h = digest.chain(h, data)

    rows_s, json_s, chain_s = (best(args.runs, f) for f in (rows_line, json_line, chain))
    export_digest = _objects_line_data(columns)

    def export_chain() -> None:
        h = digest.START
        for b in batches:
            h = digest.chain(h, export_digest(b))

    appends = {fmt: best(args.runs, lambda fmt=fmt: _append_all(fmt, batches)) for fmt in FORMATS}
    export_s = best(args.runs, export_chain)
    per = 1e9 / n
    print(f"{n} history records, batches of {BATCH}, {sum(map(len, encoded)) / n:.0f} B/record")
    print(f"rows path: shape + encode line   {rows_s * per:7.0f} ns/record")
    print(f"JSON path: frame line            {json_s * per:7.0f} ns/record")
    print(f"digest: SHA-256 over data        {chain_s * per:7.0f} ns/record")
    print(f"  vs rows path encoding          {100 * chain_s / rows_s:6.1f} %")
    print(f"  vs JSON path framing           {100 * chain_s / json_s:6.1f} %")
    for fmt, append_s in appends.items():
        print(f"export {fmt:9} append            {append_s * per:7.0f} ns/record")
    print(f"export digest: shape+encode+SHA  {export_s * per:7.0f} ns/record")
    for fmt, append_s in appends.items():
        print(f"  vs {fmt:9} append            {100 * export_s / append_s:6.1f} %")

    server = start_server(ROOT / "bench/out/digest-server", args.db, {})
    try:
        cids = [
            r[0]
            for r in sqlite3.connect(args.db).execute(
                "SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS"
            )
        ]
        job = httpx.post(
            f"{server.url}/api/trace/job",
            json={"container_ids": cids, "domains": ["history"]},
            timeout=60,
        ).json()
        url = f"{server.url}/api/trace/job/{job['job_id']}/stream"

        def stream() -> None:
            with httpx.stream("GET", url, headers=IDENTITY, timeout=120) as r:
                for _ in r.iter_raw():
                    pass

        stream()  # warm: totals counted, caches filled
        stream_s = best(args.runs, stream)
    finally:
        server.stop()
    print(f"whole stream over HTTP           {stream_s * per:7.0f} ns/record")
    print(f"  digest share of the stream     {100 * chain_s / stream_s:6.1f} %")


if __name__ == "__main__":
    main()
