"""The Oracle source: python-oracledb in thin mode, asyncio API, one short query per page.

    TRACE_DB_URL=oracle://user:password@host:port/service    (URL-encode special characters)

- Connections come from a pool (`oracledb.create_pool_async`; a fixed size is recommended).
  A query waits at most TRACE_ORACLE_POOL_WAIT_MS for a connection and every round trip
  at most TRACE_ORACLE_CALL_TIMEOUT_MS.
- Each new session runs `SESSION_SETUP`: ``NLS_SORT = BINARY NLS_COMP = BINARY``, so the
  database orders and compares CIDs byte-wise, as the keyset predicate and the job's sorted
  CID list assume, and ``TIME_ZONE = '+00:00'``: thin mode would set the service host's UTC
  offset at connect time (unless ORA_SDTZ is set), shifting TIMESTAMP WITH LOCAL TIME ZONE
  comparisons by the host's zone. MODULE ``trace-svc`` lets DBAs find it in V$SESSION.
- A page is one round trip: ``arraysize`` is the query's row limit and ``prefetchrows`` one
  more, so the rows and the end of the result arrive with the execute. The cursor is closed
  and the connection is back in the pool before the page is returned; nothing is held
  between pages. A cancelled page (the client went away) breaks the query in the database.
- ROWIDs arrive as strings and go back as binds: only the database compares them.
- Values are fetched as JSON can carry them (`svc.sources.oracle_types`): LOBs as str/bytes
  (never locators), NUMBER as int when it is an integer type, else as an exact Decimal;
  TIMESTAMP WITH TIME ZONE columns are read with SYS_EXTRACT_UTC and sent in UTC.
- Driver errors become the service's own (`svc.sources.oracle_errors`, pure): transient
  ones `SourceUnavailable` (retryable), a lost snapshot `SnapshotTooOld`, anything else
  permanent. The driver's text goes to the log only.

Migrations (`svc.sources.migrate`) and the demo loader (`svc.sources.demo`) use the
driver's synchronous API in their own modules: they are commands, not the service.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import oracledb

from svc.config import Settings
from svc.core.aggregates.queries import aggregate_shape
from svc.core.domains import ROWID, Domain, canonical
from svc.core.sql.dialects import ORACLE
from svc.errors import SnapshotTooOld, SourceMisconfigured, TraceError
from svc.sources import Lane, Row, Source
from svc.sources.oracle_errors import map_error, reusable
from svc.sources.oracle_types import output_type_handler

log = logging.getLogger(__name__)

MODULE = "trace-svc"  # V$SESSION.MODULE of the service's sessions
SESSION_SETUP = "ALTER SESSION SET NLS_SORT = BINARY NLS_COMP = BINARY TIME_ZONE = '+00:00'"
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
        """The driver's keywords: the fields, with the service as ``service_name``."""
        params = asdict(self)
        params["service_name"] = params.pop("service")
        return params


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


def connect(db_url: str) -> oracledb.Connection:
    """A synchronous connection, for the commands (`migrate`, `demo-data`)."""
    return oracledb.connect(**parse_url(db_url).connect_params())


# --- the source -----------------------------------------------------------------------


# A table whose ROWID is no usable tie-break: an index-organized table (a logical UROWID
# whose physical guess goes stale), or a view without one ROWID per row (ORA-01445/01446).
IOT_SQL = (
    "SELECT COUNT(*) FROM ALL_TABLES WHERE OWNER = NVL(:owner,"
    " SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) AND TABLE_NAME = :name AND IOT_TYPE = 'IOT'"
)


def rowid_probe_sql(table: str) -> str:
    """Parses only if ROWID can be selected from `table` (else ORA-01445/01446)."""
    return f"SELECT ROWID FROM {table} WHERE 1 = 0"


