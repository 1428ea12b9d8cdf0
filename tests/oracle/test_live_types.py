"""Live Oracle: column types, identifiers and tie-breaks only a real database can answer.

The tables are created here (and dropped afterwards), never by a migration: production
schemas get no test tables. Needs CREATE TABLE and CREATE VIEW in the test schema.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import oracledb
import pytest

from svc import protocol as p
from svc.core.domains import Domain, parse_domains
from svc.core.sql.plan import Plan
from svc.engine.reader import DomainReader
from svc.errors import SourceMisconfigured
from svc.sources import oracle as ora
from tests.oracle.live import DSN, LIVE, connect
from tests.support.oracle_fakes import oracle_source

pytestmark = LIVE

CIDS = [f"t{i:03d}" for i in range(20)]
LONG_TEXT = "x" * 40_000 + "é"  # longer than any VARCHAR2: a real CLOB
BLOB = bytes(range(256)) * 300

TABLES = """
CREATE TABLE TRACE_LIVE_TYPES (
    CONTAINERID VARCHAR2(40) NOT NULL,
    ID NUMBER NOT NULL,
    "ORDER" NUMBER(10,2),
    "LotNo" VARCHAR2(20),
    BIG NUMBER(38,0),
    PRECISE NUMBER(30,12),
    AMOUNT NUMBER,
    NOTE CLOB,
    NNOTE NCLOB,
    BLOBV BLOB,
    EVENT_TS TIMESTAMP(6) WITH TIME ZONE,
    CONSTRAINT TRACE_LIVE_TYPES_PK PRIMARY KEY (ID)
);
CREATE INDEX TRACE_LIVE_TYPES_CID ON TRACE_LIVE_TYPES (CONTAINERID, ID);
CREATE TABLE TRACE_LIVE_IOT (
    CONTAINERID VARCHAR2(40) NOT NULL, ID NUMBER(12) NOT NULL, V NUMBER,
    CONSTRAINT TRACE_LIVE_IOT_PK PRIMARY KEY (CONTAINERID, ID)
) ORGANIZATION INDEX;
CREATE VIEW TRACE_LIVE_VIEW AS SELECT DISTINCT CONTAINERID, ID FROM TRACE_LIVE_TYPES;
"""
DROPS = ["VIEW TRACE_LIVE_VIEW", "TABLE TRACE_LIVE_TYPES PURGE", "TABLE TRACE_LIVE_IOT PURGE"]


def _drop(cur: oracledb.Cursor) -> None:
    for what in DROPS:
        cur.execute(f"BEGIN EXECUTE IMMEDIATE 'DROP {what}'; EXCEPTION WHEN OTHERS THEN NULL; END;")


@pytest.fixture(scope="module")
def tables() -> Iterator[None]:
    with connect() as conn, conn.cursor() as cur:
        _drop(cur)
        for statement in TABLES.split(";"):
            if statement.strip():
                cur.execute(statement)
        rows = []
        for i in range(200):
            rows.append(
                {
                    "cid": CIDS[i % 20],
                    "id": 10_000 - i * 7,  # unique, in no relation to ROWID order
                    "ord": 5 if i % 2 else 12.5,
                    "lot": f"L{i}",
                    "big": 12345678901234567890123456789012345678 - i,
                    "precise": f"123456789012345678.{i:012d}",
                    "amount": "0.1" if i % 3 else str(i),
                    "note": LONG_TEXT if i == 0 else f"n{i}",
                    "nnote": "ünïcode" if i % 2 else None,
                    "blob": BLOB if i == 0 else bytes([i]),
                    "ts": "2025-01-15 02:30:00.250000 " + ("Europe/Paris" if i % 2 else "+05:30"),
                }
            )
        cur.setinputsizes(note=oracledb.DB_TYPE_CLOB, blob=oracledb.DB_TYPE_BLOB)
        cur.executemany(
            "INSERT INTO TRACE_LIVE_TYPES VALUES (:cid, :id, :ord, :lot, :big,"
            " TO_NUMBER(:precise), TO_NUMBER(:amount), :note, :nnote, :blob,"
            " TO_TIMESTAMP_TZ(:ts, 'YYYY-MM-DD HH24:MI:SS.FF TZR'))",
            rows,
        )
        cur.execute(
            "INSERT INTO TRACE_LIVE_IOT SELECT CONTAINERID, ID, AMOUNT FROM TRACE_LIVE_TYPES"
        )
        conn.commit()
    yield
    with connect() as conn, conn.cursor() as cur:
        _drop(cur)


TYPES = """
[domains.types]
table = "TRACE_LIVE_TYPES"
tiebreak = "ID"
columns = ["CONTAINERID", "ID", '"ORDER"', '"LotNo"', "BIG", "PRECISE", "AMOUNT", "NOTE",
           "NNOTE", "BLOBV", "EVENT_TS"]
