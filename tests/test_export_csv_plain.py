"""csv.zip for programs: `{"format": "csv.zip", "spreadsheet": false}` writes plain RFC
4180 (no BOM, no `'` before formula-like text), the cells exactly the stream's values; the
default stays spreadsheet-safe, including formulas behind whitespace, NBSP or line breaks."""

from __future__ import annotations

import csv
import io
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from svc.sources.demo import build_demo_database
from tests.support import DOMAINS, all_cids, assert_problem, create_job, iter_lines, records_of
from tests.support.exports import Status, download, finished
from tests.support.servers import ServerProcess, start_server

RISKY = ["=1+1", ' =HYPERLINK("x")', "\u00a0@SUM(A1)", "\n-2", "+3", "plain", "  spaced"]


@pytest.fixture(scope="module")
def risky_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("risky") / "db.sqlite3"
    build_demo_database(db, cids=15, seed=11)
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT rowid FROM MES_CONTAINER_HISTORY")]
        conn.executemany(
            "UPDATE MES_CONTAINER_HISTORY SET COMMENTS = ? WHERE rowid = ?",
            [(RISKY[i % len(RISKY)], rid) for i, rid in enumerate(ids)],
        )
    srv = start_server(tmp_path_factory.mktemp("data"), db, {"TRACE_STREAM_BATCH_SIZE": "40"})
    srv.env["DB"] = str(db)
    yield srv
    srv.stop()


def _export(server: ServerProcess, job_id: str, body: dict[str, Any]) -> tuple[Status, bytes]:
    r = httpx.post(f"{server.url}/api/trace/job/{job_id}/exports", json=body, timeout=30)
    assert r.status_code == 202, r.text
    status = finished(server.url, r.json())
    return status, download(server.url, status)


def _files(blob: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {name: zf.read(name).decode("utf-8") for name in zf.namelist()}


def test_plain_csv_zip_holds_the_values_as_they_are(risky_server: ServerProcess) -> None:
    job = create_job(risky_server.url, all_cids(Path(risky_server.env["DB"])))
    truth = records_of(list(iter_lines(risky_server.url, job["job_id"], format="arrays")))
    status, blob = _export(risky_server, job["job_id"], {"format": "csv.zip", "spreadsheet": False})
    assert status["spreadsheet"] is False
    comments = DOMAINS["history"].columns.index("COMMENTS")
    for name, text in _files(blob).items():
        assert not text.startswith("\ufeff")
        domain = name.removesuffix(".csv")
        header, *rows = csv.reader(io.StringIO(text, newline=""))
        assert header == list(DOMAINS[domain].columns)
        assert len(rows) == len(truth[domain])
        if domain == "history":
            assert [row[comments] for row in rows] == [rec[comments] for rec in truth[domain]]
    assert set(RISKY) <= {row[comments] for row in truth["history"]}

    status, blob = _export(risky_server, job["job_id"], {"format": "csv.zip"})
    assert status["spreadsheet"] is True
    text = _files(blob)["history.csv"]
    assert text.startswith("\ufeff")
    cells = [row[comments] for row in csv.reader(io.StringIO(text[1:], newline=""))][1:]
    defused = {"'=1+1", '\' =HYPERLINK("x")', "'\u00a0@SUM(A1)", "'\n-2", "'+3"}
    assert set(cells) == defused | {"plain", "  spaced"}


def test_spreadsheet_must_be_a_boolean(risky_server: ServerProcess) -> None:
    job = create_job(risky_server.url, all_cids(Path(risky_server.env["DB"]))[:2])
    url = f"{risky_server.url}/api/trace/job/{job['job_id']}/exports"
    r = httpx.post(url, json={"format": "csv.zip", "spreadsheet": "no"})
    assert_problem(r, 400, "invalid_request")
