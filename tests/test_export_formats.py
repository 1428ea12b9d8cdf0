"""The typed export formats (svc/exports/xlsx.py, parquet.py), read back by the tools their
users run: openpyxl for xlsx; pyarrow and DuckDB (default settings) for Parquet.

Each file equals a direct SQL query of the job's rows, value by value and typed (CIDs and
other text as text, numbers as numbers, times as dates); `kill -9` mid-export and a restart
finish the same file byte for byte; a sheet past its row limit goes on in the next sheet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import io
import os
import signal
import time
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import httpx
import openpyxl
import pandas
import polars
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svc.core.domains import DomainConfigError, parse_domains
from svc.errors import BadRequest, SourceMisconfigured
from svc.exports.registry import check_request, writer_for
from svc.exports.xlsx import XlsxWriter
from svc.protocol import ExportFormat
from tests.support import DOMAINS, all_cids, create_job, expected_rows
from tests.support.exports import Status, download, finished, poll, start_export
from tests.support.servers import ServerProcess, start_server

Row = tuple[Any, ...]


def typed(domain: str, row: Row) -> Row:
    """A SQL row as a typed file holds it, by the demo domain file's types (written out
    here, not read from the service)."""
    kinds = {"TXNDATE": "timestamp", "QTY": "number", "QTY2": "number", "QTYCONSUMED": "number"}
    out: list[Any] = []
    for column, value in zip(DOMAINS[domain].columns, row, strict=True):
        kind = kinds.get(column, "text")
        if value is None:
            out.append(None)
        elif kind == "timestamp":
            out.append(dt.datetime.fromisoformat(value))
        elif kind == "number":
            out.append(float(value))
        else:
            out.append(value)
    return tuple(out)


@pytest.fixture(scope="module")
def job(server: ServerProcess, demo_cids: list[str]) -> dict[str, Any]:
    return create_job(server.url, demo_cids)


def _xlsx(blob: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(blob))


def test_an_xlsx_export_opens_with_openpyxl_a_typed_sheet_per_domain(
    server: ServerProcess, job: dict[str, Any], demo_db: Path, demo_cids: list[str]
) -> None:
    status = finished(server.url, start_export(server.url, job["job_id"], "xlsx"))
    blob = download(server.url, status)
    r = httpx.head(server.url + status["links"]["file"])
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-")
    assert r.headers["content-disposition"].endswith('.xlsx"')
    book = _xlsx(blob)
    assert book.sheetnames == ["history", "materials"]
    total = 0
    for name in book.sheetnames:
        sheet = book[name]
        assert sheet.freeze_panes == "A2"
        header, *rows = sheet.iter_rows()
        assert [c.value for c in header] == list(DOMAINS[name].columns)
        assert all(c.font.b for c in header)
        truth = [typed(name, row) for row in expected_rows(demo_db, demo_cids, DOMAINS[name])]
        assert [tuple(c.value for c in row) for row in rows] == truth
        total += len(rows)
        for row in rows[:200]:
            cid, when = row[0], row[1]
            assert cid.data_type == "s" and isinstance(cid.value, str)  # text, never a number
            assert when.is_date and when.number_format == "yyyy-mm-dd hh:mm:ss"
            qty = row[DOMAINS[name].columns.index("QTY" if name == "history" else "QTYCONSUMED")]
            assert qty.data_type == "n" and isinstance(qty.value, float | int)
    assert status["records"] == status["total"] == total


@pytest.fixture(scope="module")
def parquet_export(server: ServerProcess, job: dict[str, Any]) -> tuple[Status, bytes]:
    status = finished(server.url, start_export(server.url, job["job_id"], "parquet", "history"))
    return status, download(server.url, status)


def test_a_parquet_export_of_one_domain_reads_with_pyarrow_and_duckdb(
    server: ServerProcess,
    parquet_export: tuple[Status, bytes],
    demo_db: Path,
    demo_cids: list[str],
    tmp_path: Path,
) -> None:
    status, blob = parquet_export
    assert status["domain"] == "history"
    r = httpx.head(server.url + status["links"]["file"])
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(blob))
    truth = expected_rows(demo_db, demo_cids, DOMAINS["history"])
    assert table.num_rows == len(truth) == status["records"] == status["total"]
    assert table.schema.field("QTY").type == pa.float64()
    assert table.schema.field("CONTAINERID").type == pa.string()
    assert table.schema.field("TXNDATE").type == pa.timestamp("us")
    assert table.column_names == list(DOMAINS["history"].columns)
    rows = [tuple(r.values()) for r in table.to_pylist()]
    assert rows == [typed("history", row) for row in truth]
    # DuckDB, default settings, from the file as downloaded
    path = tmp_path / "history.parquet"
    path.write_bytes(blob)
    con = duckdb.connect()
    count, nulls = con.execute(
        "SELECT count(*), count(*) - count(QTY2) FROM read_parquet(?)", [str(path)]
    ).fetchone() or (None, None)
    assert count == len(truth)
    assert nulls == sum(row[7] is None for row in truth)
    described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    kinds = {row[0]: row[1] for row in described}
    assert kinds["QTY"] == "DOUBLE" and kinds["CONTAINERID"] == "VARCHAR"
    assert kinds["TXNDATE"] == "TIMESTAMP"


def test_typed_exports_of_a_selected_job_hold_its_columns_with_their_types(
    server: ServerProcess, demo_db: Path, demo_cids: list[str]
) -> None:
    """A job's `select` narrows the typed formats too, each column keeping its type."""
    cids = demo_cids[:200]
    body = {"container_ids": cids, "select": {"history": ["QTY", "TXNDATE"]}}
    job = httpx.post(f"{server.url}/api/trace/job", json=body, timeout=30).json()
    status = finished(server.url, start_export(server.url, job["job_id"], "parquet", "history"))
    table = pq.read_table(io.BytesIO(download(server.url, status)))
    assert table.column_names == ["CONTAINERID", "QTY", "TXNDATE"]
    assert table.schema.field("QTY").type == pa.float64()
    assert table.schema.field("TXNDATE").type == pa.timestamp("us")
    assert table.num_rows == len(expected_rows(demo_db, cids, DOMAINS["history"]))
    status = finished(server.url, start_export(server.url, job["job_id"], "xlsx"))
    sheet = _xlsx(download(server.url, status))["history"]
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header == ["CONTAINERID", "QTY", "TXNDATE"]
    first = [c.value for c in next(sheet.iter_rows(min_row=2, max_row=2))]
    assert isinstance(first[1], float | int) and isinstance(first[2], dt.datetime)


