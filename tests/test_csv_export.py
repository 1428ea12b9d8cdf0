"""CSV: `format=csv` pages and the streamed whole-domain `export.csv`, read back by Python's
`csv` module and compared with the NDJSON stream's records value by value.

The database holds what breaks CSV writers: quotes, commas, CR, LF and CRLF inside values,
non-ASCII text, empty strings, NULLs, text that looks like a formula, and (in a column
without a type) integers, floats, -0.0 and bytes. Failures after the first byte run on a
real uvicorn server in this process, over a source that fails (or drains) at a given page.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from svc.config import Settings
from svc.core.csv_cells import complete_rows
from svc.core.domains import load_domains
from svc.core.tokens import TokenCodec
from svc.engine.service import Service
from svc.errors import SourceUnavailable
from svc.http.app import create_app
from svc.http.h11 import protocol_class
from svc.sources import Lane, Row
from svc.sources.demo import build_demo_database
from svc.sources.sqlite import SqliteSource
from svc.store.embedded import EmbeddedJobStore
from tests.support import (
    DOMAINS,
    all_cids,
    assert_rows_equal,
    create_job,
    defused,
    expected_rows,
    iter_lines,
    read_csv,
    records_of,
)
from tests.support.servers import TEST_SECRET, ServerProcess, free_port, start_server

TEXTS: list[str | None] = [
    'say "hi", then leave',
    "line one\nline two",
    "crlf\r\ninside",
    "lone\rcarriage return",
    "comma,separated,values",
    '"',
    '""',
    "",
    None,
    "Größe µm — 測定 ✓ 😀",
    '=HYPERLINK("http://example.invalid","click")',
    "-5",
    "+1",
    "@SUM(A1)",
    "\tleading tab",
    "  spaces around  ",
    "ends with a newline\n",
    "'already quoted",
    "semi;colon",
    " =1+1",
    "\u00a0@SUM(A1)",
    "\n-2 below",
    "\u200b=1",
    "  - a dash after spaces",
]
ANYTHING: list[object] = [42, -7, 2**62, 0.1, 1e20, -0.0, 3.0, b"\x00\xff\xfe", "text", None]
ANYTHING.append(b"\xf8\x00\x01")  # base64 "+AAB": a formula to a spreadsheet
ODD_DOMAINS = """
[domains.history]
table = "MES_CONTAINER_HISTORY"
columns = ["CONTAINERID", "TXNDATE", "EVENTNAME", "QTY", "QTY2", "COMMENTS"]

