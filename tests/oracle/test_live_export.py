"""Live Oracle, snapshot mode: a filtered export of the values that are hardest to carry (a
40,000-character CLOB, RAW starting 0xF8, whose base64 starts with "+", BINARY_DOUBLE NaN and
infinities, TIMESTAMP(9), NUMBER(30,12)) killed with SIGKILL mid-way, resumed by a restarted
service, is byte for byte the uninterrupted export, while rows change underneath. And
`AS OF SCN` read through a view and a synonym.

Needs CREATE TABLE, CREATE VIEW, CREATE SYNONYM and EXECUTE on DBMS_FLASHBACK."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import os
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oracledb
import pytest

from tests.oracle.live import DSN, LIVE, connect
from tests.support import create_job, iter_lines, records_of
from tests.support.exports import download, finished, poll, start_export
from tests.support.servers import ServerProcess, start_server

pytestmark = LIVE

TABLE, VIEW, SYNONYM = "TRACE_LIVE_EXPORT", "TRACE_LIVE_EXPORT_V", "TRACE_LIVE_EXPORT_S"
CIDS = [f"e{i:03d}" for i in range(300)]
ROWS = 3000
CLOB_TEXT = "ä" + "y" * 39_999  # 40,000 characters, past any VARCHAR2
DOUBLES = {3: "NaN", 5: "Inf", 7: "-Inf"}

DOMAINS = f"""
[domains.hard]
table = "{TABLE}"
tiebreak = "ID"
columns = ["CONTAINERID", "ID", "KIND", "NOTE", "RAWV", "D", "TS", "N"]

[domains.hard.filters]
KIND = "in"
N = {{ op = "range", type = "number" }}

[domains.view]
table = "{VIEW}"
tiebreak = "ID"
columns = ["CONTAINERID", "ID", "KIND", "N"]

[domains.syn]
table = "{SYNONYM}"
columns = ["CONTAINERID", "ID", "KIND"]
"""
WHERE = {"hard": {"KIND": ["a", "b", "c"], "N": {"from": -1e15}}}


def _row(i: int) -> dict[str, Any]:
    return {
        "cid": CIDS[i % len(CIDS)],
        "id": i,
        "kind": "abcd"[i % 4],
        "note": CLOB_TEXT if i % 100 == 0 else f"note {i}",
        "raw": bytes([0xF8 + i % 4]) + i.to_bytes(15, "big"),
        "d": DOUBLES.get(i % 10, str(i / 3)),
        "ts": f"2025-02-{1 + i % 28:02d} 04:05:06.{(i * 123456789) % 10**9:09d}",
        "n": f"{'-' if i % 6 == 0 else ''}{i * 987654321987 % 10**18}.{i * 7 % 10**12:012d}",
    }


INSERT = (
    f"INSERT INTO {TABLE} (CONTAINERID, ID, KIND, NOTE, RAWV, D, TS, N) VALUES (:cid, :id,"
    " :kind, :note, :raw, CASE :d WHEN 'NaN' THEN BINARY_DOUBLE_NAN"
    " WHEN 'Inf' THEN BINARY_DOUBLE_INFINITY WHEN '-Inf' THEN -BINARY_DOUBLE_INFINITY"
    " ELSE TO_BINARY_DOUBLE(:d) END, TO_TIMESTAMP(:ts, 'YYYY-MM-DD HH24:MI:SS.FF9'),"
    " TO_NUMBER(:n))"
)


def _insert(cur: oracledb.Cursor, rows: list[dict[str, Any]]) -> None:
    cur.setinputsizes(note=oracledb.DB_TYPE_CLOB, raw=oracledb.DB_TYPE_RAW)
    cur.executemany(INSERT, rows)


def _drop_all(cur: oracledb.Cursor) -> None:
    for what in (f"SYNONYM {SYNONYM}", f"VIEW {VIEW}", f"TABLE {TABLE} PURGE"):
        cur.execute(f"BEGIN EXECUTE IMMEDIATE 'DROP {what}'; EXCEPTION WHEN OTHERS THEN NULL; END;")


@pytest.fixture(scope="module")
def domains_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with connect() as conn, conn.cursor() as cur:
        _drop_all(cur)
        cur.execute(
            f"CREATE TABLE {TABLE} (CONTAINERID VARCHAR2(40) NOT NULL, ID NUMBER(10) NOT NULL,"
            " KIND VARCHAR2(4), NOTE CLOB, RAWV RAW(16), D BINARY_DOUBLE, TS TIMESTAMP(9),"
            f" N NUMBER(30,12), CONSTRAINT {TABLE}_PK PRIMARY KEY (ID))"
        )
        cur.execute(f"CREATE INDEX {TABLE}_CID ON {TABLE} (CONTAINERID, ID)")
        cur.execute(f"CREATE VIEW {VIEW} AS SELECT CONTAINERID, ID, KIND, N FROM {TABLE}")
        cur.execute(f"CREATE SYNONYM {SYNONYM} FOR {TABLE}")
        _insert(cur, [_row(i) for i in range(ROWS)])
        conn.commit()
    time.sleep(5)  # AS OF an SCN within seconds of a CREATE TABLE can fail with ORA-01466
    path = tmp_path_factory.mktemp("export-domains") / "domains.toml"
    path.write_text(DOMAINS)
    yield path
    with connect() as conn, conn.cursor() as cur:
        _drop_all(cur)


def _env(domains: Path) -> dict[str, str]:
    return {
        "TRACE_DB_URL": DSN,
        "TRACE_DOMAINS": str(domains),
        "TRACE_ORACLE_SNAPSHOT": "scn",
        "TRACE_STREAM_BATCH_SIZE": "10",  # ~230 checkpoints: SIGKILL lands mid-export
        "TRACE_EXPORT_WORKERS": "1",
        "TRACE_JOB_CREATE_RATE": "0",
        "TRACE_MAX_JOBS_PER_KEY": "0",
    }


def _change_rows_underneath() -> None:
    """Rows committed after the job's SCN: an insert, an update and a delete in its CIDs."""
    with connect() as conn, conn.cursor() as cur:
        _insert(cur, [_row(i) | {"id": 10**9 + i} for i in range(0, 300, 7)])
        cur.execute(f"UPDATE {TABLE} SET KIND = 'a', N = 1 WHERE ID BETWEEN 500 AND 520")
        cur.execute(f"DELETE FROM {TABLE} WHERE ID BETWEEN 900 AND 950")
        conn.commit()