def test_pandas_and_polars_read_the_parquet_export_with_default_settings(
    parquet_export: tuple[Status, bytes], demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    _, blob = parquet_export
    path = tmp_path / "history.parquet"
    path.write_bytes(blob)
    truth = [typed("history", row) for row in expected_rows(demo_db, demo_cids, DOMAINS["history"])]
    frame = pandas.read_parquet(path)
    assert len(frame) == len(truth) and list(frame.columns) == list(DOMAINS["history"].columns)
    assert str(frame["QTY"].dtype) == "float64"
    assert str(frame["TXNDATE"].dtype).startswith("datetime64")
    assert frame["CONTAINERID"].tolist() == [row[0] for row in truth]
    assert int(frame["QTY2"].isna().sum()) == sum(row[7] is None for row in truth)
    table = polars.read_parquet(path)
    assert table.height == len(truth)
    assert table.schema["QTY"] == polars.Float64 and table.schema["CONTAINERID"] == polars.String
    assert table.schema["TXNDATE"] == polars.Datetime("us")
    assert [tuple(row) for row in table.rows()] == truth


def test_bad_typed_export_requests(server: ServerProcess, job: dict[str, Any]) -> None:
    base = f"{server.url}/api/trace/job/{job['job_id']}/exports"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"format": "parquet"}, 400, "invalid_request"),  # one domain a file: name it
        ({"format": "parquet", "domain": "nope"}, 400, "unknown_domain"),
        ({"format": "xlsx", "domain": "nope"}, 400, "unknown_domain"),
        ({"format": "parquet", "domain": ["history"]}, 400, "invalid_request"),
    ]
    for body, code, problem in cases:
        r = httpx.post(base, json=body)
        assert r.status_code == code, r.text
        assert r.json()["code"] == problem


def test_an_xlsx_export_of_one_domain(
    server: ServerProcess, job: dict[str, Any], demo_db: Path, demo_cids: list[str]
) -> None:
    status = finished(server.url, start_export(server.url, job["job_id"], "xlsx", "materials"))
    book = _xlsx(download(server.url, status))
    assert book.sheetnames == ["materials"]
    truth = expected_rows(demo_db, demo_cids, DOMAINS["materials"])
    assert book["materials"].max_row == len(truth) + 1 == status["records"] + 1


