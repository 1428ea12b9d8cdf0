"""The Oracle source, verified without an Oracle server.

- The Oracle dialect's page and stats SQL run on a real SQLite demo file, rewriting only
  the row-limit clause, through the real reader: every page of multi-chunk jobs matches
  the SQLite dialect and a direct ORDER BY query.
- Every Oracle statement parses with sqlglot's Oracle dialect (no "Command" fallback).
- The driver-error mapping, on errors built the way python-oracledb builds them, and on
  real driver failures (refused, reset and silent TCP peers).
- URL parsing, settings wiring, and a constant statement text for every position.
- The page bookkeeping (cursor sizing, release, cancel, drop) against a stand-in pool,
  since nothing here can run the real one: tests/oracle/ does, given a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import random
import re
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import oracledb
import pytest
import sqlglot
from sqlglot import exp

from svc.config import SETTINGS, Settings
from svc.demo import build_demo_database
from svc.domains import Domain
from svc.errors import SnapshotTooOld, SourceUnavailable
from svc.keyset import ORACLE, SLOTS, Key, Plan, page_sql, stats_sql
from svc.migrate import migration_files
from svc.reader import DomainReader
from svc.server import build_service
from svc.sources import Row, Source, open_source
from svc.sources import oracle as ora
from svc.sources.sqlite import SqliteSource
from tests.support import DOMAINS, expected_rows

oe: Any = importlib.import_module("oracledb.errors")  # how the driver builds its errors

ORACLE_LIMIT = "FETCH FIRST :limit ROWS ONLY"


# --- (a) the Oracle SQL text, executed on SQLite ------------------------------------------


class OracleTextOnSqlite(Source):
    """Runs the Oracle dialect's SQL on SQLite, rewriting only the row-limit clause."""

    dialect = ORACLE

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.seen: list[tuple[str, frozenset[str]]] = []

    async def fetch(self, sql: str, binds: Mapping[str, object]) -> list[Row]:
        self.seen.append((sql, frozenset(binds)))
        assert sql.count(ORACLE_LIMIT) == (1 if "limit" in binds else 0)
        return self.conn.execute(sql.replace(ORACLE_LIMIT, "LIMIT :limit"), dict(binds)).fetchall()

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle-sql") / "demo.sqlite3"
    build_demo_database(path, cids=2000, seed=11)
    return path


