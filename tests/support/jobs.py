"""A job over HTTP: create it, read its NDJSON lines, and the records they carry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

Line = dict[str, Any]
Records = dict[str, list[tuple[Any, ...]]]


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


def iter_lines(base: str, job_id: str, since: str | None = None, **params: str) -> Iterator[Line]:
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


def records_of(lines: list[Line]) -> Records:
    """Records per domain, as tuples in column order (objects or arrays format)."""
    out: Records = {}
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


def records_union(*parts: list[Line]) -> Records:
    """The records of several streams of one job (a cut one, then its resumes), in order:
    equal to the truth only if no record came twice and none was skipped."""
    out: Records = {}
    for lines in parts:
        for domain, rows in records_of(lines).items():
            out.setdefault(domain, []).extend(rows)
    return out


def last_since(lines: list[Line]) -> str | None:
    tokens = [line["since"] for line in lines if line.get("since")]
    return tokens[-1] if tokens else None