def _restore_rows() -> None:
    with connect() as conn, conn.cursor() as cur:
        cur.execute(
            f"DELETE FROM {TABLE} WHERE ID >= 1000000000 OR ID BETWEEN 500 AND 520"
            " OR ID BETWEEN 900 AND 950"
        )
        _insert(cur, [_row(i) for i in (*range(500, 521), *range(900, 951))])
        conn.commit()


def _ndjson(blob: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(blob).splitlines()]


def _csv(blob: bytes) -> list[list[str]]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        text = zf.read("hard.csv").decode("utf-8")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


@pytest.mark.parametrize("fmt", ["ndjson.gz", "csv.zip"])
def test_a_killed_filtered_snapshot_export_resumes_byte_identical(
    domains_file: Path, tmp_path: Path, fmt: str
) -> None:
    data = tmp_path / "data"
    first = start_server(data, None, _env(domains_file))
    try:
        job = create_job(first.url, CIDS, ["hard"], WHERE)
        truth = records_of(list(iter_lines(first.url, job["job_id"], format="arrays")))["hard"]
        _change_rows_underneath()
        status = start_export(first.url, job["job_id"], fmt)
        status = poll(first.url, status, lambda s: s["records"] >= 600, timeout=300)
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        assert status["state"] == "running" and 0 < status["records"] < status["total"]
    finally:
        first.stop(signal.SIGKILL)
    second: ServerProcess = start_server(data, None, _env(domains_file))
    try:
        resumed = finished(second.url, status)
        blob = download(second.url, resumed)
        clean = finished(second.url, start_export(second.url, job["job_id"], fmt))
        assert download(second.url, clean) == blob  # byte for byte
        assert clean["sha256"] == resumed["sha256"] == hashlib.sha256(blob).hexdigest()
        assert resumed["records"] == len(truth) > 1000  # AS OF the job: no changed row
    finally:
        second.stop()
        _restore_rows()
    if fmt == "ndjson.gz":
        records = _ndjson(blob)
        values = [tuple(v for k, v in r.items() if k != "_domain") for r in records]
        assert values == [tuple(t) for t in truth]
        assert any(r["NOTE"] == CLOB_TEXT for r in records)
        assert all(r["RAWV"].startswith("+") for r in records)  # 0xF8-0xFB: base64 "+"
        assert {r["D"] for r in records if r["ID"] % 10 in DOUBLES} == {None}
        assert all(base64.b64decode(r["RAWV"])[0] >= 0xF8 for r in records)
    else:
        header, *rows = _csv(blob)
        assert header == ["CONTAINERID", "ID", "KIND", "NOTE", "RAWV", "D", "TS", "N"]
        assert len(rows) == len(truth)
        assert [row[4] for row in rows] == ["'" + t[4] for t in truth]  # every RAW defused
        assert any(len(row[3]) == len(CLOB_TEXT) for row in rows)


@pytest.fixture(scope="module")
def scn_server(
    domains_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("export-scn"), None, _env(domains_file))
    yield srv
    srv.stop()


@pytest.mark.parametrize("domain", ["view", "syn"])
def test_as_of_scn_reads_through_a_view_and_a_synonym(
    scn_server: ServerProcess, domain: str
) -> None:
    job = create_job(scn_server.url, CIDS, [domain])
    before = records_of(list(iter_lines(scn_server.url, job["job_id"])))[domain]
    _change_rows_underneath()
    try:
        first = list(iter_lines(scn_server.url, job["job_id"]))
        assert first[-1]["type"] == "complete"
        assert records_of(first)[domain] == before and len(before) == ROWS
        fresh = create_job(scn_server.url, CIDS, [domain])  # a new SCN sees the changes
        after = records_of(list(iter_lines(scn_server.url, fresh["job_id"])))[domain]
        assert len(after) == ROWS + len(range(0, 300, 7)) - len(range(900, 951))
    finally:
        _restore_rows()
