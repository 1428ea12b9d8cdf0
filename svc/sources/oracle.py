"""The Oracle source: python-oracledb in thin mode, asyncio API, one short query per page.

    TRACE_DB_URL=oracle://user:password@host:port/service    (URL-encode special characters)

- Connections come from a pool (`oracledb.create_pool_async`; a fixed size is recommended).
  A query waits at most TRACE_ORACLE_POOL_WAIT_MS for a connection and every round trip
  at most TRACE_ORACLE_CALL_TIMEOUT_MS.
- Each new session runs ``ALTER SESSION SET NLS_SORT = BINARY NLS_COMP = BINARY``, so the
  database orders and compares CIDs byte-wise, as the keyset predicate and the job's sorted
  CID list assume, and sets MODULE ``trace-svc`` so DBAs can find it in V$SESSION.
- A page is one round trip: ``arraysize`` is the query's row limit and ``prefetchrows`` one
  more, so the rows and the end of the result arrive with the execute. The cursor is closed
  and the connection is back in the pool before the page is returned; nothing is held
  between pages. A cancelled page (the client went away) breaks the query in the database.
- ROWIDs arrive as strings and go back as binds: only the database compares them.
- Driver errors become the service's own in `map_error`, a pure function: the session or
  network lost, a call timeout, an exhausted pool or an unreachable database are
  `SourceUnavailable` (retryable); a snapshot the undo no longer holds is `SnapshotTooOld`.
  The driver's text goes to the log only.

`migrate_oracle` applies ``migrations/oracle`` and `load_demo_oracle` loads the demo rows,
both with the driver's synchronous API (they are commands, not the service).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import oracledb

from svc.errors import SnapshotTooOld, SourceUnavailable, TraceError
from svc.keyset import ORACLE
from svc.migrate import migration_files
from svc.sources import Row, Source

log = logging.getLogger(__name__)

MODULE = "trace-svc"  # V$SESSION.MODULE of the service's sessions
SESSION_SETUP = "ALTER SESSION SET NLS_SORT = BINARY NLS_COMP = BINARY"
SNAPSHOT_SQL = "SELECT DBMS_FLASHBACK.GET_SYSTEM_CHANGE_NUMBER FROM DUAL"
PING_SQL = "SELECT 1 FROM DUAL"

# --- connection URL -------------------------------------------------------------------

_URL_FORM = "oracle://user:password@host:port/service"


@dataclass(frozen=True)
class OracleUrl:
    user: str
    password: str = field(repr=False)
    host: str
    port: int
    service: str

    def connect_params(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "password": self.password,
            "host": self.host,
            "port": self.port,
            "service_name": self.service,
        }


def parse_url(url: str) -> OracleUrl:
    """Parse ``oracle://user:password@host:port/service`` (port 1521 if left out).

    User, password and service are URL-decoded. Errors never repeat the URL: it holds
    the password.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or 1521
    except ValueError:
        raise ValueError(f"TRACE_DB_URL: bad host or port; use {_URL_FORM}") from None
    service = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if parts.scheme != "oracle" or parts.query or parts.fragment or "/" in service:
        raise ValueError(f"TRACE_DB_URL must look like {_URL_FORM}")
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not (user and password and parts.hostname and service):
        raise ValueError(f"TRACE_DB_URL needs a user, password, host and service: {_URL_FORM}")
    return OracleUrl(user, password, parts.hostname, port, service)


# --- error mapping --------------------------------------------------------------------

# ORA-01555 snapshot too old; ORA-08180 no snapshot found based on specified time;
# ORA-08181 not a valid system change number; ORA-01466 table definition has changed
# (DDL such as TRUNCATE after the SCN). Retrying cannot help: the job must be recreated.
_SNAPSHOT_TOO_OLD = frozenset({1555, 8180, 8181, 1466})

_LOST = "The connection to the trace database was lost; retry shortly"
_TIMEOUT = "The trace database did not answer in time; retry shortly"
_BUSY = "Every connection to the trace database is busy; retry shortly"
_UNREACHABLE = "The trace database cannot be reached; retry shortly"