def test_a_type_the_data_does_not_fit_fails_the_export_with_a_clear_error(
    demo_db: Path, tmp_path: Path, demo_cids: list[str]
) -> None:
    text = resources.files("svc").joinpath("default_domains.toml").read_text("utf-8")
    domains = tmp_path / "domains.toml"
    domains.write_text(text.replace('QTY2 = "number"', 'QTY2 = "number"\nEVENTNAME = "number"'))
    srv = start_server(tmp_path / "data", demo_db, {"TRACE_DOMAINS": str(domains)})
    try:
        job = create_job(srv.url, demo_cids[:50])
        status = start_export(srv.url, job["job_id"], "xlsx")
        status = poll(srv.url, status, lambda s: s["state"] in ("done", "failed"))
        assert status["state"] == "failed" and status["records"] == 0  # at the first batch
        assert status["error"]["code"] == "source_misconfigured"
        assert "history.EVENTNAME of a record of CONTAINERID" in status["error"]["message"]
        assert "is not number" in status["error"]["message"]
        assert not list((tmp_path / "data" / "exports" / ".work").iterdir())
        ok = finished(srv.url, start_export(srv.url, job["job_id"], "csv.zip"))  # untyped
        assert ok["records"] == ok["total"]
    finally:
        srv.stop()


# --- restarts -------------------------------------------------------------------------------


def _slow_export_env() -> dict[str, str]:
    # 50 records a batch: ~450 checkpoints, so the kill lands mid-export
    return {
        "TRACE_STREAM_BATCH_SIZE": "50",
        "TRACE_JOB_CREATE_RATE": "0",
        "TRACE_MAX_JOBS_PER_KEY": "0",
        "TRACE_EXPORT_WORKERS": "1",
    }


@pytest.mark.parametrize(("fmt", "domain"), [("xlsx", None), ("parquet", "history")])
def test_a_typed_export_killed_midway_finishes_the_same_file_after_a_restart(
    demo_db: Path, tmp_path: Path, fmt: str, domain: str | None
) -> None:
    data = tmp_path / "data"
    first = start_server(data, demo_db, _slow_export_env())
    try:
        job = create_job(first.url, all_cids(demo_db))
        status = start_export(first.url, job["job_id"], fmt, domain)
        status = poll(first.url, status, lambda s: s["records"] >= 1500)
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        assert status["state"] == "running" and 0 < status["records"] < status["total"]
    finally:
        first.stop(signal.SIGKILL)
    time.sleep(0.1)
    second = start_server(data, demo_db, _slow_export_env())
    try:
        resumed = finished(second.url, status)
        assert "(attempt 2)" in second.log()
        blob = download(second.url, resumed)
        clean = finished(second.url, start_export(second.url, job["job_id"], fmt, domain))
        assert download(second.url, clean) == blob  # byte for byte
        assert clean["sha256"] == resumed["sha256"] == hashlib.sha256(blob).hexdigest()
        assert resumed["records"] == resumed["total"]
        if fmt == "parquet":
            assert pq.read_metadata(io.BytesIO(blob)).num_rows == resumed["total"]
        else:
            book = _xlsx(blob)
            assert sum(book[n].max_row - 1 for n in book.sheetnames) == resumed["total"]
        assert not list((data / "exports" / ".work").iterdir())
    finally:
        second.stop()


# --- the writers on their own -----------------------------------------------------------------


def _write(tmp_path: Path, fmt: ExportFormat, domain: str, rows: list[Row]) -> Path:
    writer = writer_for(fmt, tmp_path, "x", [DOMAINS[domain]], 1_750_000_000.0)
    writer.begin(0)
    for at in range(0, len(rows), 7):
        writer.append(0, rows[at : at + 7])
    writer.pack()
    return writer.finished


def _row(n: int, qty: Any = 1.5, when: Any = "2025-01-01T08:00:00") -> Row:
    cid = f"{n:016d}"
    return (cid, when, "=1+1", "SPEC 00123", " =x", None, qty, None, "É", "a\u2028b")


def test_an_xlsx_domain_past_the_sheet_limit_goes_on_in_the_next_sheet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(XlsxWriter, "sheet_rows", 11)  # a header and 10 rows a sheet
    rows = [_row(n) for n in range(25)]
    book = _xlsx(_write(tmp_path, "xlsx", "history", rows).read_bytes())
    assert book.sheetnames == ["history", "history (2)", "history (3)"]
    got = []
    for name in book.sheetnames:
        header, *body = book[name].iter_rows(values_only=True)
        assert header == DOMAINS["history"].columns and book[name].freeze_panes == "A2"
        got += body
    assert got == [typed("history", r) for r in rows]
    cells = next(book["history"].iter_rows(min_row=2, max_row=2))
    assert cells[0].value == "0000000000000000" and cells[0].data_type == "s"
    assert cells[2].value == "=1+1" and cells[2].data_type == "s"  # text, not a formula