timestamptz = ["EVENT_TS"]
"""


def _read_all(domain: Domain, cids: list[str] = CIDS, **options: Any) -> list[dict[str, Any]]:
    async def run() -> list[Any]:
        source = oracle_source(DSN, pool_min=1, pool_max=1, **options)
        rows: list[Any] = []
        try:
            reader = DomainReader(source, domain, Plan(cids, slots=7))
            after = None
            while True:
                batch = await reader.read(after, 13)
                rows.extend(batch.rows)
                after = batch.last
                if not batch.more:
                    return rows
        finally:
            await source.close()

    rows = asyncio.run(run())
    return [json.loads(p.encode(r)) for r in p.shape_records(rows, domain.columns, False)]


def test_lobs_numbers_timestamps_and_quoted_identifiers(tables: None) -> None:
    domain = parse_domains(TYPES)["types"]
    records = _read_all(domain)
    assert len(records) == 200
    assert [(r["CONTAINERID"], r["ID"]) for r in records] == sorted(
        (r["CONTAINERID"], r["ID"]) for r in records
    )
    by_id = {r["ID"]: r for r in records}
    first, odd = by_id[10_000], by_id[10_000 - 7]
    assert list(first) == list(domain.columns)  # "ORDER", "LotNo": names without quotes
    assert first["NOTE"] == LONG_TEXT and base64.b64decode(first["BLOBV"]) == BLOB
    assert odd["NNOTE"] == "ünïcode" and odd["NOTE"] == "n1"
    assert first["ORDER"] == 12.5 and odd["ORDER"] == 5 and isinstance(odd["ORDER"], int)
    assert first["BIG"] == 12345678901234567890123456789012345678
    raw = {r[1]: r for r in _raw_rows(domain, CIDS[:2])}
    assert raw[10_000 - 7][5] == Decimal("123456789012345678.000000000001")  # 30 digits, exact
    assert b"123456789012345678.000000000001" in p.encode(list(raw[10_000 - 7]))
    assert odd["AMOUNT"] == 0.1
    # TIMESTAMP WITH TIME ZONE in UTC, from an offset and from a named region (DST day).
    assert first["EVENT_TS"] == "2025-01-14T21:00:00.250000Z"  # 02:30 at +05:30
    assert odd["EVENT_TS"] == "2025-01-15T01:30:00.250000Z"  # 02:30 in Paris (CET, +01:00)


def _raw_rows(domain: Domain, cids: list[str]) -> list[Any]:
    async def run() -> list[Any]:
        source = oracle_source(DSN, pool_min=1, pool_max=1)
        try:
            return (await DomainReader(source, domain, Plan(cids)).read(None, 1000)).rows
        finally:
            await source.close()

    return asyncio.run(run())


def test_an_undeclared_timestamp_with_time_zone_is_refused_and_the_pool_recovers(
    tables: None,
) -> None:
    domain = parse_domains(TYPES.replace('timestamptz = ["EVENT_TS"]', ""))["types"]
    with pytest.raises(SourceMisconfigured):
        _raw_rows(domain, CIDS[:2])
    assert _raw_rows(parse_domains(TYPES)["types"], CIDS[:2])


@pytest.mark.parametrize("table", ["TRACE_LIVE_IOT", "TRACE_LIVE_VIEW"])
def test_a_rowid_tiebreak_is_refused_where_rowid_cannot_work(tables: None, table: str) -> None:
    domains = parse_domains(f'[domains.d]\ntable = "{table}"\ncolumns = ["CONTAINERID", "ID"]\n')

    async def run() -> BaseException:
        source = oracle_source(DSN, pool_min=1, pool_max=1, domains=domains)
        try:
            await source.ping()
        except Exception as exc:
            return exc
        finally:
            await source.close()
        raise AssertionError(f"a ROWID tie-break on {table} was accepted")

    exc = asyncio.run(run())
    assert isinstance(exc, SourceMisconfigured) and "tiebreak" in exc.detail, repr(exc)


@pytest.mark.parametrize("table", ["TRACE_LIVE_IOT", "TRACE_LIVE_VIEW"])
def test_a_unique_column_tiebreak_reads_them_exactly(tables: None, table: str) -> None:
    domain = parse_domains(
        f'[domains.d]\ntable = "{table}"\ntiebreak = "ID"\ncolumns = ["CONTAINERID", "ID"]\n'
    )["d"]
    got = [(r["CONTAINERID"], r["ID"]) for r in _read_all(domain)]
    with connect() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT CONTAINERID, ID FROM {table} ORDER BY CONTAINERID, ID")
        assert got == [tuple(r) for r in cur.fetchall()]


def test_a_failed_session_callback_leaks_no_session(
    tables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> tuple[BaseException | None, int, int]:
        source = oracle_source(DSN, pool_min=1, pool_max=1, pool_wait_ms=3000)
        try:
            monkeypatch.setattr(ora, "SESSION_SETUP", "ALTER SESSION SET NLS_SORT = NO_SUCH")
            failed: BaseException | None = None
            try:
                await source.ping()
            except Exception as exc:
                failed = exc
            monkeypatch.undo()
            pool = source._pool
            assert pool is not None
            busy = pool.busy
            await source.ping()  # a fresh session, set up properly: no wait for a leak
            return failed, busy, source.in_use
        finally:
            await source.close()

    failed, busy, in_use = asyncio.run(run())
    assert failed is not None and not failed.retryable  # type: ignore[attr-defined]
    assert busy == 0 and in_use == 0