_DRIVER_CODES = {
    "DPY-1001": _LOST,  # not connected
    "DPY-1002": _UNREACHABLE,  # the pool is not open (shutting down)
    "DPY-4011": _LOST,  # the database or network closed the connection (ORA-00028, -03113...)
    "DPY-4033": _LOST,  # the database closed an idle connection
    "DPY-4024": _TIMEOUT,  # call timeout exceeded
    "DPY-4005": _BUSY,  # timed out waiting for the pool (also ORA-24457, -24459, -24496)
}
_ORACLE_CODES = {
    1013: _TIMEOUT,  # user requested cancel (how thick mode reports a call timeout)
    18: _BUSY,  # maximum number of sessions exceeded
    20: _BUSY,  # maximum number of processes exceeded
    24418: _BUSY,  # cannot open further sessions
    12516: _BUSY,  # listener could not find an available handler
    12519: _BUSY,
    12520: _BUSY,
    1033: _UNREACHABLE,  # initialization or shutdown in progress
    1034: _UNREACHABLE,  # ORACLE not available
    1089: _UNREACHABLE,  # immediate shutdown in progress
    1090: _UNREACHABLE,  # shutdown in progress
    12170: _UNREACHABLE,  # connect timeout
    12514: _UNREACHABLE,  # service not registered with the listener (yet)
    12528: _UNREACHABLE,  # all instances are blocking new connections
    12541: _UNREACHABLE,  # no listener
    12543: _UNREACHABLE,  # destination host unreachable
}
_ORA = re.compile(r"\bORA-(\d{5})\b")


def driver_codes(exc: BaseException) -> tuple[str, frozenset[int]]:
    """The driver's full code (``DPY-4011``, ``ORA-01555``) and every ORA number it names.

    Wrapped errors (ORA-12801 from a parallel query server, ORA-06512 stacks) name the
    underlying ORA codes in their text, so the text is searched as well as ``code``.
    """
    err = exc.args[0] if isinstance(exc, oracledb.Error) and exc.args else None
    full_code = str(getattr(err, "full_code", "") or "")
    codes = {int(n) for n in _ORA.findall(str(exc))}
    code = getattr(err, "code", 0)
    if isinstance(code, int) and code > 0:
        codes.add(code)
    return full_code, frozenset(codes)


def map_error(exc: BaseException) -> TraceError:
    """The service's error for a driver (or socket) error; it never holds driver text."""
    if isinstance(exc, TraceError):
        return exc
    full_code, codes = driver_codes(exc)
    if codes & _SNAPSHOT_TOO_OLD:
        return SnapshotTooOld()
    detail = _DRIVER_CODES.get(full_code)
    if detail is None and full_code.startswith("DPY-6"):  # cannot connect, listener refused
        detail = _UNREACHABLE
    if detail is None:
        detail = next((_ORACLE_CODES[c] for c in sorted(codes) if c in _ORACLE_CODES), None)
    if detail is None and isinstance(exc, OSError):  # includes TimeoutError
        detail = _UNREACHABLE
    return SourceUnavailable(detail)


def reusable(exc: BaseException | None) -> bool:
    """Whether a connection whose query ended with `exc` may go back to the pool."""
    if exc is None:
        return True
    if not isinstance(exc, oracledb.Error):
        return False
    if getattr(exc.args[0] if exc.args else None, "is_session_dead", False):
        return False
    return driver_codes(exc)[0] not in {"DPY-1001", "DPY-4011", "DPY-4024", "DPY-4033"}


# --- the source -----------------------------------------------------------------------


async def _init_session(conn: oracledb.AsyncConnection, requested_tag: str | None) -> None:
    """Runs once for each new pooled session (the driver awaits it)."""
    conn.module = MODULE  # sent with the next round trip
    with conn.cursor() as cursor:
        await cursor.execute(SESSION_SETUP)


