"""Helpers shared by the end-to-end tests: jobs, NDJSON reading, ground truth from SQL."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from svc.core.domains import ROWID, Domain, load_domains
from svc.protocol import Condition, Range

DOMAINS = load_domains()

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
) -> list[tuple[Any, ...]]:
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


def create_job(
    base: str,
    cids: list[str],
    domains: list[str] | None = None,
    where: dict[str, Any] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"container_ids": cids}
    if domains is not None:
        body["domains"] = domains
    if where is not None:
        body["where"] = where
    r = httpx.post(f"{base}/api/trace/job", json=body, timeout=30, **kw)
    assert r.status_code == 201, r.text
    job: dict[str, Any] = r.json()
    return job


def iter_lines(
    base: str, job_id: str, since: str | None = None, **params: str
) -> Iterator[dict[str, Any]]:
    query = dict(params)
    if since is not None:
        query["since"] = since
    with httpx.stream(
        "GET", f"{base}/api/trace/job/{job_id}/stream", params=query, timeout=60
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("application/x-ndjson")
        for line in r.iter_lines():
            if line:
                yield json.loads(line)


def records_of(lines: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """Records per domain, as tuples in column order (objects or arrays format)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    columns: dict[str, list[str]] = {}
    for line in lines:
        if line["type"] == "domain_start":
            columns[line["domain"]] = line["columns"]
        elif line["type"] == "records":
            cols = columns[line["domain"]]
            for rec in line["data"]:
                row = tuple(rec) if isinstance(rec, list) else tuple(rec[c] for c in cols)
                out.setdefault(line["domain"], []).append(row)
    return out


def last_since(lines: list[dict[str, Any]]) -> str | None:
    tokens = [line["since"] for line in lines if line.get("since")]
    return tokens[-1] if tokens else None


# --- CSV: a file read back, compared with records value by value ------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # text cells spreadsheets would run


def read_csv(body: bytes, bom: bool) -> list[list[str]]:
    """The rows of a CSV download (Python's csv module), checking its BOM."""
    text = body.decode("utf-8")
    assert text.startswith("\ufeff") == bom
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def same_value(cell: str, value: Any, spreadsheet: bool) -> bool:
    """A CSV cell holds the record's value: NULL empty, text itself (a formula's first
    character escaped with `'` for spreadsheets), numbers and booleans as JSON writes them."""
    if value is None:
        return cell == ""
    if isinstance(value, str):
        return cell == ("'" + value if spreadsheet and value.startswith(FORMULA_START) else value)
    return json.dumps(json.loads(cell)) == json.dumps(value)  # same type, same value (-0.0)


def assert_rows_equal(rows: list[list[str]], records: list[tuple[Any, ...]], sheet: bool) -> None:
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        assert len(row) == len(record)
        for cell, value in zip(row, record, strict=True):
            assert same_value(cell, value, sheet), (cell, value)
