"""The Oracle source without a server: URL parsing, options, and the page bookkeeping
(cursor sizing, release, cancel, drop) against a stand-in pool, since nothing here can run
the real one: tests/oracle/ does, given a database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import oracledb
import pytest

from svc import protocol as p
from svc.config import Settings
from svc.core.domains import load_domains, parse_domains
from svc.core.sql.dialects import ORACLE, RID_ALIAS, SQLITE, UTC_ALIAS
from svc.core.sql.pages import page_sql
from svc.errors import SourceMisconfigured, SourceUnavailable
from svc.sources import Row, open_source, oracle_errors, oracle_types
from svc.sources import oracle as ora
from tests.support.oracle_fakes import (
    _Conn,
    _Cursor,
    _dpy,
    _ora,
    _Pool,
    _source_with,
    oe,
    oracle_source,
)

LOST = oracle_errors._LOST


# --- (d) URL parsing and settings --------------------------------------------------------


def test_url_parsing() -> None:
    u = ora.parse_url("oracle://trace:s3cret@db.example.com:1522/FREEPDB1")
    assert (u.user, u.password, u.host, u.port, u.service) == (
        "trace",
        "s3cret",
        "db.example.com",
        1522,
        "FREEPDB1",
    )
    assert ora.parse_url("oracle://a:b@h/svc.example.com").port == 1521
    assert ora.parse_url("oracle://a:b@[::1]:1521/svc").host == "::1"
    odd = ora.parse_url("oracle://app%40x:p%40ss%2Fw%3Ard%25@h:1521/FREE%2DPDB1")
    assert (odd.user, odd.password, odd.service) == ("app@x", "p@ss/w:rd%", "FREE-PDB1")
    assert "s3cret" not in repr(u)
    assert u.connect_params() == {
        "user": "trace",
        "password": "s3cret",
        "host": "db.example.com",
        "port": 1522,
        "service_name": "FREEPDB1",
    }


@pytest.mark.parametrize(
    "url",
    [
        "oracle://trace@h:1521/svc",
        "oracle://trace:topsecret@h:1521/",
        "oracle://trace:topsecret@:1521/svc",
        "oracle://trace:topsecret@h:port/svc",
        "oracle://trace:topsecret@h:1521/svc/extra",
        "oracle://trace:topsecret@h:1521/svc?mode=sysdba",
        "postgres://trace:topsecret@h:1521/svc",
    ],
)
def test_bad_urls_are_rejected_without_echoing_the_password(url: str) -> None:
    with pytest.raises(ValueError) as info:
        ora.parse_url(url)
    assert "topsecret" not in str(info.value)


def test_no_snapshot_mode_needs_no_database() -> None:
    source = open_source(Settings(db_url="oracle://a:b@127.0.0.1:9/s"))
    assert isinstance(source, ora.OracleSource)
    assert asyncio.run(source.current_snapshot()) is None
    assert source._pool is None  # nothing was opened


# --- page bookkeeping, against a stand-in for the driver's pool ---------------------------


def test_a_page_is_one_sized_round_trip_and_returns_its_connection() -> None:
    async def ok(cursor: _Cursor) -> None:
        pass

    pool = _Pool(_Conn(ok))
    source = _source_with(pool)
    assert asyncio.run(source.fetch("SELECT ...", {"limit": 5001, "c0": "x"})) == [("row",)]
    assert pool.conn.log == [("execute", "SELECT ...", 5001, 5002)]
    assert pool.conn.call_timeout == 1234
    assert all(c.closed for c in pool.conn.cursors)
    assert (pool.released, pool.dropped, source.in_use) == (1, 0, 0)


def test_a_lost_session_is_dropped_and_mapped() -> None:
    async def lost(cursor: _Cursor) -> None:
        raise _dpy(oe.ERR_CONNECTION_CLOSED)

    pool = _Pool(_Conn(lost))
    source = _source_with(pool)
    with pytest.raises(SourceUnavailable) as info:
        asyncio.run(source.fetch("SELECT ...", {"limit": 10}))
    assert info.value.detail == LOST
    assert (pool.released, pool.dropped, source.in_use) == (0, 1, 0)


def test_a_cancelled_page_breaks_the_query_and_returns_the_connection() -> None:
    started = asyncio.Event()

    async def slow(cursor: _Cursor) -> None:
        started.set()
        for _ in range(100):  # until the break arrives, as ORA-01013
            if cursor.conn.cancelled:
                raise _ora(1013, "user requested cancel of current operation")
            await asyncio.sleep(0.01)

    pool = _Pool(_Conn(slow))
    source = _source_with(pool)

    async def run() -> None:
        page = asyncio.ensure_future(source.fetch("SELECT ...", {"limit": 10}))
        await started.wait()
        page.cancel()
        with pytest.raises(asyncio.CancelledError):
            await page
        await asyncio.wait_for(_until(lambda: source.in_use == 0), 5)

    asyncio.run(run())
    assert pool.conn.cancelled
    assert (pool.released, pool.dropped) == (1, 0)


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


# --- how values are fetched: the output type handler, LOBs, the encoder ------------------


class _Meta:
    """What the driver hands an output type handler (oracledb.FetchInfo's attributes)."""

    def __init__(self, type_code: Any, name: str, precision: int = 0, scale: int = 0) -> None:
        self.type_code, self.name, self.precision, self.scale = type_code, name, precision, scale


class _VarCursor:
    arraysize = 5001

    def var(self, typ: Any, arraysize: int, outconverter: Any = None) -> tuple[Any, ...]:
        return (typ, arraysize, outconverter)


def _handled(meta: _Meta) -> Any:
    return oracle_types.output_type_handler(_VarCursor(), meta)


def test_numbers_are_ints_for_integer_types_and_exact_decimals_otherwise() -> None:
    number = oracledb.DB_TYPE_NUMBER
    assert _handled(_Meta(number, "QTY", precision=10, scale=0)) is None  # the driver's int
    assert _handled(_Meta(number, "QTY", precision=10, scale=2)) == (Decimal, 5001, None)
    assert _handled(_Meta(number, "QTY", precision=0, scale=-127)) == (Decimal, 5001, None)
    assert _handled(_Meta(number, "QTY", precision=126, scale=-127)) == (Decimal, 5001, None)
    # The tie-break goes into tokens: an int whatever the column's declared scale.
    assert _handled(_Meta(number, RID_ALIAS, precision=0, scale=-127)) == (int, 5001, None)
    for other in (oracledb.DB_TYPE_VARCHAR, oracledb.DB_TYPE_DATE, oracledb.DB_TYPE_CLOB):
        assert _handled(_Meta(other, "X")) is None
    # ... and the encoder writes Decimals as exact JSON numbers, ints as ints.
    line = p.encode([Decimal("5"), Decimal("12345678901234567.123456789"), 7, Decimal("0.1")])
    assert line == b"[5,12345678901234567.123456789,7,0.1]"


def test_timestamps_with_time_zone_are_sent_in_utc_or_refused() -> None:
    typ, _, convert = _handled(_Meta(oracledb.DB_TYPE_TIMESTAMP, f"{UTC_ALIAS}3"))
    assert typ is oracledb.DB_TYPE_TIMESTAMP
    utc = convert(dt.datetime(2025, 3, 30, 0, 30, 0, 250000))  # what SYS_EXTRACT_UTC gives
    assert p.encode(utc) == b'"2025-03-30T00:30:00.250000Z"'
    # A plain TIMESTAMP (or DATE) is left alone: naive ISO 8601, as today.
    assert _handled(_Meta(oracledb.DB_TYPE_TIMESTAMP, "TXNDATE")) is None
    assert p.encode(dt.datetime(2025, 1, 1, 8)) == b'"2025-01-01T08:00:00"'
    # A TIMESTAMP WITH TIME ZONE that reaches the driver undeclared: refused, not mangled.
    with pytest.raises(SourceMisconfigured) as info:
        _handled(_Meta(oracledb.DB_TYPE_TIMESTAMP_TZ, "EVENT_TS"))
    assert not info.value.retryable and "EVENT_TS" not in info.value.detail


def test_the_timestamptz_columns_are_read_with_sys_extract_utc() -> None:
    domain = parse_domains(
        "[domains.e]\ntable = 'EVENTS'\ncolumns = ['CONTAINERID', 'EVENT_TS', 'NOTE']\n"
        "timestamptz = ['event_ts']\n"
    )["e"]
    sql = page_sql(domain, ORACLE)
    assert sql.startswith(
        f"SELECT CONTAINERID, SYS_EXTRACT_UTC(EVENT_TS) AS {UTC_ALIAS}1, NOTE, ROWID AS"
    )
    assert page_sql(domain, SQLITE).startswith(f"SELECT CONTAINERID, EVENT_TS AS {UTC_ALIAS}1,")
    assert domain.columns == ("CONTAINERID", "EVENT_TS", "NOTE")  # the names records carry


def test_lobs_are_fetched_as_values_and_bytes_are_sent_as_base64() -> None:
    async def ok(cursor: _Cursor) -> None:
        pass

    pool = _Pool(_Conn(ok))
    asyncio.run(_source_with(pool).fetch("SELECT ...", {"limit": 10}))
    [(sql, kw, handler)] = pool.conn.executed
    assert kw == {"fetch_lobs": False}  # CLOB/NCLOB as str, BLOB as bytes: never locators
    assert handler is oracle_types.output_type_handler
    assert p.encode([b"\x00\xffab", "clob text"]) == b'["AP9hYg==","clob text"]'


def test_the_encoder_option_leaves_sqlite_output_unchanged(demo_db: Any) -> None:
    import sqlite3

    import msgspec

    with sqlite3.connect(demo_db) as conn:
        rows = conn.execute("SELECT * FROM MES_CONTAINER_HISTORY LIMIT 500").fetchall()
    assert p.encode(rows) == msgspec.json.Encoder().encode(rows)


# --- the session callback, the statement cache and the tie-break check ---------------------


def test_a_failed_session_callback_sets_the_timeout_first_and_drops_the_session() -> None:
    seen: list[int] = []

    async def fails(cursor: _Cursor) -> None:
        seen.append(cursor.conn.call_timeout)
        raise _dpy(oe.ERR_CALL_TIMEOUT_EXCEEDED, timeout=1234)

    pool = _Pool(_Conn(fails))
    source = _source_with(pool)
    with pytest.raises(oracledb.Error):
        asyncio.run(source._init_session(pool.conn, None))  # type: ignore[arg-type]
    assert seen == [1234]  # the timeout was in force for the set-up round trip
    assert (pool.dropped, pool.released) == (1, 0)  # not leaked, not handed out unset

    async def ok(cursor: _Cursor) -> None:
        pass

    pool = _Pool(_Conn(ok))
    asyncio.run(_source_with(pool)._init_session(pool.conn, None))  # type: ignore[arg-type]
    assert pool.conn.module == ora.MODULE and pool.conn.call_timeout == 1234
    assert [sql for sql, _, _ in pool.conn.executed] == [ora.SESSION_SETUP]
    assert pool.dropped == 0


def test_statement_cache_is_sized_from_the_domains() -> None:
    domains = load_domains()
    source = oracle_source("oracle://a:b@h/s", domains=domains)
    need = sum(ora.domain_statements(d) for d in domains.values())
    assert source.pool_params()["stmtcachesize"] >= 3 * need + 2  # unfiltered + 2 shapes
    scn = oracle_source("oracle://a:b@h/s", domains=domains, snapshot="scn").pool_params()
    assert scn["stmtcachesize"] == 2 * 3 * need + 2
    many = {f"d{i}": domains["history"] for i in range(12)}
    big = oracle_source("oracle://a:b@h/s", domains=many).pool_params()
    assert big["stmtcachesize"] == 3 * 12 * ora.domain_statements(domains["history"]) + 2
    assert ora.statement_cache_size([]) == 20  # the driver's default is the floor


def _checked(domains_toml: str, behaviour: Any, rows: list[Row]) -> ora.OracleSource:
    pool = _Pool(_Conn(behaviour))
    pool.conn.rows = rows
    source = _source_with(pool)
    source.domains = parse_domains(domains_toml)
    return source


HEAP = "[domains.h]\ntable = 'OWN.\"Mixed\"'\ncolumns = ['CONTAINERID']\n"


def test_the_rowid_check_refuses_index_organized_tables() -> None:
    async def ok(cursor: _Cursor) -> None:
        pass

    source = _checked(HEAP, ok, [(1,)])  # ALL_TABLES says IOT
    with pytest.raises(SourceMisconfigured) as info:
        asyncio.run(source.ping())
    assert "index-organized" in info.value.detail and "tiebreak" in info.value.detail
    assert not source._checked
    executed = [sql for sql, _, _ in source._pool.conn.executed]  # type: ignore[union-attr]
    assert ora.IOT_SQL in executed


def test_the_rowid_check_maps_ora_01446_from_a_view_and_passes_heap_tables() -> None:
    async def view(cursor: _Cursor) -> None:
        if cursor.conn.executed[-1][0].startswith('SELECT ROWID FROM OWN."Mixed"'):
            raise _ora(1446, "cannot select ROWID from, or sample, a view with DISTINCT")

    source = _checked(HEAP, view, [(0,)])
    with pytest.raises(SourceMisconfigured) as info:
        asyncio.run(source.ping())
    assert info.value.detail.startswith("Domain h:") and "unique column" in info.value.detail

    async def ok(cursor: _Cursor) -> None:
        pass

    source = _checked(HEAP, ok, [(0,)])
    asyncio.run(source.ping())
    assert source._checked
    # A unique-column tie-break needs no check.
    source = _checked(HEAP + "tiebreak = 'ID'\n", ok, [(1,)])
    asyncio.run(source.ping())
    assert [s for s, _, _ in source._pool.conn.executed] == [ora.PING_SQL]  # type: ignore[union-attr]