def test_empty_domains_and_values_that_do_not_fit_their_type(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    empty = _write(tmp_path / "a", "xlsx", "history", [])
    sheet = _xlsx(empty.read_bytes())["history"]
    assert [c.value for c in next(sheet.iter_rows())] == list(DOMAINS["history"].columns)
    assert sheet.max_row == 1
    (tmp_path / "b").mkdir()
    table = pq.read_table(_write(tmp_path / "b", "parquet", "history", []))
    assert table.num_rows == 0 and table.schema.field("QTY").type == pa.float64()
    (tmp_path / "c").mkdir()
    offsets = [_row(0, when="2025-01-01T10:00:00+02:00"), _row(1, qty="2.5")]
    table = pq.read_table(_write(tmp_path / "c", "parquet", "history", offsets))
    assert table.column("TXNDATE").to_pylist()[0] == dt.datetime(2025, 1, 1, 8, 0)  # in UTC
    assert table.column("QTY").to_pylist() == [1.5, 2.5]
    for at, bad in enumerate([_row(0, qty="lots"), _row(0, when="yesterday")]):
        (tmp_path / f"d{at}").mkdir()
        match = r"history\.(QTY|TXNDATE) of a record of CONTAINERID '0000000000000000'"
        with pytest.raises(SourceMisconfigured, match=match):
            _write(tmp_path / f"d{at}", "parquet", "history", [bad])


def test_column_types_in_the_domain_file() -> None:
    base = '[domains.d]\ntable = "T"\ncolumns = ["CONTAINERID", "A", "B", "C"]\n'
    domain = parse_domains(
        base + 'timestamptz = ["C"]\n[domains.d.filters]\nA = { op = "range", type = "number" }\n'
        '[domains.d.types]\nB = "integer"\n'
    )["d"]
    assert domain.types == ("text", "number", "integer", "timestamptz")
    for types, message in [
        ('A = "float"', "must be one of"),
        ('Z = "text"', "not one of d.columns"),
        ('A = "timestamptz"', "timestamptz"),
    ]:
        with pytest.raises(DomainConfigError, match=message):
            parse_domains(base + f"[domains.d.types]\n{types}\n")


def test_xlsx_temporary_files_left_by_a_crash_while_packing_are_removed(tmp_path: Path) -> None:
    writer = writer_for("xlsx", tmp_path, "x", [DOMAINS["history"]], 1_750_000_000.0)
    assert isinstance(writer, XlsxWriter)
    writer.begin(0)
    writer.append(0, [_row(0)])
    writer.scratch.mkdir()
    (writer.scratch / "tmpabc").write_bytes(b"a sheet half written")  # as kill -9 leaves it
    writer.pack()  # packs again from the staged rows, over what was left
    assert not writer.scratch.exists()
    (writer.scratch).mkdir()
    (writer.scratch / "tmpdef").write_bytes(b"x")
    writer.remove()
    assert list(tmp_path.iterdir()) == []


def test_a_server_without_pyarrow_refuses_parquet_and_takes_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    with pytest.raises(BadRequest, match=r"install trace-stream\[parquet\]"):
        check_request("parquet", "history", ["history", "materials"])
    for fmt in ("xlsx", "csv.zip", "ndjson.gz"):
        check_request(fmt, None, ["history", "materials"])


def test_timestamptz_and_integer_columns_in_parquet_and_xlsx(tmp_path: Path) -> None:
    domain = parse_domains(
        '[domains.d]\ntable = "T"\ncolumns = ["CONTAINERID", "AT", "N"]\ntimestamptz = ["AT"]\n'
        '[domains.d.types]\nN = "integer"\n'
    )["d"]
    rows: list[Row] = [
        ("a", "2025-01-01T08:00:00Z", 7),
        ("b", "2025-01-01T10:00:00+02:00", 8.0),
        ("c", None, None),
    ]
    utc = dt.datetime(2025, 1, 1, 8, 0, tzinfo=dt.UTC)
    for fmt in ("parquet", "xlsx"):
        (tmp_path / fmt).mkdir()
        writer = writer_for(fmt, tmp_path / fmt, "x", [domain], 1_750_000_000.0)
        writer.begin(0)
        writer.append(0, rows)
        writer.pack()
        if fmt == "parquet":
            table = pq.read_table(writer.finished)
            assert table.schema.field("AT").type == pa.timestamp("us", tz="UTC")
            assert table.schema.field("N").type == pa.int64()
            assert table.column("AT").to_pylist() == [utc, utc, None]
            assert table.column("N").to_pylist() == [7, 8, None]
        else:
            _, *body = _xlsx(writer.finished.read_bytes())["d"].iter_rows(values_only=True)
            naive = utc.replace(tzinfo=None)  # Excel dates have no zone: UTC, as streamed
            assert body == [("a", naive, 7), ("b", naive, 8), ("c", None, None)]
    (tmp_path / "bad").mkdir()
    writer = writer_for("parquet", tmp_path / "bad", "x", [domain], 0.0)
    writer.begin(0)
    with pytest.raises(SourceMisconfigured, match=r"d\.N of .* 'a': '1\.5' is not integer"):
        writer.append(0, [("a", None, 1.5)])  # at its batch, before the job is staged