class OracleSource(Source):
    dialect = ORACLE

    def __init__(
        self,
        url: OracleUrl,
        *,
        pool_min: int = 4,
        pool_max: int = 4,
        pool_increment: int = 1,
        pool_wait_ms: int = 5000,
        call_timeout_ms: int = 30_000,
        snapshot: str | None = None,
        **_: Any,
    ) -> None:
        if not 1 <= pool_min <= pool_max:
            raise ValueError("TRACE_ORACLE_POOL_MAX must be at least TRACE_ORACLE_POOL_MIN (>= 1)")
        if snapshot not in (None, "scn"):
            raise ValueError("TRACE_ORACLE_SNAPSHOT must be scn or off")
        self.url = url
        self.pool_min, self.pool_max, self.pool_increment = pool_min, pool_max, pool_increment
        self.pool_wait_ms = pool_wait_ms
        self.call_timeout_ms = call_timeout_ms
        self.snapshot = snapshot
        self._pool: oracledb.AsyncConnectionPool | None = None
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> OracleSource:
        return cls(parse_url(url), **options)

    def pool_params(self) -> dict[str, Any]:
        """Everything `create_pool_async` is given (holds the password: never log it)."""
        return {
            **self.url.connect_params(),
            "min": self.pool_min,
            "max": self.pool_max,
            "increment": self.pool_increment,
            "getmode": oracledb.POOL_GETMODE_TIMEDWAIT,
            "wait_timeout": self.pool_wait_ms,
            "session_callback": _init_session,
            "tcp_connect_timeout": min(20.0, max(1.0, self.call_timeout_ms / 1000)),
            "expire_time": 2,  # TCP keepalive (minutes): idle pooled sessions survive firewalls
        }

    def _get_pool(self) -> oracledb.AsyncConnectionPool:
        # Created on first use, on the running event loop: the pool's task lives there.
        if self._pool is None:
            try:
                self._pool = oracledb.create_pool_async(**self.pool_params())
            except oracledb.Error as exc:
                raise self._fail("create the pool", exc) from exc
        return self._pool

    def _fail(self, what: str, exc: BaseException) -> TraceError:
        error = map_error(exc)
        level = logging.INFO if isinstance(error, SnapshotTooOld) else logging.WARNING
        log.log(level, "oracle: %s failed (%s): %s", what, error.code, exc)
        return error

    async def fetch(self, sql: str, binds: Mapping[str, object]) -> list[Row]:
        pool = self._get_pool()
        self.in_use += 1
        try:
            conn = await pool.acquire()
        except BaseException as exc:
            self.in_use -= 1
            if isinstance(exc, Exception):
                raise self._fail("connect", exc) from exc
            raise
        query = asyncio.ensure_future(self._query(conn, sql, binds))
        try:
            rows = await asyncio.shield(query)
        except asyncio.CancelledError:
            if not query.done():
                try:
                    conn.cancel()  # break the query now; the connection returns once it stops
                except Exception as exc:  # the session is already gone
                    log.debug("oracle: cancel failed: %s", exc)

            def settle(done: asyncio.Future[list[Row]]) -> None:
                exc = None if done.cancelled() else done.exception()  # marks it as seen
                self._spawn(self._return(pool, conn, reusable(exc) and not done.cancelled()))

            query.add_done_callback(settle)
            raise
        except Exception as exc:
            await asyncio.shield(self._spawn(self._return(pool, conn, reusable(exc))))
            raise self._fail("query", exc) from exc
        await asyncio.shield(self._spawn(self._return(pool, conn, True)))
        return rows

    async def _query(
        self, conn: oracledb.AsyncConnection, sql: str, binds: Mapping[str, object]
    ) -> list[Row]:
        conn.call_timeout = self.call_timeout_ms
        with conn.cursor() as cursor:
            limit = binds.get("limit")
            if isinstance(limit, int) and limit > 0:
                # One round trip: every row the query may return, plus the end of data.
                cursor.arraysize = limit
                cursor.prefetchrows = limit + 1
            await cursor.execute(sql, dict(binds))
            rows: list[Row] = await cursor.fetchall()
        return rows

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _return(
        self, pool: oracledb.AsyncConnectionPool, conn: oracledb.AsyncConnection, keep: bool
    ) -> None:
        """Give a connection back to the pool, or drop it if its session is unusable."""
        try:
            if keep:
                await pool.release(conn)
            else:
                try:
                    await pool.drop(conn)  # type: ignore[arg-type]  # annotated as sync
                except oracledb.Error:
                    await pool.release(conn)  # the pool discards dead sessions itself
        except Exception as exc:  # the pool is closing or the session is gone: nothing to do
            log.debug("oracle: connection not returned cleanly: %s", exc)
        finally:
            self.in_use -= 1

    async def current_snapshot(self) -> int | None:
        if self.snapshot != "scn":
            return None
        rows = await self.fetch(SNAPSHOT_SQL, {})
        return int(rows[0][0])

    async def ping(self) -> None:
        await self.fetch(PING_SQL, {})

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                # Bounded: a connection attempt to a hung listener never ends by itself.
                await asyncio.wait_for(pool.close(force=True), timeout=5)
            except (oracledb.Error, TimeoutError) as exc:
                log.warning("oracle: closing the pool failed: %r", exc)