[domains.odd]
table = "ODD_VALUES"
columns = ["CONTAINERID", "LABEL", "AMOUNT", "ANYTHING"]
"""
BATCH = 7


@pytest.fixture(scope="module")
def odd_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("odd") / "odd.sqlite3"
    build_demo_database(path, cids=30, seed=5)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE ODD_VALUES (CONTAINERID TEXT NOT NULL, LABEL TEXT, AMOUNT REAL, ANYTHING)"
        )
        conn.execute("CREATE INDEX ODD_VALUES_CID ON ODD_VALUES (CONTAINERID)")
        cids = [r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS")]
        amounts = [0.1, -2.5, 1e20, None, 1234567.125]
        rows = [
            (cid, TEXTS[i % len(TEXTS)], amounts[i % len(amounts)], ANYTHING[i % len(ANYTHING)])
            for i, cid in enumerate(cids * 3)
        ]
        conn.executemany("INSERT INTO ODD_VALUES VALUES (?,?,?,?)", rows)
        ids = [r[0] for r in conn.execute("SELECT rowid FROM MES_CONTAINER_HISTORY")]
        conn.executemany(
            "UPDATE MES_CONTAINER_HISTORY SET COMMENTS = ?, EVENTNAME = ? WHERE rowid = ?",
            [
                (TEXTS[i % len(TEXTS)], TEXTS[-i % len(TEXTS)] or "x", rid)
                for i, rid in enumerate(ids)
            ],
        )
    return path


@pytest.fixture(scope="module")
def odd_server(odd_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("odd-data")
    (data / "domains.toml").write_text(ODD_DOMAINS)
    env = {"TRACE_STREAM_BATCH_SIZE": str(BATCH), "TRACE_DOMAINS": str(data / "domains.toml")}
    srv = start_server(data, odd_db, env)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def job(odd_server: ServerProcess, odd_db: Path) -> dict[str, Any]:
    return create_job(odd_server.url, all_cids(odd_db))


@pytest.fixture(scope="module")
def stream(odd_server: ServerProcess, job: dict[str, Any]) -> list[dict[str, Any]]:
    lines = list(iter_lines(odd_server.url, job["job_id"], format="arrays"))
    assert lines[-1]["type"] == "complete"
    return lines


def export(server: ServerProcess, job_id: str, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/trace/job/{job_id}/export.csv", params=params, timeout=30)


@pytest.mark.parametrize("spreadsheet", ["1", "0"])
@pytest.mark.parametrize("domain", ["odd", "history"])
def test_export_equals_the_stream_value_by_value(
    odd_server: ServerProcess,
    job: dict[str, Any],
    stream: list[dict[str, Any]],
    domain: str,
    spreadsheet: str,
) -> None:
    r = export(odd_server, job["job_id"], domain=domain, spreadsheet=spreadsheet)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert r.headers["content-disposition"] == (
        f'attachment; filename="{job["job_id"]}-{domain}.csv"'
    )
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.content.endswith(b"\r\n")
    sheet = spreadsheet == "1"
    rows = read_csv(r.content, bom=sheet)
    columns = next(x["columns"] for x in stream if x.get("domain") == domain)
    assert rows[0] == columns
    records = records_of(stream)[domain]
    assert len(records) > 5 * BATCH
    assert_rows_equal(rows[1:], records, sheet)
    if domain == "odd":  # the database's values, not only the stream's, made it through
        cells = {c for row in rows[1:] for c in row}
        assert {t for t in TEXTS if t and not defused(t)} <= cells
        hidden = {" =1+1", "\u00a0@SUM(A1)", "\n-2 below", "\u200b=1"}  # formulas behind
        assert {"'" + t if sheet else t for t in hidden} <= cells
        assert {"42", "-7", str(2**62), "0.1", "1e20", "-0.0", "3.0", "AP/+"} <= cells
        assert ("'+AAB" if sheet else "+AAB") in cells  # bytes defused like text


def test_csv_pages_follow_link_next_and_equal_the_stream(
    odd_server: ServerProcess, job: dict[str, Any], stream: list[dict[str, Any]]
) -> None:
    url: str | None = f"/api/trace/job/{job['job_id']}/result?domain=odd&format=csv&limit=11"
    columns = next(x["columns"] for x in stream if x.get("domain") == "odd")
    got: list[list[str]] = []
    pages = 0
    while url is not None:
        r = httpx.get(odd_server.url + url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8; header=present"
        rows = read_csv(r.content, bom=False)  # pages are for programs: no BOM
        assert rows[0] == columns
        got.extend(rows[1:])
        pages += 1
        link = r.headers.get("link")
        url = None if link is None else link.split(">", 1)[0].removeprefix("<")
        assert link is None or link.endswith('rel="next"') and "format=csv" in link
    records = records_of(stream)["odd"]
    assert pages == -(-len(records) // 11)
    assert_rows_equal(got, records, False)  # values as they are: no formula escaping


def test_a_cut_download_continues_by_offset_to_the_same_file(
    odd_server: ServerProcess, job: dict[str, Any]
) -> None:
    whole = export(odd_server, job["job_id"], domain="odd").content
    for cut in (0, 3, 200, len(whole) // 3, len(whole) // 2 + 1, len(whole) - 1):
        part = whole[:cut]
        rows, size = complete_rows(part)  # the user's side: keep the whole rows
        if rows == 0:  # not even the header: start again
            rest = export(odd_server, job["job_id"], domain="odd").content
        else:
            rest = export(
                odd_server, job["job_id"], domain="odd", offset=str(rows - 1), header="0"
            ).content
        assert part[:size] + rest == whole, cut


def test_since_starts_after_a_stream_token(
    odd_server: ServerProcess, job: dict[str, Any], stream: list[dict[str, Any]]
) -> None:
    lines = [x for x in stream if x["type"] == "records" and x["domain"] == "history"]
    token, before = lines[2]["since"], sum(len(x["data"]) for x in lines[:3])
    r = export(odd_server, job["job_id"], since=token, spreadsheet="0")  # since names it
    assert r.status_code == 200, r.text
    rows = read_csv(r.content, bom=False)
    assert rows[0][0] == "CONTAINERID"
    after = records_of(stream)["history"][before:]
    assert_rows_equal(rows[1:], after, False)
    r = export(odd_server, job["job_id"], since=token, header="0")
    assert_rows_equal(read_csv(r.content, bom=False), after, True)  # neither BOM nor header


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "invalid_request"),
        ({"domain": "materials"}, 400, "unknown_domain"),
        ({"domain": "odd", "since": "not-a-token"}, 400, "invalid_token"),
        ({"domain": "odd", "header": "2"}, 400, "invalid_request"),
        ({"domain": "odd", "spreadsheet": "yes"}, 400, "invalid_request"),
        ({"domain": "odd", "offset": "-1"}, 400, "invalid_request"),
    ],
)
def test_bad_requests_are_problems_before_the_first_byte(
    odd_server: ServerProcess, job: dict[str, Any], params: dict[str, str], status: int, code: str
) -> None:
    r = export(odd_server, job["job_id"], **params)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code


def test_since_of_another_domain_or_with_an_offset_is_refused(
    odd_server: ServerProcess, job: dict[str, Any], stream: list[dict[str, Any]]
) -> None:
    token = next(x["since"] for x in stream if x["type"] == "records" and x["domain"] == "odd")
    r = export(odd_server, job["job_id"], domain="history", since=token)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_token")
    r = export(odd_server, job["job_id"], domain="odd", since=token, offset="3")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    r = export(odd_server, "no-such-job", domain="odd")
    assert (r.status_code, r.json()["code"]) == (404, "job_not_found")
    r = httpx.get(f"{odd_server.url}/api/trace/job/{job['job_id']}/stream?format=csv")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")  # pages and export only


# --- failures after the first byte, on a real server in this process ---------------------


class ScriptedPages(SqliteSource):
    """A real SQLite source whose `fail_at`-th page query fails, or which sets `drain`
    (the service's draining event) at its `drain_at`-th page query."""

    def __init__(self, path: str, fail_at: int = 0, drain_at: int = 0) -> None:
        super().__init__(path)
        self.fail_at, self.drain_at, self.pages = fail_at, drain_at, 0
        self.drain: asyncio.Event | None = None

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        if lane in ("read", "json") and "ORDER BY" in sql:
            self.pages += 1
            if self.pages == self.fail_at:
                raise SourceUnavailable()
            if self.pages == self.drain_at and self.drain is not None:
                self.drain.set()
        return await super().fetch(sql, binds, lane=lane)


class InProcessServer:
    """The app under uvicorn with the service's own HTTP protocol, in a thread."""

    def __init__(self, db: Path, data: Path, source: ScriptedPages, batch: int) -> None:
        settings = Settings(batch_size=batch, data_dir=data, job_create_rate=0)
        self.source = source

        async def factory() -> Service:
            store = EmbeddedJobStore(data / "jobs.sqlite3", ttl=600)
            service = Service(settings, load_domains(), source, store, TokenCodec([TEST_SECRET]))
            source.drain = service.draining
            return service

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(factory, frontend=None),
            host="127.0.0.1",
            port=port,
            http=protocol_class(settings),
            log_config=None,
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def _download(url: str) -> tuple[bytes, Exception | None]:
    """The body's bytes as they arrived, and the error that ended it (None: complete)."""
    got = bytearray()
    try:
        with httpx.stream("GET", url, timeout=30) as r:
            assert r.status_code == 200, r.read()
            for chunk in r.iter_raw():
                got.extend(chunk)
    except httpx.HTTPError as exc:
        return bytes(got), exc
    return bytes(got), None


@pytest.mark.parametrize(("fault", "sent"), [("fail", 2), ("drain", 3)])
def test_a_failure_after_the_first_byte_leaves_the_download_incomplete(
    demo_db: Path, tmp_path: Path, fault: str, sent: int
) -> None:
    """The third page query fails (pages 1 and 2 were sent), or the server starts draining
    during it (that page is still sent, then the download is handed over)."""
    batch = 50
    source = ScriptedPages(str(demo_db), **{f"{fault}_at": 3})
    cids = all_cids(demo_db)[:100]
    with InProcessServer(demo_db, tmp_path, source, batch) as srv:
        job = create_job(srv.url, cids, ["history"])
        url = f"{srv.url}/api/trace/job/{job['job_id']}/export.csv?domain=history&spreadsheet=0"
        body, error = _download(url)
        assert isinstance(error, httpx.RemoteProtocolError), error  # no terminating chunk
        assert "incomplete chunked read" in str(error)
    # What arrived is whole rows: the header and the batches sent, nothing else.
    assert body.endswith(b"\r\n") and complete_rows(body) == (1 + sent * batch, len(body))
    rows = read_csv(body, bom=False)
    assert rows[0] == list(DOMAINS["history"].columns)
    expected = expected_rows(demo_db, cids, DOMAINS["history"])
    assert len(expected) > (sent + 1) * batch
    assert_rows_equal(rows[1:], expected[: sent * batch], False)


def test_a_source_down_at_the_start_is_a_problem(demo_db: Path, tmp_path: Path) -> None:
    source = ScriptedPages(str(demo_db), fail_at=1)
    with InProcessServer(demo_db, tmp_path, source, 50) as srv:
        job = create_job(srv.url, all_cids(demo_db)[:20], ["history"])
        r = httpx.get(f"{srv.url}/api/trace/job/{job['job_id']}/export.csv?domain=history")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["code"] == "source_unavailable"
        r = httpx.get(f"{srv.url}/api/trace/job/{job['job_id']}/export.csv?domain=history")
        assert r.status_code == 200  # the fault was one query


def _dechunk(raw: bytes) -> tuple[bytes, bool]:
    """The body of a chunked response as far as it arrived, and whether it was finished."""
    body, rest = bytearray(), raw
    while b"\r\n" in rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(body), True
        body.extend(rest[:size])
        if len(rest) < size + 2:
            break
        rest = rest[size + 2 :]
    return bytes(body), False


def test_a_reader_that_stops_is_cut_off_and_continues_by_offset(tmp_path: Path) -> None:
    """A CSV file larger than the socket buffers can hold (~8 MB): the server blocks."""
    db = tmp_path / "demo.sqlite3"
    build_demo_database(db, cids=8000, seed=11)
    cids = all_cids(db)
    srv = start_server(
        tmp_path / "data", db, {"TRACE_STREAM_BATCH_SIZE": "2000", "TRACE_SLOW_READER_SECONDS": "1"}
    )
    try:
        job = create_job(srv.url, cids, ["history"])
        path = f"/api/trace/job/{job['job_id']}/export.csv?domain=history&spreadsheet=0"
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(30)
            sock.connect(("127.0.0.1", int(srv.url.rsplit(":", 1)[1])))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
            time.sleep(3)  # stop reading: the server ends it within 1.25 s of the stall
            raw = b""
            while chunk := sock.recv(65536):  # what the server had written, then the end
                raw += chunk
        head, _, chunked = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
        body, finished = _dechunk(chunked)
        assert not finished  # no terminating chunk: the download is visibly incomplete
        assert "slow_reader" in srv.log()
        rows, size = complete_rows(body)
        assert rows > 1  # some rows arrived before the cut
        rest = export(
            srv, job["job_id"], domain="history", spreadsheet="0", offset=str(rows - 1), header="0"
        )
        whole = read_csv(body[:size] + rest.content, bom=False)
        assert_rows_equal(whole[1:], expected_rows(db, cids, DOMAINS["history"]), False)
    finally:
        srv.stop()
