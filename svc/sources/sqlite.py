"""The SQLite source: the embedded demo database, read-only, off the event loop.

Connections are pooled and lent to one worker thread per query; none is held between
pages. Each lane has its own threads: `pool_size` for row pages (one by default),
`json_threads` for pages the database builds as JSON (two), one for counting, one for
readiness and the demo, so none waits behind another's queue.

The driver is APSW, not the standard library's sqlite3 module: it bundles a current
SQLite, whose JSON functions write REALs exactly (17 significant digits where needed; the
system's SQLite 3.40 rounds them to 15), and it hands rows over faster. `builds_json` says
whether this engine can build pages (`svc.engine.json_batches`): it is probed, not assumed.

Parameters are bound by position, in the order SQLite numbered the statement's names
(learnt once per statement text): APSW binding a page's 1003 names from a dict took ~3 ms a
query, 10-15 % of a 5000-row page (docs/benchmarks.md#rows-path-against-the-plain-loop).

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
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw

from svc.core.sql.dialects import SQLITE
from svc.core.sql.pages import json_value_guard
from svc.errors import SourceUnavailable
from svc.sources import JsonUnsupported, Lane, Row, Source

log = logging.getLogger(__name__)


# A short slice of a query between checks for a client gone away; checking costs nothing
# measurable (docs/benchmarks.md#page-sql-and-sources).
_STEPS_PER_CHECK = 20_000

# Statements whose parameter names are kept (`SqliteSource._bind_names`): every page,
# count and aggregate statement of the domains in use, a few per domain and filter shape.
_NAMES_KEPT = 256
Names = tuple[str | None, ...]

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
        self._idle: queue.SimpleQueue[apsw.Connection] = queue.SimpleQueue()
        # idle connections kept: one per thread of every lane
        self._keep = pool_size + json_threads + 2
        self._lanes: dict[Lane, ThreadPoolExecutor] = {
            "read": ThreadPoolExecutor(pool_size, "sqlite-read"),
            "json": ThreadPoolExecutor(json_threads, "sqlite-json"),
            "count": ThreadPoolExecutor(1, "sqlite-count"),
            "control": ThreadPoolExecutor(1, "sqlite-control"),
        }
        self.builds_json = builds_exact_json()
        self._names: dict[str, Names] = {}  # statement text -> its parameters' names

    def _connect(self) -> apsw.Connection:
        if not self.path.exists():
            raise SourceUnavailable()
        conn = apsw.Connection(str(self.path), flags=apsw.SQLITE_OPEN_READONLY)
        conn.set_busy_timeout(5000)
        for pragma in (
            "PRAGMA query_only=1",
            # No mmap by default: each pooled connection maps the file again, and RSS
            # counts every mapping's pages (shared file cache, but RSS all the same).
            # Reads go through a bounded page cache instead, one system call a page.
            f"PRAGMA mmap_size={int(self._mmap_bytes)}",
            "PRAGMA cache_size=-8192",
        ):
            conn.execute(pragma).fetchall()
        return conn

    def _borrow(self) -> apsw.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._connect()

    def _give_back(self, conn: apsw.Connection) -> None:
        """Return a connection after a query (called on the event loop thread)."""
        self.in_use -= 1
        if self._idle.qsize() < self._keep:
            self._idle.put(conn)
        else:
            conn.close()

    def _bind_names(self, conn: apsw.Connection, sql: str, binds: Mapping[str, object]) -> Names:
        """The names of `sql`'s parameters in SQLite's order, as SQLite parsed them (from
        an EXPLAIN QUERY PLAN of it: nothing runs), learnt once per statement text."""
        names = self._names.get(sql)
        if names is None:
            cur = conn.execute(sql, binds, explain=2)
            try:
                names = cur.bindings_names
            finally:
                cur.close()
            if len(self._names) >= _NAMES_KEPT:
                self._names.clear()
            self._names[sql] = names
        return names

    def _query(self, conn: apsw.Connection, sql: str, binds: Mapping[str, object]) -> list[Row]:
        names = self._bind_names(conn, sql, binds) if binds else ()
        if all(names):  # bound by position: a dict of 1000 CIDs took ~3 ms a query by name
            cur = conn.execute(sql, [binds[name] for name in names])  # type: ignore[index]
        else:  # an unnamed parameter (not in the service's SQL): as given
            cur = conn.execute(sql, binds)
        try:
            return cur.fetchall()
        finally:
            cur.close()

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        lent: list[apsw.Connection] = []
        abandoned: list[bool] = []

        def work() -> list[Row]:
            if abandoned:  # its caller left while it was queued
                raise asyncio.CancelledError()
            conn = self._borrow_mapped()
            lent.append(conn)
            # interrupt() is a no-op while a statement is still being prepared, so the
            # query also asks, every few thousand steps, whether its caller has left.
            conn.set_progress_handler(lambda: bool(abandoned), _STEPS_PER_CHECK)
            return self._query(conn, sql, binds)

        def settle(done: asyncio.Future[list[Row]]) -> None:
            """Return or drop the connection once the worker thread is done with it."""
            exc = None if done.cancelled() else done.exception()  # marks the error as seen
            if not lent:
                self.in_use -= 1
            elif exc is not None and not isinstance(exc, _REUSABLE):
                self.in_use -= 1
                lent[0].close()
            else:
                self._give_back(lent[0])

        self.in_use += 1  # counted on the event loop thread only
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(self._lanes[lane], work)
        task.add_done_callback(settle)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            abandoned.append(True)
            if lent:
                lent[0].interrupt()  # stop the query now; settle() returns the connection
            else:
                task.cancel()  # still queued: it never runs
            raise
        except apsw.Error as exc:
            if "malformed JSON" in str(exc) or "JSON cannot hold" in str(exc):
                raise JsonUnsupported() from exc  # a BLOB, a -0.0: rows carry them
            log.warning("sqlite query failed: %s", exc)
            raise SourceUnavailable() from exc

    def _borrow_mapped(self) -> apsw.Connection:
        try:
            return self._borrow()
        except apsw.Error as exc:
            log.warning("sqlite connect failed: %s", exc)
            raise SourceUnavailable() from exc

    async def ping(self) -> None:
        await self.fetch("SELECT 1", {}, lane="control")

    async def close(self) -> None:
        for executor in self._lanes.values():
            executor.shutdown(wait=False, cancel_futures=True)
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