# --- migrations and demo data (commands, synchronous) ---------------------------------

_PLSQL = re.compile(
    r"\s*(DECLARE|BEGIN|CREATE\s+(OR\s+REPLACE\s+)?((NON)?EDITIONABLE\s+)?"
    r"(PROCEDURE|FUNCTION|PACKAGE|TRIGGER|TYPE|LIBRARY))\b",
    re.IGNORECASE,
)
_Q_CLOSE = {"[": "]", "{": "}", "(": ")", "<": ">"}


def _quoted_end(script: str, start: int) -> int:
    """The index just past the quoted literal or identifier that opens at `start`."""
    if script[start] in "qQ":  # q'[...]' alternative quoting
        close = _Q_CLOSE.get(script[start + 2], script[start + 2]) + "'"
        end = script.find(close, start + 3)
        if end < 0:
            raise ValueError("unterminated q-quoted string in migration")
        return end + 2
    quote, i = script[start], start + 1
    while True:
        i = script.find(quote, i)
        if i < 0:
            raise ValueError("unterminated quote in migration")
        if script.startswith(quote * 2, i):  # '' or "" inside: an escaped quote
            i += 2
            continue
        return i + 1


def split_statements(script: str) -> list[str]:
    """The statements of a SQL*Plus-style script, comments removed.

    A SQL statement ends at ``;`` (dropped: the driver wants none). A PL/SQL unit (BEGIN,
    DECLARE, CREATE PROCEDURE...) keeps its semicolons and ends at a line holding only
    ``/``. Quotes (including q'[...]') and comments are honoured when looking for either.
    """
    statements: list[str] = []
    buf: list[str] = []
    i, n, line_start = 0, len(script), True

    def flush() -> None:
        text = "".join(buf).strip()
        buf.clear()
        if text:
            statements.append(text)

    while i < n:
        if line_start:
            eol = script.find("\n", i)
            eol = n if eol < 0 else eol
            if script[i:eol].strip() == "/":
                flush()
                i = eol + 1
                continue
        line_start = False
        ch, two = script[i], script[i : i + 2]
        if two == "--":
            eol = script.find("\n", i)
            i = n if eol < 0 else eol  # the newline itself is kept
        elif two == "/*":
            end = script.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated comment in migration")
            buf.append(" ")
            i = end + 2
        elif ch in "'\"" or (
            ch in "qQ"
            and script[i + 1 : i + 2] == "'"
            and i + 2 < n
            and not (i > 0 and (script[i - 1].isalnum() or script[i - 1] in "_$#"))
        ):
            end = _quoted_end(script, i)
            buf.append(script[i:end])
            i = end
        elif ch == ";" and not _PLSQL.match("".join(buf)):
            flush()
            i += 1
        else:
            buf.append(ch)
            line_start = ch == "\n"
            i += 1
    flush()
    return statements


_MIGRATIONS_TABLE = (
    "CREATE TABLE TRACE_SCHEMA_MIGRATIONS ("
    "NAME VARCHAR2(200) NOT NULL PRIMARY KEY, APPLIED_AT NUMBER NOT NULL)"
)


