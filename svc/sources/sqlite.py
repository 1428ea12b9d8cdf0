"""The SQLite source: the embedded demo database, read-only, off the event loop.

Connections are pooled and lent to one worker thread per query; none is held between
pages. A cancelled query (the client went away) is interrupted in the database.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svc.errors import SourceUnavailable
from svc.keyset import SQLITE
from svc.sources import Row, Source

log = logging.getLogger(__name__)


class SqliteSource(Source):
    dialect = SQLITE

    def __init__(self, path: str, pool_size: int = 4, **_: Any) -> None:
        self.path = Path(path)
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._pool_size = pool_size

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
        if self._idle.qsize() < self._pool_size:
            self._idle.put(conn)
        else:
            conn.close()

    def _query(self, conn: sqlite3.Connection, sql: str, binds: Mapping[str, object]) -> list[Row]:
        cur = conn.execute(sql, binds)
        try:
            return cur.fetchall()
        finally:
            cur.close()

    async def fetch(self, sql: str, binds: Mapping[str, object]) -> list[Row]:
        lent: list[sqlite3.Connection] = []

        def work() -> list[Row]:
            lent.append(self._borrow_mapped())
            return self._query(lent[0], sql, binds)

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
        task = asyncio.ensure_future(asyncio.to_thread(work))
        task.add_done_callback(settle)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if lent:
                lent[0].interrupt()  # stop the query now; settle() returns the connection
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
        await self.fetch("SELECT 1", {})

    async def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