# Statements cached per session. Thin mode keeps a cursor open in the database for each,
# counted against OPEN_CURSORS (default 300) per session: past it, ORA-01000. Kept below it,
# with room for the statement in flight and the database's own recursive cursors.
MAX_STATEMENT_CACHE = 200
FILTER_SHAPES = 2  # filter shapes per domain in use at once, besides unfiltered jobs
_NUMBER_RIDS_KEPT = 4 * MAX_STATEMENT_CACHE


def domain_statements(domain: Domain) -> int:
    """A domain's statement texts for one filter shape and one read mode: page, offset
    page, totals, the grouped aggregate query (if any), one per distinct aggregation."""
    grouped = aggregate_shape(domain) is not None
    return 3 + grouped + sum(agg.kind == "distinct" for agg in domain.aggregations)


def statement_cache_size(domains: Iterable[Domain], snapshot: bool = False) -> int:
    """Every statement shape of the domains, for unfiltered jobs and `FILTER_SHAPES` filter
    shapes each, twice in snapshot mode (plain jobs made before it was turned on are read
    till they expire), plus the source's own (ping, SCN); from 20 (the driver's default)
    to `MAX_STATEMENT_CACHE`. A statement that does not fit costs a soft parse, no error."""
    shapes = sum(domain_statements(d) for d in domains) * (1 + FILTER_SHAPES)
    return max(20, min(MAX_STATEMENT_CACHE, shapes * (2 if snapshot else 1) + 2))


