"""Ground truth straight from SQL: the rows a job must stream, with no code of the service."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from svc.core.domains import ROWID, Domain, load_domains
from svc.protocol import Condition, Range

DOMAINS = load_domains()

Row = tuple[Any, ...]

# Each filter kind and type of the demo's domain file, with the same rows as a predicate
# written by hand (ground truth that shares no code with filter_sql).
FILTER_CASES: dict[str, tuple[dict[str, Condition], str, tuple[object, ...]]] = {
    "in-text": ({"EVENTNAME": ["Hold", "Release"]}, "EVENTNAME IN (?, ?)", ("Hold", "Release")),
    "in-number": ({"QTY": [1000.0, 2400.0]}, "QTY IN (?, ?)", (1000.0, 2400.0)),
    "range-number": ({"QTY": Range(2000, 3000)}, "QTY >= ? AND QTY < ?", (2000, 3000)),
    "range-from": (
        {"TXNDATE": Range("2025-02-01T00:00:00")},
        "TXNDATE >= ?",
        ("2025-02-01T00:00:00",),
    ),
    "range-to": (
        {"TXNDATE": Range(None, "2025-01-20T12:00:00")},
        "TXNDATE < ?",
        ("2025-01-20T12",),
    ),
    "range-both+in": (
        {
            "TXNDATE": Range("2025-01-10T00:00:00", "2025-03-01T00:00:00"),
            "WORKCENTERNAME": ["WC-MOLD", "WC-FT", "WC-NONE"],
        },
        "TXNDATE >= ? AND TXNDATE < ? AND WORKCENTERNAME IN ('WC-MOLD', 'WC-FT')",
        ("2025-01-10", "2025-03-01"),
    ),
}


def all_cids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS")]


def expected_rows(
    db: Path, cids: list[str], domain: Domain, where: str = "", params: Sequence[object] = ()
) -> list[Row]:
    """Ground truth: a direct SQL query of the job's rows in keyset order.

    `where`: an extra predicate written by the test (with `?` params), for filtered jobs."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TEMP TABLE job_cids (cid TEXT PRIMARY KEY)")
        conn.executemany("INSERT OR IGNORE INTO job_cids VALUES (?)", ((c,) for c in cids))
        cols = ", ".join(domain.select)
        tiebreak = "rowid" if domain.tiebreak == ROWID else domain.tiebreak
        return conn.execute(
            f"SELECT {cols} FROM {domain.table} WHERE {domain.key} IN (SELECT cid FROM job_cids)"
            f"{f' AND ({where})' if where else ''} ORDER BY {domain.key}, {tiebreak}",
            params,
        ).fetchall()
    finally:
        conn.close()


def sql_truth(
    db: Path,
    cids: list[str],
    domains: Iterable[str] = ("history", "materials"),
    where: Mapping[str, tuple[str, Sequence[object]]] | None = None,
) -> dict[str, list[Row]]:
    """The expected rows of each domain of a job, as `records_of` reads them from a stream.

    `where`: per domain, a predicate written by hand and its params (filtered jobs)."""
    where = where or {}
    return {d: expected_rows(db, cids, DOMAINS[d], *where.get(d, ("", ()))) for d in domains}


def close_enough(got: Any, want: Any) -> bool:
    """Equal, with floats equal to 1e-9 relative (sums of REALs added per chunk or per
    page, in another order than one SQL SUM)."""
    if isinstance(want, float) and isinstance(got, float):
        return got == want or abs(got - want) <= 1e-9 * max(abs(got), abs(want))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(close_enough(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(
            close_enough(g, w) for g, w in zip(got, want, strict=True)
        )
    return bool(got == want)
