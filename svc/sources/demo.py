"""The embedded demo database: realistic MES trace rows for N containers.

About 10 history and 5 material rows per CID. Rows are generated for every container,
then inserted in transaction-time order, so row id order is not CID order (as in a real
MES table, and as the keyset reader must cope with). The file is built beside its target
and renamed into place, so a half-built database is never served.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svc.sources.migrate import migrate_sqlite

if TYPE_CHECKING:
    from svc.sources import Source

_STEPS = [
    ("WAFER-SAW", "WC-SAW", "SAW"),
    ("DIE-ATTACH", "WC-DA", "DA"),
    ("WIRE-BOND", "WC-WB", "WB"),
    ("MOLD", "WC-MOLD", "MLD"),
    ("PLATE", "WC-PLT", "PLT"),
    ("TRIM-FORM", "WC-TF", "TF"),
    ("FINAL-TEST", "WC-FT", "FT"),
    ("PACK", "WC-PACK", "PK"),
]
_EVENTS = ["TrackIn", "TrackOut", "MoveIn", "MoveOut", "DataCollect", "Hold", "Release"]
_RARE = ["Rework", "Split", "Merge", "ScrapQty", "ChangeSpec"]
_MATERIALS = [
    ("EPOXY-8200", "g"),
    ("AU-WIRE-25UM", "m"),
    ("CU-WIRE-20UM", "m"),
    ("MOLD-CMPD-G700", "g"),
    ("LEADFRAME-QFN48", "ea"),
    ("SN-PLATE-SOL", "ml"),
    ("TRAY-JEDEC-10", "ea"),
    ("DIE-A7X", "ea"),
]
_COMMENTS = [
    "",
    "",
    "",
    "",
    "lot ok",
    "visual check pass",
    "recipe v3",
    "re-measured",
    "minor void found",
    "hold per QA request",
    "released after review",
]
# A sample of the demo's CIDs, for the front end's "demo CIDs" button.
_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z
_SPAN = 120 * 86400


def _container_ids(rng: random.Random, n: int) -> list[str]:
    seen: set[str] = set()
    while len(seen) < n:
        seen.add(f"{rng.getrandbits(64):016x}")
    return list(seen)


def _stamp(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


def generate(
    cids: list[str], rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """History and material rows (time first, for sorting) for every container."""
    history: list[tuple[Any, ...]] = []
    materials: list[tuple[Any, ...]] = []
    employees = [f"EMP{n:05d}" for n in range(400)]
    for cid in cids:
        t = _EPOCH + rng.randrange(_SPAN)
        qty = float(rng.choice((1000, 2000, 2400, 3000, 4800)))
        for i in range(rng.randint(7, 13)):
            spec, wc, eq = _STEPS[min(i * len(_STEPS) // 10, len(_STEPS) - 1)]
            t += rng.randrange(600, 5 * 3600)
            event = rng.choice(_RARE) if rng.random() < 0.05 else rng.choice(_EVENTS)
            if event == "ScrapQty":
                qty -= rng.randrange(1, 25)
            history.append(
                (
                    t,
                    cid,
                    event,
                    spec,
                    wc,
                    f"{eq}-{rng.randrange(1, 41):02d}",
                    qty,
                    round(qty / 4, 2),
                    rng.choice(employees),
                    rng.choice(_COMMENTS),
                )
            )
        t2 = t - rng.randrange(3600, 48 * 3600)
        for _ in range(rng.randint(3, 7)):
            part, uom = rng.choice(_MATERIALS)
            t2 += rng.randrange(300, 4 * 3600)
            spec, wc, eq = rng.choice(_STEPS)
            materials.append(
                (
                    t2,
                    cid,
                    part,
                    f"ML{rng.getrandbits(32):08X}",
                    round(rng.uniform(0.5, 500), 3),
                    uom,
                    wc,
                    f"{eq}-{rng.randrange(1, 41):02d}",
                    rng.choice(employees),
                )
            )
    history.sort(key=lambda r: r[0])
    materials.sort(key=lambda r: r[0])
    return history, materials


def demo_rows(
    cids: int, seed: int = 42
) -> tuple[list[str], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The demo's CIDs, history and material rows: the same for every engine and seed."""
    rng = random.Random(seed)
    ids = _container_ids(rng, cids)
    history, materials = generate(ids, rng)
    return ids, history, materials