def _connect(url: OracleUrl) -> oracledb.Connection:
    return oracledb.connect(**url.connect_params())


def migrate_oracle(db_url: str) -> list[str]:
    """Apply pending ``migrations/oracle`` scripts in order; return their names.

    Each applied script is recorded in TRACE_SCHEMA_MIGRATIONS. Oracle commits DDL as it
    runs, so a script that fails midway is not rolled back: fix it and rerun from there.
    """
    applied: list[str] = []
    with _connect(parse_url(db_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = 'TRACE_SCHEMA_MIGRATIONS'")
        row = cur.fetchone()
        if row is not None and row[0] == 0:
            try:
                cur.execute(_MIGRATIONS_TABLE)
            except oracledb.DatabaseError as exc:
                if 955 not in driver_codes(exc)[1]:  # ORA-00955: another migrate made it
                    raise
        cur.execute("SELECT NAME FROM TRACE_SCHEMA_MIGRATIONS")
        done = {r[0] for r in cur.fetchall()}
        for path in migration_files("oracle"):
            if path.name in done:
                continue
            for statement in split_statements(path.read_text("utf-8")):
                try:
                    cur.execute(statement)
                except oracledb.Error as exc:
                    raise RuntimeError(f"migration {path.name} failed: {exc}") from exc
            cur.execute(
                "INSERT INTO TRACE_SCHEMA_MIGRATIONS (NAME, APPLIED_AT) VALUES (:name, :at)",
                {"name": path.name, "at": time.time()},
            )
            conn.commit()
            applied.append(path.name)
    return applied


_DEMO_TABLES = ("MES_CONTAINER_HISTORY", "MES_CONTAINER_MATERIALS", "TRACE_DEMO_CONTAINERS")


def _date(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


def _insert(cur: oracledb.Cursor, sql: str, rows: Iterable[tuple[Any, ...]], batch: int) -> int:
    count, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch:
            cur.executemany(sql, chunk)
            count, chunk = count + len(chunk), []
    if chunk:
        cur.executemany(sql, chunk)
        count += len(chunk)
    return count


def load_demo_oracle(db_url: str, cids: int, seed: int = 42, batch: int = 10_000) -> dict[str, int]:
    """Replace the Oracle demo tables' rows with the demo data; return the row counts.

    The rows are those of the SQLite demo for the same `cids` and `seed`, inserted in
    time order (so ROWID order is not CID order); the tables are migrated first and
    their optimizer statistics gathered last.
    """
    from svc.demo import demo_rows

    migrate_oracle(db_url)
    ids, history, materials = demo_rows(cids, seed)
    with _connect(parse_url(db_url)) as conn, conn.cursor() as cur:
        for table in _DEMO_TABLES:
            cur.execute(f"TRUNCATE TABLE {table}")
        counts = {
            "containers": _insert(
                cur,
                "INSERT INTO TRACE_DEMO_CONTAINERS (CONTAINERID) VALUES (:1)",
                ((c,) for c in ids),
                batch,
            ),
            "history": _insert(
                cur,
                "INSERT INTO MES_CONTAINER_HISTORY (CONTAINERID, TXNDATE, EVENTNAME, SPECNAME,"
                " WORKCENTERNAME, EQUIPMENTNAME, QTY, QTY2, EMPLOYEENAME, COMMENTS)"
                " VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9, :10)",
                ((r[1], _date(r[0]), *r[2:]) for r in history),
                batch,
            ),
            "materials": _insert(
                cur,
                "INSERT INTO MES_CONTAINER_MATERIALS (CONTAINERID, TXNDATE, MATERIALPARTNAME,"
                " MATERIALLOTNAME, QTYCONSUMED, UOM, WORKCENTERNAME, EQUIPMENTNAME,"
                " EMPLOYEENAME) VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9)",
                ((r[1], _date(r[0]), *r[2:]) for r in materials),
                batch,
            ),
        }
        conn.commit()
        for table in _DEMO_TABLES:
            cur.execute(
                "BEGIN DBMS_STATS.GATHER_TABLE_STATS(ownname => USER, tabname => :t); END;",
                {"t": table},
            )
    return counts
