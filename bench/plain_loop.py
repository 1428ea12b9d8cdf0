"""The yardstick outside the service: a plain in-process Python loop over the same tables.

What a developer would write by hand to dump a job: IN lists of 1000 CIDs, keyset pages of
5000 in (CONTAINERID, rowid) order, `dict(zip(columns, row))`, msgspec, one NDJSON line per
page; no HTTP, no tokens, no threads. `bench/stream_bench.py` runs it in the same run as the
service's stream, so their ratio is measured on one machine at one moment.

    .venv/bin/python bench/plain_loop.py [--db bench/out/demo114.sqlite3]
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
TABLES = {  # domain -> (table, columns): the demo schema, spelled out as a user would
    "history": (
        "MES_CONTAINER_HISTORY",
        "CONTAINERID TXNDATE EVENTNAME SPECNAME WORKCENTERNAME EQUIPMENTNAME QTY QTY2"
        " EMPLOYEENAME COMMENTS".split(),
    ),
    "materials": (
        "MES_CONTAINER_MATERIALS",
        "CONTAINERID TXNDATE MATERIALPARTNAME MATERIALLOTNAME QTYCONSUMED UOM WORKCENTERNAME"
        " EQUIPMENTNAME EMPLOYEENAME".split(),
    ),
}
CHUNK = 1000
PAGE = 5000


def plain_loop(db: Path, cids: list[str]) -> dict[str, float]:
    """Every record of `cids` in both domains; returns records, bytes and seconds."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    encode = msgspec.json.Encoder().encode
    records = size = 0
    started = time.perf_counter()
    for table, columns in TABLES.values():
        select = ", ".join(columns)
        for at in range(0, len(cids), CHUNK):
            chunk = cids[at : at + CHUNK]
            marks = ", ".join("?" * len(chunk))
            sql = (
                f"SELECT {select}, rowid FROM {table} WHERE CONTAINERID IN ({marks})"
                " AND (CONTAINERID, rowid) > (?, ?) ORDER BY CONTAINERID, rowid LIMIT ?"
            )
            last: tuple[str, int] = ("", -1)
            while True:
                rows = conn.execute(sql, (*chunk, *last, PAGE)).fetchall()
                if not rows:
                    break
                line = encode([dict(zip(columns, row[:-1], strict=True)) for row in rows])
                size += len(line) + 1
                records += len(rows)
                last = (rows[-1][0], rows[-1][-1])
                if len(rows) < PAGE:
                    break
    conn.close()
    return {"records": records, "bytes": size, "seconds": time.perf_counter() - started}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    args = ap.parse_args()
    with sqlite3.connect(args.db) as conn:
        cids = sorted(r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS"))
    r = plain_loop(args.db, cids)
    print(f"{r['records']:,} records in {r['seconds']:.2f}s: {r['records'] / r['seconds']:,.0f}/s")


if __name__ == "__main__":
    main()
