"""Export files over HTTP: start one, wait until it is done, download it, read it back."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
import zipfile
from collections.abc import Callable
from typing import Any

import httpx

from svc.core.csv_cells import BOM, cell
from tests.support.jobs import Records
from tests.support.truth import DOMAINS

Status = dict[str, Any]


def start_export(base: str, job_id: str, fmt: str, domain: str | None = None) -> Status:
    body = {"format": fmt} if domain is None else {"format": fmt, "domain": domain}
    r = httpx.post(f"{base}/api/trace/job/{job_id}/exports", json=body, timeout=30)
    assert r.status_code == 202, r.text
    status: Status = r.json()
    assert r.headers["location"] == status["links"]["self"]
    assert status["state"] in ("queued", "running") and status["format"] == fmt
    return status


def poll(base: str, status: Status, until: Callable[[Status], bool], timeout: float = 60) -> Status:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(base + status["links"]["self"], timeout=10)
        assert r.status_code == 200, r.text
        status = r.json()
        if until(status):
            return status
        time.sleep(0.01)
    raise AssertionError(f"export never got there: {status}")


def finished(base: str, status: Status) -> Status:
    status = poll(base, status, lambda s: s["state"] in ("done", "failed"))
    assert status["state"] == "done", status
    return status


def download(base: str, status: Status) -> bytes:
    r = httpx.get(base + status["links"]["file"], timeout=60)
    assert r.status_code == 200, r.text
    return r.content


def file_records(fmt: str, blob: bytes) -> Records:
    """The records of an export file per domain, as tuples in column order; for CSV each
    value is the cell text."""
    out: Records = {}
    if fmt == "ndjson.gz":
        for line in gzip.decompress(blob).splitlines():
            record = json.loads(line)
            domain = record.pop("_domain")
            assert list(record) == list(DOMAINS[domain].columns)
            out.setdefault(domain, []).append(tuple(record.values()))
        return out
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.testzip() is None
        for name in zf.namelist():
            text = zf.read(name).decode("utf-8")
            assert text.startswith(BOM)
            header, *rows = csv.reader(io.StringIO(text[1:], newline=""))
            domain = name.removesuffix(".csv")
            assert header == list(DOMAINS[domain].columns)
            out[domain] = [tuple(row) for row in rows]
    return out


def as_file_values(fmt: str, truth: Records) -> Records:
    """Records as an export file of `fmt` holds them (CSV: cell text)."""
    if fmt == "ndjson.gz":
        return truth
    return {d: [tuple(cell(v, True) for v in row) for row in rows] for d, rows in truth.items()}
