"""The SQLite source: the embedded demo database, read-only, off the event loop.

Connections are pooled and lent to one worker thread per query; none is held between
pages. Each lane has its own threads and connections: `pool_size` for row pages (one by
default), `json_threads` for pages the database builds as JSON (two), one for counting, one
for readiness and the demo, so none waits behind another's queue. The JSON lane's
connections read the file through memory maps (`mmap_mb`).

The driver is APSW, not the standard library's sqlite3 module: it bundles a current
SQLite, whose JSON functions write REALs exactly (17 significant digits where needed; the
system's SQLite 3.40 rounds them to 15), and it hands rows over faster. `builds_json` says
whether this engine can build pages (`svc.engine.json_batches`): it is probed, not assumed.

Statements run with their named parameters numbered (`?N`, in the order SQLite numbered the
names, learnt once per statement text) and bound by position: APSW binding a page's 1003
names from a dict took ~3 ms a query, and ~2 ms by position while they were still named,
10-15 % of a 5000-row page each (docs/benchmarks.md#rows-path-against-the-plain-loop).

One thread for row pages, not four: the driver releases the interpreter lock for each
step of a query and takes it back to build each row, so reading threads running at once
queue on that lock at every row. A page built as JSON holds the lock only to hand over
one string, so two threads build pages at once on two cores. Four concurrent streams of
row pages ran faster in all with one reading thread than with four
(`TRACE_SQLITE_READ_THREADS`; docs/benchmarks.md#how-many-threads-read-sqlite). A cancelled
query (the client went away) is interrupted in the database, or dropped if it was still
queued.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw

from svc.core.sql.dialects import SQLITE
from svc.core.sql.pages import json_value_guard
from svc.errors import SourceUnavailable
from svc.sources import JsonUnsupported, Lane, Row, Source

Bindings = Mapping[str, object] | Sequence[object]

log = logging.getLogger(__name__)


# A short slice of a query between checks for a client gone away; checking costs nothing
# measurable (docs/benchmarks.md#page-sql-and-sources).
_STEPS_PER_CHECK = 20_000

# Statements kept as they run (`SqliteSource._statement`): every page, count and aggregate
# statement of the domains in use, a few per domain and filter shape.
_STATEMENTS_KEPT = 256
Statement = tuple[str, tuple[str, ...] | None]  # the text run, its parameters' names

# A statement's tokens that may hold a parameter's marker without being one (strings,
# quoted names, comments), and its parameters; SQLite's own tokenizer decides in the end.
_TOKENS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|\Z)"
    r"|[:@$]\w+|\?\d*",
    re.DOTALL,
)


def numbered(sql: str, names: Sequence[str]) -> str | None:
    """`sql` with each named parameter written `?N`, N its place in `names` (1-based), or
    None if it holds another parameter. APSW binding a statement of 1003 named parameters
    took ~2 ms a query, even by position (its names are looked up one by one), against
    ~0.1 ms numbered (docs/benchmarks.md#rows-path-against-the-plain-loop)."""
    place = {name: i + 1 for i, name in enumerate(names)}
    unknown: list[str] = []

    def number(match: re.Match[str]) -> str:
        token = match.group()
        if token[0] in ":@$":
            at = place.get(token[1:])
            if at is not None:
                return f"?{at}"
            unknown.append(token)
        elif token[0] == "?":
            unknown.append(token)
        return token

    text = _TOKENS.sub(number, sql)
    return None if unknown else text


def _parameters(conn: apsw.Connection, sql: str, binds: Bindings) -> tuple[str | None, ...]:
    """The names of `sql`'s parameters, in SQLite's order (without their marker)."""
    cur = conn.execute(sql, binds, explain=2)
    try:
        return tuple(cur.bindings_names)
    finally:
        cur.close()


# Errors after which a connection is still sound (the query failed, not the connection).
_REUSABLE = (apsw.SQLError, apsw.InterruptError, apsw.BusyError, apsw.LockedError)


def _without_memory_statistics() -> None:
    """SQLite's memory statistics take one process-wide mutex at every allocation: two
    threads building JSON pages queued on it (docs/benchmarks.md#page-sql-and-sources).
    Settable only while SQLite is shut down: this module is imported before any of its
    connections opens (APSW's own SQLite, not the sqlite3 module's)."""
    try:
        apsw.shutdown()
        apsw.config(apsw.SQLITE_CONFIG_MEMSTATUS, 0)
    except apsw.Error:  # a connection is open elsewhere: the statistics stay on
        log.info("SQLite already in use: its memory statistics stay on")
    finally:
        apsw.initialize()


_without_memory_statistics()


def builds_exact_json() -> bool:
    """Whether this SQLite writes REALs in JSON so that they read back as the same double,
    and the guards of `pages.json_page_sql` run (they need the math functions)."""
    probe = apsw.Connection(":memory:")
    guarded = json_value_guard("V")
    try:
        ((text,),) = probe.execute(
            f"SELECT json_array({guarded}, 0.30000000000000004, 5e-324) FROM (SELECT ? AS V)",
            (0.0,),
        ).fetchall()
        return bool(text == "[0.0,0.30000000000000004,4.9406564584124654e-324]")
    except apsw.Error:  # no JSON or math functions
        return False
    finally:
        probe.close()


class SqliteSource(Source):
    dialect = SQLITE

    def __init__(
        self, path: str, pool_size: int = 1, json_threads: int = 2, mmap_mb: int = 0
    ) -> None:
        self.path = Path(path)
        self._mmap_bytes = mmap_mb * 1024 * 1024
        threads: dict[Lane, int] = {
            "read": pool_size,
            "json": json_threads,
            "count": 1,
            "control": 1,
        }
        self._lanes = {lane: ThreadPoolExecutor(n, f"sqlite-{lane}") for lane, n in threads.items()}
        # idle connections kept per lane, one per thread: a lane's connections stay its own,
        # so only the JSON lane's map the file (`_connect`)
        self._idle: dict[Lane, queue.SimpleQueue[apsw.Connection]] = {
            lane: queue.SimpleQueue() for lane in threads
        }
        self._keep = threads
        self.builds_json = builds_exact_json()
        self._statements: dict[str, Statement] = {}  # a statement's text -> as it runs

    def _connect(self, lane: Lane) -> apsw.Connection:
        if not self.path.exists():
            raise SourceUnavailable()
        conn = apsw.Connection(str(self.path), flags=apsw.SQLITE_OPEN_READONLY)
        conn.set_busy_timeout(5000)
        # The JSON lane reads the file through memory maps: a page reads thousands of
        # database pages at random (rows in time order, read in CID order), and a system
        # call and a copy for each took 20-45 % of the page (docs/benchmarks.md#memory-maps).
        # Only that lane's connections map it: RSS counts the mapped pages once per mapping
        # (the OS's shared file cache, not the process's own memory).
        mmap_bytes = self._mmap_bytes if lane == "json" else 0
        for pragma in (
            "PRAGMA query_only=1",
            f"PRAGMA mmap_size={int(mmap_bytes)}",
            "PRAGMA cache_size=-8192",
        ):
            conn.execute(pragma).fetchall()
        return conn

    def _borrow(self, lane: Lane) -> apsw.Connection:
        try:
            return self._idle[lane].get_nowait()
        except queue.Empty:
            return self._connect(lane)

    def _give_back(self, lane: Lane, conn: apsw.Connection) -> None:
        """Return a connection after its query, from the worker thread that ran it."""
        if self._idle[lane].qsize() < self._keep[lane]:
            self._idle[lane].put(conn)
        else:
            conn.close()

    def _statement(self, conn: apsw.Connection, sql: str, binds: Mapping[str, object]) -> Statement:
        """`sql` as it runs: its named parameters numbered (`numbered`), with their names
        in SQLite's order, as SQLite parsed them (an EXPLAIN QUERY PLAN of it: nothing
        runs); learnt once per statement text. Names None: an unnamed parameter (not in the
        service's SQL), bound as given."""
        known = self._statements.get(sql)
        if known is None:
            known = (sql, None)
            if binds:
                names = _parameters(conn, sql, binds)
                if all(names):
                    named = tuple(n for n in names if n is not None)
                    text = numbered(sql, named)
                    if text is None or _parameters(conn, text, [None] * len(named)) != tuple(
                        str(i + 1) for i in range(len(named))
                    ):
                        text = sql  # not as expected: bound by position all the same
                    known = (text, named)
            if len(self._statements) >= _STATEMENTS_KEPT:
                self._statements.clear()
            self._statements[sql] = known
        return known

    def _query(self, conn: apsw.Connection, sql: str, binds: Mapping[str, object]) -> list[Row]:
        text, names = self._statement(conn, sql, binds)
        if names is None:
            cur = conn.execute(text, binds)
        else:
            cur = conn.execute(text, [binds[name] for name in names])
        try:
            return cur.fetchall()
        finally:
            cur.close()

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        lent: list[apsw.Connection] = []  # the connection while its query runs
        guard = threading.Lock()  # an interrupt reaches this query, never the next one
        abandoned: list[bool] = []

        def work() -> list[Row]:
            if abandoned:  # its caller left while it was queued
                raise asyncio.CancelledError()
            conn = self._borrow_mapped(lane)
            with guard:
                lent.append(conn)
            sound = False
            try:
                # interrupt() is a no-op while a statement is still being prepared, so the
                # query also asks, every few thousand steps, whether its caller has left.
                conn.set_progress_handler(lambda: bool(abandoned), _STEPS_PER_CHECK)
                rows = self._query(conn, sql, binds)
                sound = True
                return rows
            except _REUSABLE:
                sound = True  # the query failed, not the connection
                raise
            finally:
                with guard:
                    lent.clear()
                # Back in the pool before this thread takes its next query: given back
                # later, on the event loop, the next query found the pool empty and opened
                # (and mapped) a connection of its own.
                if sound:
                    self._give_back(lane, conn)
                else:
                    conn.close()

        def settle(done: asyncio.Future[list[Row]]) -> None:
            if not done.cancelled():
                done.exception()  # marks the error as seen
            self.in_use -= 1

        self.in_use += 1  # counted on the event loop thread only
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(self._lanes[lane], work)
        task.add_done_callback(settle)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            abandoned.append(True)
            with guard:
                if lent:
                    lent[0].interrupt()  # stop the query now
                else:
                    task.cancel()  # still queued: it never runs
            raise
        except apsw.Error as exc:
            if "malformed JSON" in str(exc) or "JSON cannot hold" in str(exc):
                raise JsonUnsupported() from exc  # a BLOB, a -0.0: rows carry them
            log.warning("sqlite query failed: %s", exc)
            raise SourceUnavailable() from exc

    def _borrow_mapped(self, lane: Lane) -> apsw.Connection:
        try:
            return self._borrow(lane)
        except apsw.Error as exc:
            log.warning("sqlite connect failed: %s", exc)
            raise SourceUnavailable() from exc

    async def ping(self) -> None:
        await self.fetch("SELECT 1", {}, lane="control")

    async def close(self) -> None:
        for executor in self._lanes.values():
            executor.shutdown(wait=False, cancel_futures=True)
        for idle in self._idle.values():
            while True:
                try:
                    idle.get_nowait().close()
                except queue.Empty:
                    break