@pytest.fixture(scope="module")
def cids(demo: Path) -> list[str]:
    with sqlite3.connect(demo) as conn:
        return sorted(r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS"))


async def _walk(reader: DomainReader, limits: list[int], after: Key | None = None) -> list[Row]:
    rows: list[Row] = []
    for n in range(1_000_000):
        batch = await reader.read(after, limits[n % len(limits)])
        rows.extend(batch.rows)
        after = batch.last
        if not batch.more:
            return rows
    raise AssertionError("the walk did not end")


def _job(cids: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    # Unknown CIDs sort between and after real ones: chunks with no rows at all occur.
    return sorted(set(rng.sample(cids, n)) | {f"{rng.getrandbits(64):016x}z" for _ in range(40)})


@pytest.mark.parametrize(
    ("n", "slots", "limits"),
    [(700, 50, [37]), (700, 50, [1, 5000, 13]), (2000, SLOTS, [5000]), (1200, SLOTS, [999, 1])],
)
@pytest.mark.parametrize("domain", ["history", "materials"])
def test_oracle_page_sql_walks_exactly_like_sqlite(
    demo: Path, cids: list[str], n: int, slots: int, limits: list[int], domain: str
) -> None:
    job = _job(cids, n, seed=n + slots)
    plan = Plan(job, slots=slots)
    truth = expected_rows(demo, job, DOMAINS[domain])

    async def run() -> tuple[list[Row], list[Row], list[Row]]:
        oracle_text, lite = OracleTextOnSqlite(demo), SqliteSource(str(demo))
        try:
            a = await _walk(DomainReader(oracle_text, DOMAINS[domain], plan), limits)
            b = await _walk(DomainReader(lite, DOMAINS[domain], plan), limits)
            # Resume from arbitrary keys, chunk boundaries included: the rest is exact.
            rng = random.Random(n)
            for k in sorted(rng.sample(range(1, len(a)), 8)) + [len(a)]:
                key = Key(a[k - 1][DOMAINS[domain].key_index], a[k - 1][-1])
                rest = await _walk(DomainReader(oracle_text, DOMAINS[domain], plan), limits, key)
                assert rest == a[k:], f"resume after row {k}"
            return a, b, truth
        finally:
            await oracle_text.close()
            await lite.close()

    a, b, truth_rows = asyncio.run(run())
    assert plan.chunk_count > 1
    assert a == b
    assert [r[:-1] for r in a] == truth_rows


@pytest.mark.parametrize("domain", ["history", "materials"])
def test_oracle_stats_sql_counts_like_sqlite(demo: Path, cids: list[str], domain: str) -> None:
    plan = Plan(_job(cids, 900, seed=3), slots=100)

    async def run() -> tuple[Any, Any]:
        oracle_text, lite = OracleTextOnSqlite(demo), SqliteSource(str(demo))
        try:
            return (
                await DomainReader(oracle_text, DOMAINS[domain], plan).chunk_stats(),
                await DomainReader(lite, DOMAINS[domain], plan).chunk_stats(),
            )
        finally:
            await oracle_text.close()
            await lite.close()

    got, want = asyncio.run(run())
    assert got == want and len(got) == plan.chunk_count
    assert sum(c.records for c in got) > 0 and sum(c.containers for c in got) == 900


# --- (b) every Oracle statement parses with sqlglot's Oracle dialect -------------------------


def _parse(sql: str) -> exp.Expr:
    tree = sqlglot.parse_one(sql, read="oracle")  # raises on a syntax error
    assert tree is not None
    assert not isinstance(tree, exp.Command), f"sqlglot fell back to a Command: {sql[:80]}"
    return tree


@pytest.mark.parametrize("snapshot", [False, True])
@pytest.mark.parametrize("domain", ["history", "materials"])
def test_page_sql_parses_as_oracle(domain: str, snapshot: bool) -> None:
    d = DOMAINS[domain]
    tree = _parse(page_sql(d, ORACLE, snapshot=snapshot))
    assert isinstance(tree, exp.Select)
    fetch = tree.args["limit"]
    assert isinstance(fetch, exp.Fetch) and fetch.args["count"] == exp.Placeholder(this="limit")
    in_list = tree.find(exp.In)
    assert in_list is not None and in_list.this == exp.column(d.key)
    assert [e.this for e in in_list.expressions] == [f"c{i}" for i in range(SLOTS)]
    assert [o.this.name for o in tree.args["order"].expressions] == [d.key, "ROWID"]
    version = tree.find(exp.Version)
    if snapshot:
        assert version is not None and version.args["kind"] == "AS OF"
        assert version.name == "SCN" and version.expression == exp.Placeholder(this="scn")
    else:
        assert version is None


@pytest.mark.parametrize("snapshot", [False, True])
@pytest.mark.parametrize("domain", ["history", "materials"])
def test_stats_sql_parses_as_oracle(domain: str, snapshot: bool) -> None:
    tree = _parse(stats_sql(DOMAINS[domain], ORACLE, snapshot=snapshot))
    assert isinstance(tree, exp.Select) and tree.find(exp.Count) is not None
    assert (tree.find(exp.Version) is not None) == snapshot


def test_source_statements_parse_as_oracle() -> None:
    for sql in (ora.SNAPSHOT_SQL, ora.PING_SQL, ora._MIGRATIONS_TABLE):
        _parse(sql)
    _parse("SELECT NAME FROM TRACE_SCHEMA_MIGRATIONS")
    _parse("INSERT INTO TRACE_SCHEMA_MIGRATIONS (NAME, APPLIED_AT) VALUES (:name, :at)")


def _table(tree: exp.Expr) -> str:
    table = tree.find(exp.Table)
    assert table is not None
    return table.name


def test_oracle_migrations_split_and_parse() -> None:
    files = migration_files("oracle")
    assert [f.name for f in files] == ["001_demo_tables.sql", "002_containerid_indexes.sql"]
    trees = [_parse(s) for f in files for s in ora.split_statements(f.read_text("utf-8"))]
    tables = {_table(t): t for t in trees if t.args.get("kind") == "TABLE"}
    assert set(tables) == {
        "MES_CONTAINER_HISTORY",
        "MES_CONTAINER_MATERIALS",
        "TRACE_DEMO_CONTAINERS",
    }
    indexes = [t for t in trees if t.args.get("kind") == "INDEX"]
    assert len(indexes) == 2
    # The same tables and columns as the SQLite demo schema, and as the domains select.
    lite = sqlite3.connect(":memory:")
    for f in migration_files("sqlite"):
        lite.executescript(f.read_text("utf-8"))
    for name, tree in tables.items():
        columns = [c.name for c in tree.find_all(exp.ColumnDef)]
        assert columns == [r[1] for r in lite.execute(f"PRAGMA table_info({name})")]
    for d in DOMAINS.values():
        assert set(d.columns) <= {c.name for c in tables[d.table].find_all(exp.ColumnDef)}


def test_split_statements_honours_quotes_comments_and_plsql() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE T (A VARCHAR2(10) DEFAULT 'x;y' NOT NULL); /* block; comment */
    INSERT INTO T VALUES ('it''s; fine');
    INSERT INTO T VALUES (q'[a ' ; b]');
    BEGIN
      DBMS_STATS.GATHER_TABLE_STATS(USER, 'T'); -- keeps its semicolons
    END;
    /
    CREATE OR REPLACE PROCEDURE P AS BEGIN NULL; END;
    /
    SELECT "odd;name" FROM T
    """
    assert ora.split_statements(script) == [
        "CREATE TABLE T (A VARCHAR2(10) DEFAULT 'x;y' NOT NULL)",
        "INSERT INTO T VALUES ('it''s; fine')",
        "INSERT INTO T VALUES (q'[a ' ; b]')",
        "BEGIN\n      DBMS_STATS.GATHER_TABLE_STATS(USER, 'T'); \n    END;",
        "CREATE OR REPLACE PROCEDURE P AS BEGIN NULL; END;",
        'SELECT "odd;name" FROM T',
    ]
    with pytest.raises(ValueError):
        ora.split_statements("SELECT 'open")


# --- (c) the error mapping ---------------------------------------------------------------


def _dpy(number: int, context: str | None = None, **args: Any) -> Exception:
    exc: Exception = oe._create_exception(number, context, **args)
    return exc


def _ora(code: int, text: str) -> Exception:
    err = oe._Error(f"ORA-{code:05d}: {text}", code=code)
    exc: Exception = err.exc_type(err)
    return exc


LOST, TIMEOUT, BUSY, UNREACHABLE = ora._LOST, ora._TIMEOUT, ora._BUSY, ora._UNREACHABLE
GENERIC = SourceUnavailable.title
TOO_OLD = "snapshot too old"

ERROR_TABLE: list[tuple[str, Exception, str]] = [
    ("DPY-4011 closed", _dpy(oe.ERR_CONNECTION_CLOSED), LOST),
    ("ORA-00028 killed", _ora(28, "your session has been killed"), LOST),
    ("ORA-03113 eof", _ora(3113, "end-of-file on communication channel"), LOST),
    ("ORA-03135 lost", _ora(3135, "connection lost contact"), LOST),
    ("DPY-4024 call timeout", _dpy(oe.ERR_CALL_TIMEOUT_EXCEEDED, timeout=30000), TIMEOUT),
    ("ORA-01013 cancel", _ora(1013, "user requested cancel of current operation"), TIMEOUT),
    ("DPY-4005 pool", _dpy(oe.ERR_POOL_NO_CONNECTION_AVAILABLE), BUSY),
    ("ORA-24459 pool", _ora(24459, "OCISessionGet() timed out waiting for pool"), BUSY),
    ("ORA-00018 sessions", _ora(18, "maximum number of sessions exceeded"), BUSY),
    ("DPY-1002 pool closed", _dpy(oe.ERR_POOL_NOT_OPEN), UNREACHABLE),
    ("DPY-6005 refused", _dpy(oe.ERR_CONNECTION_FAILED, "[Errno 111] refused"), UNREACHABLE),
    ("DPY-6000 listener", _dpy(oe.ERR_LISTENER_REFUSED_CONNECTION, error_code="x"), UNREACHABLE),
    ("ORA-12541 no listener", _ora(12541, "Cannot connect. No listener at host"), UNREACHABLE),
    ("ORA-01034 down", _ora(1034, "ORACLE not available"), UNREACHABLE),
    ("socket refused", ConnectionRefusedError(111, "Connection refused"), UNREACHABLE),
    ("socket timeout", TimeoutError(), UNREACHABLE),
    ("ORA-01555", _ora(1555, 'snapshot too old: rollback segment "_SYSSMU10$" too small'), TOO_OLD),
    ("ORA-08180", _ora(8180, "no snapshot found based on specified time"), TOO_OLD),
    ("ORA-08181", _ora(8181, "specified number is not a valid system change number"), TOO_OLD),
    ("ORA-01466", _ora(1466, "unable to read data - table definition has changed"), TOO_OLD),
    ("ORA-12801 wraps it", _ora(12801, "parallel query P001\nORA-01555: snapshot"), TOO_OLD),
    ("ORA-00942", _ora(942, 'table or view "TRACE"."MES_CONTAINER_HISTORY" not found'), GENERIC),
    ("ORA-01031", _ora(1031, "insufficient privileges"), GENERIC),
    ("anything else", ValueError("secret-ish driver text"), GENERIC),
]


@pytest.mark.parametrize(
    ("exc", "detail"), [r[1:] for r in ERROR_TABLE], ids=[r[0] for r in ERROR_TABLE]
)
def test_driver_errors_map_to_the_service_errors(exc: Exception, detail: str) -> None:
    got = ora.map_error(exc)
    if detail == TOO_OLD:
        assert type(got) is SnapshotTooOld
        assert (got.status, got.code, got.retryable) == (410, "snapshot_too_old", False)
    else:
        assert type(got) is SourceUnavailable
        assert (got.status, got.code, got.retryable) == (503, "source_unavailable", True)
        assert got.detail == detail
    # The driver's text never reaches the client.
    assert not re.search(r"ORA-|DPY-|MES_CONTAINER|Errno|secret|Help:", got.detail)


def test_connections_that_failed_are_dropped_not_reused() -> None:
    assert ora.reusable(None)
    assert ora.reusable(_ora(942, "table or view does not exist"))
    assert ora.reusable(_ora(1013, "user requested cancel of current operation"))
    assert ora.reusable(_ora(1555, "snapshot too old"))
    assert not ora.reusable(_dpy(oe.ERR_CONNECTION_CLOSED))
    assert not ora.reusable(_ora(28, "your session has been killed"))
    assert not ora.reusable(_dpy(oe.ERR_CALL_TIMEOUT_EXCEEDED, timeout=1))
    assert not ora.reusable(asyncio.CancelledError())


# Real driver, real sockets, no database: the pool is created with the service's own
# parameters and its failures come out as SourceUnavailable within the configured waits.


@contextlib.asynccontextmanager
async def _peer(behaviour: str) -> AsyncIterator[int]:
    if behaviour == "refused":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield port  # nothing listens there any more
        return
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        if behaviour == "reset":
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("behaviour", ["refused", "reset", "silent"])
def test_unreachable_database_is_source_unavailable(behaviour: str) -> None:
    async def run() -> tuple[BaseException, float, int]:
        async with _peer(behaviour) as port:
            source = ora.OracleSource.from_url(
                f"oracle://trace:pw@127.0.0.1:{port}/FREEPDB1",
                pool_min=1,
                pool_max=1,
                pool_wait_ms=1500,
                call_timeout_ms=1500,
            )
            started = time.monotonic()
            try:
                await source.ping()
            except Exception as exc:
                return exc, time.monotonic() - started, source.in_use
            finally:
                await source.close()
        raise AssertionError("ping succeeded without a database")

    exc, elapsed, in_use = asyncio.run(asyncio.wait_for(run(), 30))
    assert isinstance(exc, SourceUnavailable), repr(exc)
    assert exc.detail in {UNREACHABLE, BUSY, LOST, TIMEOUT}
    assert isinstance(exc.__cause__, oracledb.Error)  # re-raised `from` the driver's error
    assert elapsed < 15
    assert in_use == 0


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


def test_options_and_settings_reach_the_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ora.OracleSource.from_url("oracle://a:b@h/s", pool_min=4, pool_max=2)
    with pytest.raises(ValueError):
        ora.OracleSource.from_url("oracle://a:b@h/s", snapshot="timestamp")
    settings = Settings.from_env(
        {
            "TRACE_DB_URL": "oracle://trace:pw@db:1521/FREEPDB1",
            "TRACE_DATA_DIR": str(tmp_path),
            "TRACE_SECRET": "s" * 32,
            "TRACE_ORACLE_POOL_MIN": "3",
            "TRACE_ORACLE_POOL_MAX": "6",
            "TRACE_ORACLE_POOL_INCREMENT": "2",
            "TRACE_ORACLE_POOL_WAIT_MS": "750",
            "TRACE_ORACLE_CALL_TIMEOUT_MS": "9000",
            "TRACE_ORACLE_SNAPSHOT": "scn",
        }
    )
    with pytest.raises(ValueError):
        Settings.from_env({"TRACE_ORACLE_SNAPSHOT": "flashback"})
    assert Settings.from_env({"TRACE_ORACLE_SNAPSHOT": "off"}).oracle_snapshot is None

    async def run() -> dict[str, Any]:
        service = await build_service(settings)
        try:
            source = service.source
            assert isinstance(source, ora.OracleSource) and source.snapshot == "scn"
            return source.pool_params()
        finally:
            await service.close()  # never connected: nothing to close but the store

    params = asyncio.run(run())
    assert {k: params[k] for k in ("min", "max", "increment", "wait_timeout")} == {
        "min": 3,
        "max": 6,
        "increment": 2,
        "wait_timeout": 750,
    }
    assert params["getmode"] == oracledb.POOL_GETMODE_TIMEDWAIT
    assert params["service_name"] == "FREEPDB1" and params["password"] == "pw"


def test_no_snapshot_mode_needs_no_database() -> None:
    source = open_source("oracle://a:b@127.0.0.1:9/s")
    assert isinstance(source, ora.OracleSource)
    assert asyncio.run(source.current_snapshot()) is None
    assert source._pool is None  # nothing was opened


def test_demo_data_cli_rejects_unknown_urls(tmp_path: Path) -> None:
    from svc.cli import main

    with pytest.raises(SystemExit):
        main(["demo-data", "--cids", "10", "--db-url", "mysql://x"])
    assert main(["demo-data", "--cids", "10", "--db-url", f"sqlite:///{tmp_path / 'd.db'}"]) == 0
    assert (tmp_path / "d.db").exists()


# --- (e) one statement text for every position -------------------------------------------


def _placeholders(sql: str) -> set[str]:
    return set(re.findall(r":(\w+)", sql))


@pytest.mark.parametrize("snapshot", [False, True])
def test_statement_text_and_bind_names_are_the_same_at_every_position(
    cids: list[str], snapshot: bool
) -> None:
    d: Domain = DOMAINS["history"]
    plan = Plan(cids[:2500], slots=SLOTS)
    scn = 123456 if snapshot else None
    sql = page_sql(d, ORACLE, snapshot=snapshot)
    assert sql.count(":c") == SLOTS <= 1000  # ORA-01795: at most 1000 expressions in a list
    positions: list[Key | None] = [None] + [Key(c, "AAAR3sAAEAAAACXAAA") for c in cids[:2500:97]]
    names = {frozenset(plan.page_binds(plan.chunk_of(k), k, 5001, scn)) for k in positions}
    assert names == {frozenset(_placeholders(sql))}
    stats = stats_sql(d, ORACLE, snapshot=snapshot)
    assert {frozenset(plan.stats_binds(c, scn)) for c in range(plan.chunk_count)} == {
        frozenset(_placeholders(stats))
    }
    # The reader sends one text per statement, whatever the position.
    readers = {DomainReader(_NoSource(), d, plan, scn)._sql for _ in range(3)}
    assert readers == {sql}


def test_a_walk_sends_one_page_text_only(demo: Path, cids: list[str]) -> None:
    source = OracleTextOnSqlite(demo)
    plan = Plan(_job(cids, 1500, seed=5), slots=SLOTS)
    rows = asyncio.run(_walk(DomainReader(source, DOMAINS["materials"], plan), [333]))
    source.conn.close()
    assert len(rows) > 333 * 3
    assert len({sql for sql, _ in source.seen}) == 1
    assert len({names for _, names in source.seen}) == 1


class _NoSource(Source):
    dialect = ORACLE

    async def fetch(self, sql: str, binds: Mapping[str, object]) -> list[Row]:
        raise AssertionError("no query expected")

    async def ping(self) -> None:
        pass


# --- page bookkeeping, against a stand-in for the driver's pool ---------------------------


class _Cursor:
    def __init__(self, conn: _Conn) -> None:
        self.conn, self.arraysize, self.prefetchrows, self.closed = conn, 100, 2, False

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    async def execute(self, sql: str, binds: dict[str, object]) -> None:
        self.conn.log.append(("execute", sql, self.arraysize, self.prefetchrows))
        await self.conn.behaviour(self)

    async def fetchall(self) -> list[Row]:
        return [("row",)]


class _Conn:
    def __init__(self, behaviour: Any) -> None:
        self.behaviour = behaviour
        self.log: list[tuple[Any, ...]] = []
        self.cursors: list[_Cursor] = []
        self.call_timeout, self.cancelled = 0, False

    def cursor(self) -> _Cursor:
        self.cursors.append(_Cursor(self))
        return self.cursors[-1]

    def cancel(self) -> None:
        self.cancelled = True


class _Pool:
    def __init__(self, conn: _Conn) -> None:
        self.conn, self.released, self.dropped = conn, 0, 0

    async def acquire(self) -> _Conn:
        return self.conn

    async def release(self, conn: _Conn) -> None:
        self.released += 1

    async def drop(self, conn: _Conn) -> None:
        self.dropped += 1


def _source_with(pool: _Pool) -> ora.OracleSource:
    source = ora.OracleSource.from_url("oracle://a:b@h/s", call_timeout_ms=1234)
    source._pool = pool  # type: ignore[assignment]
    return source


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


# --- compose.yaml, Dockerfile and nginx.conf: consistent with each other and the code ------

ROOT = Path(__file__).resolve().parent.parent


def _expand(value: str, env: Mapping[str, str] | None = None) -> str:
    """Compose's ${VAR:-default} interpolation, with the defaults (or `env`)."""
    env = env or {}
    return re.sub(
        r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), value
    ).replace("$$", "$")


def test_compose_stack_is_consistent() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"oracle", "redis", "setup", "trace-a", "trace-b", "nginx"}

    oracle = services["oracle"]
    assert oracle["image"].startswith("gvenzl/oracle-free:") and "faststart" in oracle["image"]
    assert "healthcheck.sh" in " ".join(oracle["healthcheck"]["test"])
    init = next(v for v in oracle["volumes"] if "initdb.d" in v).split(":")[0]
    scripts = list((ROOT / init).iterdir())
    assert scripts and all(p.stat().st_mode & 0o111 for p in scripts if p.suffix == ".sh")
    marker = re.search(r"test -f (\S+)", " ".join(oracle["healthcheck"]["test"]))
    assert marker and any(marker.group(1) in p.read_text() for p in scripts)
    grants = "".join(p.read_text() for p in scripts)
    for needed in ("DBMS_FLASHBACK", "V_\\$SQL_PLAN", "V_\\$SESSION", "ALTER SYSTEM"):
        assert needed in grants
    app_user = oracle["environment"]["APP_USER"]
    app_password = _expand(oracle["environment"]["APP_USER_PASSWORD"])

    known = {s.env for s in SETTINGS}
    for name in ("setup", "trace-a", "trace-b"):
        env = {k: _expand(str(v)) for k, v in services[name]["environment"].items()}
        assert {k for k in env if k.startswith("TRACE_")} <= known, name
        url = ora.parse_url(env["TRACE_DB_URL"])
        assert (url.user, url.password, url.host, url.port) == (
            app_user,
            app_password,
            "oracle",
            1521,
        )
        assert url.service == "FREEPDB1"
        assert env["TRACE_REDIS_URL"].startswith("redis://redis:")
        settings = Settings.from_env(env)  # every value parses
        assert settings.oracle_pool_min == settings.oracle_pool_max  # a fixed-size pool
        assert services[name]["build"] == "."
    assert services["trace-a"] == services["trace-b"]
    assert services["trace-a"]["depends_on"]["setup"]["condition"] == (
        "service_completed_successfully"
    )
    setup = " ".join(services["setup"]["command"])
    assert "trace-svc migrate" in setup and "demo-data" in setup and "--db-url" in setup

    nginx_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    nginx = services["nginx"]
    assert any(v.startswith("./deploy/nginx.conf:") for v in nginx["volumes"])
    upstreams = set(re.findall(r"^\s*server\s+([\w-]+):(\d+)", nginx_conf, re.M))
    dockerfile = (ROOT / "Dockerfile").read_text()
    port = re.search(r"^EXPOSE (\d+)", dockerfile, re.M)
    assert port and upstreams == {("trace-a", port.group(1)), ("trace-b", port.group(1))}
    assert re.search(r"proxy_buffering\s+off;", nginx_conf)
    body = re.search(r"client_max_body_size\s+(\d+)m;", nginx_conf)
    assert body and int(body.group(1)) * 2**20 >= Settings().max_cids * 80 + 65536
    assert '"trace-svc", "serve"' in dockerfile and "0.0.0.0" in dockerfile
