"""The SQLite source: the embedded demo database, read-only, off the event loop.

Connections are pooled and lent to one worker thread per query; none is held between
pages. Each lane has its own threads: `pool_size` for reads (one by default), one for
counting, one for readiness and the demo, so none waits behind another's queue.

One reading thread, not four: the sqlite3 module releases the interpreter lock for each
step of a query and takes it back to build each row, so reading threads running at once
queue on that lock at every row. Four concurrent streams of the demo ran at 67-83k records/s
in all with four reading threads, and at 191-193k with one (`TRACE_SQLITE_READ_THREADS`;
docs/benchmarks.md). Pages are short (a 5000-record page takes ~20 ms), so one thread also
keeps their order fair. A cancelled query (the
client went away) is interrupted in the database, or dropped if it was still queued.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from svc.errors import SourceUnavailable
from svc.keyset import SQLITE
from svc.sources import Lane, Row, Source

log = logging.getLogger(__name__)


_STEPS_PER_CHECK = 20_000  # ~0.2 ms of a query between checks


class SqliteSource(Source):
    dialect = SQLITE

    def __init__(self, path: str, pool_size: int = 1) -> None:
        self.path = Path(path)
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._keep = pool_size + 2  # idle connections kept: one per thread of every lane
        self._lanes: dict[Lane, ThreadPoolExecutor] = {
            "read": ThreadPoolExecutor(pool_size, "sqlite-read"),
            "count": ThreadPoolExecutor(1, "sqlite-count"),
            "control": ThreadPoolExecutor(1, "sqlite-control"),
        }

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise SourceUnavailable()
        conn = sqlite3.connect(
            f"file:{self.path}?mode=ro", uri=True, check_same_thread=False, timeout=5.0
        )
        conn.execute("PRAGMA query_only=1")
        # No mmap: each pooled connection would map the whole file again, and RSS would
        # count every mapping. Reads go through a bounded page cache instead.
        conn.execute("PRAGMA mmap_size=0")
        conn.execute("PRAGMA cache_size=-8192")
        return conn

    def _borrow(self) -> sqlite3.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._connect()

    def _give_back(self, conn: sqlite3.Connection) -> None:
        """Return a connection after a query (called on the event loop thread)."""
        self.in_use -= 1
        if self._idle.qsize() < self._keep:
            self._idle.put(conn)
        else:
            conn.close()

    def _query(self, conn: sqlite3.Connection, sql: str, binds: Mapping[str, object]) -> list[Row]:
        cur = conn.execute(sql, binds)
        try:
            return cur.fetchall()
        finally:
            cur.close()

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        lent: list[sqlite3.Connection] = []
        abandoned: list[bool] = []

        def work() -> list[Row]:
            if abandoned:  # its caller left while it was queued
                raise asyncio.CancelledError()
            conn = self._borrow_mapped()
            lent.append(conn)
            # interrupt() is a no-op while a statement is still being prepared, so the
            # query also asks, every few thousand steps, whether its caller has left.
            conn.set_progress_handler(lambda: 1 if abandoned else 0, _STEPS_PER_CHECK)
            return self._query(conn, sql, binds)

        def settle(done: asyncio.Future[list[Row]]) -> None:
            """Return or drop the connection once the worker thread is done with it."""
            exc = None if done.cancelled() else done.exception()  # marks the error as seen
            if not lent:
                self.in_use -= 1
            elif exc is not None and not isinstance(exc, sqlite3.OperationalError):
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
        except sqlite3.Error as exc:
            log.warning("sqlite query failed: %s", exc)
            raise SourceUnavailable() from exc

    def _borrow_mapped(self) -> sqlite3.Connection:
        try:
            return self._borrow()
        except sqlite3.Error as exc:
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