class OracleSource(Source):
    dialect = ORACLE
    remote = True  # a stream starts its aggregations beside its pages (`JobStream`)

    def __init__(
        self,
        url: OracleUrl,
        *,
        pool_min: int,
        pool_max: int,
        pool_increment: int,
        pool_wait_ms: int,
        call_timeout_ms: int,
        snapshot: str | None,
        domains: Mapping[str, Domain],
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
        self.domains = dict(domains or {})
        self._checked = False
        self._pool: oracledb.AsyncConnectionPool | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._count_gate = asyncio.Semaphore(1)
        # Statements seen binding an int `after_rid` (a NUMBER tie-break). A first page binds
        # None, which python-oracledb binds as VARCHAR2: Oracle would make that page's
        # statement a second child cursor (BIND_MISMATCH). ROWIDs are strings: no change.
        self._number_rids: set[str] = set()

    @classmethod
    def from_settings(
        cls, settings: Settings, domains: Mapping[str, Domain] | None = None
    ) -> OracleSource:
        """The source of `settings`; `domains` are checked on the first ping."""
        return cls(
            parse_url(settings.resolved_db_url()),
            pool_min=settings.oracle_pool_min,
            pool_max=settings.oracle_pool_max,
            pool_increment=settings.oracle_pool_increment,
            pool_wait_ms=settings.oracle_pool_wait_ms,
            call_timeout_ms=settings.oracle_call_timeout_ms,
            snapshot=settings.oracle_snapshot,
            domains=domains or {},
        )

    def pool_params(self) -> dict[str, Any]:
        """Everything `create_pool_async` is given (holds the password: never log it)."""
        return {
            **self.url.connect_params(),
            "min": self.pool_min,
            "max": self.pool_max,
            "increment": self.pool_increment,
            "getmode": oracledb.POOL_GETMODE_TIMEDWAIT,
            "wait_timeout": self.pool_wait_ms,
            "session_callback": self._init_session,
            "stmtcachesize": statement_cache_size(self.domains.values(), self.snapshot == "scn"),
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

    async def _init_session(
        self, conn: oracledb.AsyncConnection, requested_tag: str | None
    ) -> None:
        """Runs once for each new pooled session (the driver awaits it).

        The call timeout comes first, so a hung session cannot hold the callback. A session
        whose set-up failed is dropped: the driver would not return it to the pool by
        itself (an AsyncConnection has no __del__), and it must not serve pages unset.
        """
        try:
            conn.call_timeout = self.call_timeout_ms
            conn.module = MODULE  # sent with the next round trip
            with conn.cursor() as cursor:
                await cursor.execute(SESSION_SETUP)
        except BaseException:
            await self._discard(conn)
            raise

    async def _discard(self, conn: oracledb.AsyncConnection) -> None:
        try:
            if self._pool is not None:
                await self._pool.drop(conn)  # type: ignore[arg-type]  # annotated as sync
            else:
                await conn.close()
        except Exception as exc:  # the session is gone already
            log.debug("oracle: dropping a failed session: %s", exc)
            try:
                await conn.close()
            except Exception as again:
                log.debug("oracle: closing a failed session: %s", again)

    def _fail(self, what: str, exc: BaseException, snapshot: bool = False) -> TraceError:
        error = map_error(exc, snapshot)
        level = logging.INFO if isinstance(error, SnapshotTooOld) else logging.WARNING
        log.log(level, "oracle: %s failed (%s): %s", what, error.code, exc)
        return error

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        if lane == "count":  # counting takes one pooled session at most
            async with self._count_gate:
                return await self._fetch(sql, binds)
        return await self._fetch(sql, binds)

    async def _fetch(self, sql: str, binds: Mapping[str, object]) -> list[Row]:
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
            raise self._fail("query", exc, snapshot="scn" in binds) from exc
        await asyncio.shield(self._spawn(self._return(pool, conn, True)))
        return rows

    async def _query(
        self, conn: oracledb.AsyncConnection, sql: str, binds: Mapping[str, object]
    ) -> list[Row]:
        conn.call_timeout = self.call_timeout_ms
        with conn.cursor() as cursor:
            cursor.outputtypehandler = output_type_handler
            limit = binds.get("limit")
            if isinstance(limit, int) and limit > 0:
                # One round trip: every row the query may return, plus the end of data.
                cursor.arraysize = limit
                cursor.prefetchrows = limit + 1
            self._keep_rid_type(cursor, sql, binds)
            # LOBs as str/bytes: a locator cannot be encoded, and reading it would need
            # the connection, which is back in the pool before the page is sent.
            await cursor.execute(sql, dict(binds), fetch_lobs=False)
            rows: list[Row] = await cursor.fetchall()
        return rows

    def _keep_rid_type(self, cursor: Any, sql: str, binds: Mapping[str, object]) -> None:
        """Bind a first page's None `after_rid` as NUMBER where later pages bind ints."""
        rid = binds.get("after_rid")
        if rid is None:
            if "after_rid" in binds and sql in self._number_rids:
                cursor.setinputsizes(after_rid=int)
        elif isinstance(rid, int) and sql not in self._number_rids:
            if len(self._number_rids) >= _NUMBER_RIDS_KEPT:  # texts of filter shapes gone by
                self._number_rids.clear()
            self._number_rids.add(sql)

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
        await self.fetch(PING_SQL, {}, lane="control")
        if not self._checked:
            await self.check_domains()

    async def check_domains(self) -> None:
        """Refuse a ROWID tie-break where ROWID cannot work (once, on the first ping).

        An index-organized table (USER/ALL_TABLES.IOT_TYPE = 'IOT') has logical UROWIDs
        whose physical guess goes stale; a view with a join, DISTINCT or GROUP BY has no
        ROWID (the probe fails with ORA-01445/01446). Both need ``tiebreak`` set to a unique
        column, indexed with the key. Tables reached through a synonym are not resolved.
        """
        for domain in self.domains.values():
            if domain.tiebreak != ROWID:
                continue
            parts = [canonical(p) for p in re.findall(r'"[^"]*"|[^."]+', domain.table)]
            owner, name = (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
            rows = await self.fetch(IOT_SQL, {"owner": owner, "name": name})
            if rows and int(rows[0][0]) > 0:
                raise SourceMisconfigured(
                    f"Domain {domain.name}: {domain.table} is index-organized; its ROWID is"
                    " no stable tie-break: set tiebreak to a unique column"
                )
            try:
                await self.fetch(rowid_probe_sql(domain.table), {})
            except SourceMisconfigured as exc:
                raise SourceMisconfigured(f"Domain {domain.name}: {exc.detail}") from exc
        self._checked = True

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
