"""The embedded job store: a SQLite file in the data directory (the default).

A single node needs no server, and jobs survive a restart. Writes are one transaction,
so a reader never sees half a job; expired jobs are purged as new ones are created.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from svc.errors import JobNotFound, StoreUnavailable
from svc.jobs import DomainStats, JobSpec, JobStore, codec

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trace_jobs (
    job_id TEXT PRIMARY KEY,
    spec BLOB NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_jobs_expiry ON trace_jobs (expires_at);
CREATE TABLE IF NOT EXISTS trace_job_stats (
    job_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    records INTEGER NOT NULL,
    containers INTEGER NOT NULL,
    PRIMARY KEY (job_id, domain)
);
"""


class EmbeddedJobStore(JobStore):
    def __init__(self, path: str | Path, *, ttl: float, refresh_on_access: bool = False) -> None:
        self.path = Path(path)
        self.ttl = ttl
        self.refresh_on_access = refresh_on_access
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise StoreUnavailable() from exc
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StoreUnavailable() from exc
            finally:
                conn.close()

        return await asyncio.to_thread(work)

    async def create(self, spec: JobSpec) -> None:
        blob = codec.dumps(spec)

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "DELETE FROM trace_job_stats WHERE job_id IN "
                    "(SELECT job_id FROM trace_jobs WHERE expires_at < ?)",
                    (time.time(),),
                )
                conn.execute("DELETE FROM trace_jobs WHERE expires_at < ?", (time.time(),))
                conn.execute(
                    "INSERT INTO trace_jobs (job_id, spec, expires_at) VALUES (?, ?, ?)",
                    (spec.job_id, blob, spec.expires_at),
                )

        await self._run(write)

    async def get(self, job_id: str) -> JobSpec:
        def read(conn: sqlite3.Connection) -> tuple[bytes, float] | None:
            now = time.time()
            row = conn.execute(
                "SELECT spec, expires_at FROM trace_jobs WHERE job_id = ? AND expires_at >= ?",
                (job_id, now),
            ).fetchone()
            if row is not None and self.refresh_on_access:
                conn.execute(
                    "UPDATE trace_jobs SET expires_at = ? WHERE job_id = ?",
                    (now + self.ttl, job_id),
                )
                return row[0], now + self.ttl
            return None if row is None else (row[0], row[1])

        found = await self._run(read)
        if found is None:
            raise JobNotFound()
        spec = codec.loads(found[0])
        spec.expires_at = found[1]
        return spec

    async def get_stats(self, job_id: str) -> dict[str, DomainStats]:
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT domain, records, containers FROM trace_job_stats WHERE job_id = ?",
                (job_id,),
            ).fetchall()
        )
        return {d: DomainStats(r, c) for d, r, c in rows}

    async def put_stats(self, job_id: str, domain: str, stats: DomainStats) -> None:
        await self._run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO trace_job_stats VALUES (?, ?, ?, ?)",
                (job_id, domain, stats.records, stats.containers),
            )
        )

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())
