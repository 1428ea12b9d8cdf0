"""Lines stay whole to generic line readers: U+2028, U+2029 and NEL in the data (valid raw in
JSON) are escaped in stream lines and ndjson.gz export lines, on both ways batches are
filled (JSON built by SQLite, and rows encoded by msgspec), so `str.splitlines` and httpx
`iter_lines` see one line per record line. Infinities in the database arrive as null (as
docs/protocol.md says)."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from svc.sources.demo import build_demo_database
from tests.support import DOMAINS, all_cids, create_job
from tests.support.exports import download, finished, start_export
from tests.support.servers import ServerProcess, start_server

ODD_TEXTS = [
    "line\u2028separator",
    "para\u2029graph",
    "next\x85line (NEL)",
    "all \u2028\u2029\x85 and \n and \r\n and \x1c é",
]


@pytest.fixture(scope="module")
def odd_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("separators") / "db.sqlite3"
    build_demo_database(path, cids=20, seed=3)
    with sqlite3.connect(path) as conn:
        ids = [r[0] for r in conn.execute("SELECT rowid FROM MES_CONTAINER_HISTORY")]
        conn.executemany(
            "UPDATE MES_CONTAINER_HISTORY SET COMMENTS = ? WHERE rowid = ?",
            [(ODD_TEXTS[i % len(ODD_TEXTS)], rid) for i, rid in enumerate(ids[::2])],
        )
        conn.execute("UPDATE MES_CONTAINER_HISTORY SET QTY = 9e999 WHERE rowid = ?", (ids[1],))
        conn.execute("UPDATE MES_CONTAINER_HISTORY SET QTY = -9e999 WHERE rowid = ?", (ids[3],))
    return path


@pytest.fixture(scope="module", params=["1", "0"], ids=["database-json", "rows"])
def odd_server(
    request: pytest.FixtureRequest, odd_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"TRACE_STREAM_BATCH_SIZE": "50", "TRACE_DATABASE_JSON": request.param}
    srv = start_server(tmp_path_factory.mktemp("data"), odd_db, env)
    yield srv
    srv.stop()


def _comments(odd_db: Path) -> list[str]:
    with sqlite3.connect(odd_db) as conn:
        return [r[0] for r in conn.execute("SELECT COMMENTS FROM MES_CONTAINER_HISTORY")]


def _records(lines: list[Any]) -> list[Any]:
    return [record for line in lines if line["type"] == "records" for record in line["data"]]


def test_stream_lines_are_whole_to_generic_line_readers(
    odd_server: ServerProcess, odd_db: Path
) -> None:
    job = create_job(odd_server.url, all_cids(odd_db), ["history"])
    url = f"{odd_server.url}/api/trace/job/{job['job_id']}/stream"
    for fmt in ("objects", "arrays"):
        body = httpx.get(url, params={"format": fmt}, timeout=60).content
        assert not any(c.encode() in body for c in "\x85\u2028\u2029")
        by_newline = [json.loads(line) for line in body.split(b"\n") if line]
        assert [json.loads(line) for line in body.decode().splitlines()] == by_newline
        with httpx.stream("GET", url, params={"format": fmt}, timeout=60) as r:
            again = [json.loads(line) for line in r.iter_lines() if line]
        assert _records(again) == _records(by_newline)  # a second stream: times differ
        assert by_newline[-1]["type"] == "complete"
        records = _records(by_newline)
        columns = DOMAINS["history"].columns
        comments = [
            r["COMMENTS"] if fmt == "objects" else r[columns.index("COMMENTS")] for r in records
        ]
        assert sorted(comments, key=str) == sorted(_comments(odd_db), key=str)
        assert set(ODD_TEXTS) <= set(comments)
        qty = [r["QTY"] if fmt == "objects" else r[columns.index("QTY")] for r in records]
        assert qty.count(None) >= 2  # +inf and -inf: null, as JSON has no infinity


def test_ndjson_gz_export_lines_are_whole(odd_server: ServerProcess, odd_db: Path) -> None:
    job = create_job(odd_server.url, all_cids(odd_db), ["history"])
    status = finished(odd_server.url, start_export(odd_server.url, job["job_id"], "ndjson.gz"))
    text = gzip.decompress(download(odd_server.url, status)).decode()
    assert not any(c in text for c in "\x85\u2028\u2029")
    lines = text.splitlines()
    assert lines == text.split("\n")[:-1]
    comments = [json.loads(line)["COMMENTS"] for line in lines]
    assert sorted(comments, key=str) == sorted(_comments(odd_db), key=str)
