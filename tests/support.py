"""Helpers shared by the end-to-end tests: jobs, NDJSON reading, ground truth from SQL."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from svc.domains import ROWID, Domain, load_domains

DOMAINS = load_domains()


def all_cids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS")]


def expected_rows(db: Path, cids: list[str], domain: Domain) -> list[tuple[Any, ...]]:
    """Ground truth: a direct SQL query of the job's rows in keyset order."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TEMP TABLE job_cids (cid TEXT PRIMARY KEY)")
        conn.executemany("INSERT OR IGNORE INTO job_cids VALUES (?)", ((c,) for c in cids))
        cols = ", ".join(domain.select)
        tiebreak = "rowid" if domain.tiebreak == ROWID else domain.tiebreak
        return conn.execute(
            f"SELECT {cols} FROM {domain.table} WHERE {domain.key} IN (SELECT cid FROM job_cids)"
            f" ORDER BY {domain.key}, {tiebreak}"
        ).fetchall()
    finally:
        conn.close()


def create_job(
    base: str, cids: list[str], domains: list[str] | None = None, **kw: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"container_ids": cids}
    if domains is not None:
        body["domains"] = domains
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