def build_demo_database(path: Path, cids: int, seed: int = 42) -> dict[str, int]:
    """Build the demo database at `path` (replacing it); return the row counts."""
    ids, history, materials = demo_rows(cids, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".building-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        migrate_sqlite(conn, upto="001_demo_tables.sql")
        conn.executemany(
            "INSERT INTO MES_CONTAINER_HISTORY VALUES (?,?,?,?,?,?,?,?,?,?)",
            ((r[1], _stamp(r[0]), *r[2:]) for r in history),
        )
        conn.executemany(
            "INSERT INTO MES_CONTAINER_MATERIALS VALUES (?,?,?,?,?,?,?,?,?)",
            ((r[1], _stamp(r[0]), *r[2:]) for r in materials),
        )
        conn.executemany("INSERT INTO TRACE_DEMO_CONTAINERS VALUES (?)", ((c,) for c in ids))
        conn.commit()
        migrate_sqlite(conn)
        conn.execute("ANALYZE")
        conn.commit()
    except BaseException:  # Ctrl-C or a failure: no half-built file is left behind
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(tmp, path)
    return {"containers": len(ids), "history": len(history), "materials": len(materials)}


# --- the same rows in Oracle (`demo-data --db-url oracle://...`) ---------------------

_DEMO_TABLES = ("MES_CONTAINER_HISTORY", "MES_CONTAINER_MATERIALS", "TRACE_DEMO_CONTAINERS")


def _date(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


def _insert(cur: Any, sql: str, rows: Iterable[tuple[Any, ...]], batch: int) -> int:
    count, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch:
            cur.executemany(sql, chunk)
            count, chunk = count + len(chunk), []
    if chunk:
        cur.executemany(sql, chunk)
        count += len(chunk)
    return count


def load_demo_oracle(db_url: str, cids: int, seed: int = 42, batch: int = 10_000) -> dict[str, int]:
    """Replace the Oracle demo tables' rows with the demo data; return the row counts.

    The rows are those of the SQLite demo for the same `cids` and `seed`, inserted in
    time order (so ROWID order is not CID order); the tables are migrated first and
    their optimizer statistics gathered last.
    """
    from svc.sources.migrate import migrate_oracle
    from svc.sources.oracle import connect

    migrate_oracle(db_url)
    ids, history, materials = demo_rows(cids, seed)
    with connect(db_url) as conn, conn.cursor() as cur:
        for table in _DEMO_TABLES:
            cur.execute(f"TRUNCATE TABLE {table}")
        counts = {
            "containers": _insert(
                cur,
                "INSERT INTO TRACE_DEMO_CONTAINERS (CONTAINERID) VALUES (:1)",
                ((c,) for c in ids),
                batch,
            ),
            "history": _insert(
                cur,
                "INSERT INTO MES_CONTAINER_HISTORY (CONTAINERID, TXNDATE, EVENTNAME, SPECNAME,"
                " WORKCENTERNAME, EQUIPMENTNAME, QTY, QTY2, EMPLOYEENAME, COMMENTS)"
                " VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9, :10)",
                ((r[1], _date(r[0]), *r[2:]) for r in history),
                batch,
            ),
            "materials": _insert(
                cur,
                "INSERT INTO MES_CONTAINER_MATERIALS (CONTAINERID, TXNDATE, MATERIALPARTNAME,"
                " MATERIALLOTNAME, QTYCONSUMED, UOM, WORKCENTERNAME, EQUIPMENTNAME,"
                " EMPLOYEENAME) VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9)",
                ((r[1], _date(r[0]), *r[2:]) for r in materials),
                batch,
            ),
        }
        conn.commit()
        for table in _DEMO_TABLES:
            cur.execute(
                "BEGIN DBMS_STATS.GATHER_TABLE_STATS(ownname => USER, tabname => :t); END;",
                {"t": table},
            )
    return counts


_RANDOM_CIDS_SQL = "SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS ORDER BY random() LIMIT :n"


async def random_cids(source: Source, n: int) -> list[str]:
    """`n` random CIDs of the embedded demo database (`GET /api/demo/cids`)."""
    rows = await source.fetch(_RANDOM_CIDS_SQL, {"n": n}, lane="control")
    return [r[0] for r in rows]
