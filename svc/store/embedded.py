"""The embedded job store: a SQLite file in the data directory (the default).

A single node needs no server, and jobs survive a restart. Writes are one transaction,
so a reader never sees half a job. Expired jobs are deleted by `purge_expired` (run
periodically by the app), and the file gives their space back: it is kept in
``auto_vacuum=INCREMENTAL`` mode (a file made by an older version is converted once, by
a VACUUM at start-up) and each purge ends with ``PRAGMA incremental_vacuum`` and a WAL
checkpoint that truncates the log.

SQLite calls block, so they run in the store's own small thread pool, never in the
default one that the source and counting use: a busy source cannot delay job lookups or
/readyz, and many job creations cannot delay the source.

Several processes (`serve --workers N`) share the file safely: WAL lets readers run beside
the one writer, every write is one `BEGIN IMMEDIATE` transaction, and a writer waits for
another up to the 5 s busy timeout. Each worker runs the periodic purge, but one at a time
purges: a purge holds an exclusive `flock` on `jobs.sqlite3.purge-lock` for its length,
and a process that finds it taken skips its turn (the lock dies with its holder).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import TypeVar

import msgspec

from svc.core import export_record as exports
from svc.core.export_record import ExportRecord
from svc.errors import ExportNotFound, JobNotFound, StoreUnavailable, TooManyExports, TooManyJobs
from svc.protocol import DomainTotals
from svc.store import JobSpec, JobStore, codec
from svc.store.spec_cache import SpecCache

T = TypeVar("T")

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trace_jobs (
    job_id TEXT PRIMARY KEY,
    spec BLOB NOT NULL,
    expires_at REAL NOT NULL,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS trace_jobs_expiry ON trace_jobs (expires_at);
CREATE TABLE IF NOT EXISTS trace_job_totals (
    job_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    records INTEGER NOT NULL,
    containers INTEGER NOT NULL,
    PRIMARY KEY (job_id, domain)
);
CREATE TABLE IF NOT EXISTS trace_exports (
    export_id TEXT PRIMARY KEY,
    owner TEXT,
    state TEXT NOT NULL,
    expires_at REAL NOT NULL,
    version INTEGER NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_exports_active ON trace_exports (state, owner);
CREATE INDEX IF NOT EXISTS trace_exports_expiry ON trace_exports (expires_at);
CREATE TABLE IF NOT EXISTS trace_job_aggregations (
    job_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, domain)
);
"""
_AUTO_VACUUM_INCREMENTAL = 2
_PURGE_BATCH = 200  # jobs deleted per transaction, so creations interleave with a purge
POOL_THREADS = 2


class EmbeddedJobStore(JobStore):
    def __init__(
        self,
        path: str | Path,
        *,
        ttl: float,
        refresh_on_access: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock`: wall-clock seconds, for every expiry decision (tests pass a fake one
        instead of sleeping past a TTL)."""
        self.path = Path(path)
        self.ttl = ttl
        self.refresh_on_access = refresh_on_access
        self.clock = clock
        self._cache = SpecCache(clock=clock)
        self._pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="job-store")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[sqlite3.Connection] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn:
            _prepare(conn, self.path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _thread_connection(self) -> sqlite3.Connection:
        """This pool thread's connection, kept open (closing the last connection to a WAL
        database checkpoints it: tens of ms a write), but opened again when the file was
        replaced or removed, so a damaged store is noticed."""
        try:
            st = os.stat(self.path)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            ident = None
        held: tuple[sqlite3.Connection, tuple[int, int] | None] | None
        held = getattr(self._local, "held", None)
        if held is not None:
            if held[1] == ident and ident is not None:
                conn: sqlite3.Connection = held[0]
                return conn
            self._drop_thread_connection()
        conn = self._connect()
        self._local.held = (conn, ident)
        with self._lock:
            self._open.add(conn)
        return conn

    def _drop_thread_connection(self) -> None:
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            with self._lock:
                self._open.discard(held[0])
            held[0].close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            try:
                return fn(self._thread_connection())
            except sqlite3.Error as exc:
                self._drop_thread_connection()
                raise StoreUnavailable() from exc

        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def create(
        self, spec: JobSpec, *, limit: int | None = None, quota_key: str | None = None
    ) -> None:
        counted = quota_key or spec.owner  # the `owner` column is what the quota counts

        def write(conn: sqlite3.Connection) -> None:
            blob = codec.dumps(spec)  # in the worker thread: tens of ms for a large job
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # the count and the insert are one step
                if limit is not None:
                    now = self.clock()
                    live, oldest = conn.execute(
                        "SELECT COUNT(*), MIN(expires_at) FROM trace_jobs "
                        "WHERE owner IS ? AND expires_at >= ?",
                        (counted, now),
                    ).fetchone()
                    if live >= limit:
                        raise TooManyJobs(
                            f"at most {limit} live jobs; the oldest expires in "
                            f"{max(1, round(oldest - now))} s",
                            retry_after=oldest - now,
                        )
                conn.execute(
                    "INSERT INTO trace_jobs (job_id, spec, expires_at, owner) VALUES (?, ?, ?, ?)",
                    (spec.job_id, blob, spec.expires_at, counted),
                )

        await self._run(write)
        self._cache.remember(msgspec.structs.replace(spec))

    async def get(self, job_id: str) -> JobSpec:
        cached = self._cache.get(job_id)

        def read(conn: sqlite3.Connection) -> tuple[bytes | None, float] | None:
            now = self.clock()
            column = "NULL" if cached is not None else "spec"  # a cached spec is not re-read
            row = conn.execute(
                f"SELECT {column}, expires_at FROM trace_jobs WHERE job_id = ? AND expires_at >= ?",
                (job_id, now),
            ).fetchone()
            if row is not None and self.refresh_on_access:
                expires = now + self.ttl
                conn.execute(
                    "UPDATE trace_jobs SET expires_at = ? WHERE job_id = ?", (expires, job_id)
                )
                return row[0], expires
            return None if row is None else (row[0], row[1])

        found = await self._run(read)
        if found is None:
            self._cache.evict(job_id)
            raise JobNotFound()
        blob, expires_at = found
        if cached is None:
            assert blob is not None
            loop = asyncio.get_running_loop()
            cached = self._cache.remember(await loop.run_in_executor(self._pool, codec.loads, blob))
        return msgspec.structs.replace(cached.spec, expires_at=expires_at)

    async def get_totals(self, job_id: str) -> dict[str, DomainTotals]:
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT domain, records, containers FROM trace_job_totals WHERE job_id = ?",
                (job_id,),
            ).fetchall()
        )
        return {d: DomainTotals(r, c) for d, r, c in rows}

    async def put_totals(self, job_id: str, domain: str, totals: DomainTotals) -> None:
        # Only for a live job: a count that ends after its job expired leaves no orphan.
        await self._run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO trace_job_totals SELECT ?, ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM trace_jobs WHERE job_id = ? AND expires_at >= ?)",
                (job_id, domain, totals.records, totals.containers, job_id, self.clock()),
            )
        )

    async def get_aggregations(self, job_id: str, domain: str) -> bytes | None:
        row = await self._run(
            lambda conn: conn.execute(
                "SELECT data FROM trace_job_aggregations WHERE job_id = ? AND domain = ?",
                (job_id, domain),
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    async def put_aggregations(self, job_id: str, domain: str, blob: bytes) -> None:
        await self._run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO trace_job_aggregations SELECT ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM trace_jobs WHERE job_id = ? AND expires_at >= ?)",
                (job_id, domain, blob, job_id, self.clock()),
            )
        )

    async def purge_expired(self) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            lock_path = self.path.with_name(self.path.name + ".purge-lock")
            with open(lock_path, "a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return 0  # another process is purging right now
                return purge_locked(conn)  # the lock goes with the file's closing

        def purge_locked(conn: sqlite3.Connection) -> int:
            purged = 0
            while True:
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    deleted = conn.execute(
                        "DELETE FROM trace_jobs WHERE job_id IN (SELECT job_id FROM trace_jobs "
                        "WHERE expires_at < ? LIMIT ?)",
                        (self.clock(), _PURGE_BATCH),
                    ).rowcount
                    for table in ("trace_job_totals", "trace_job_aggregations"):
                        conn.execute(
                            f"DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM "
                            f"trace_jobs j WHERE j.job_id = {table}.job_id)"
                        )
                purged += deleted
                if deleted < _PURGE_BATCH:
                    break
            if conn.execute("PRAGMA freelist_count").fetchone()[0]:
                # executescript steps the pragma to its end (execute frees one page only)
                conn.executescript("PRAGMA incremental_vacuum;")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            return purged

        return await self._run(purge)

    # --- exports (a table of their own; added to older files by CREATE IF NOT EXISTS) ---

    async def create_export(
        self, export: ExportRecord, *, limit: int | None = None, quota_key: str | None = None
    ) -> None:
        counted = quota_key or export.owner  # the `owner` column is what the quota counts

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # the count and the insert are one step
                if limit is not None:
                    (active,) = conn.execute(
                        "SELECT COUNT(*) FROM trace_exports WHERE owner IS ? AND state IN "
                        "('queued', 'running') AND expires_at >= ?",
                        (counted, self.clock()),
                    ).fetchone()
                    if active >= limit:
                        raise TooManyExports(
                            f"at most {limit} exports queued or running at once", retry_after=5
                        )
                conn.execute(
                    "INSERT INTO trace_exports VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        export.export_id,
                        counted,
                        export.state,
                        export.expires_at,
                        export.version,
                        exports.dumps(export),
                    ),
                )

        await self._run(write)

    async def get_export(self, export_id: str) -> ExportRecord:
        row = await self._run(
            lambda conn: conn.execute(
                "SELECT record FROM trace_exports WHERE export_id = ? AND expires_at >= ?",
                (export_id, self.clock()),
            ).fetchone()
        )
        if row is None:
            raise ExportNotFound()
        return exports.loads(row[0])

    async def save_export(self, export: ExportRecord) -> ExportRecord | None:
        saved = msgspec.structs.replace(export, version=export.version + 1)
        changed = await self._run(
            lambda conn: (
                conn.execute(
                    "UPDATE trace_exports SET state = ?, version = ?, record = ? "
                    "WHERE export_id = ? AND version = ?",
                    (
                        saved.state,
                        saved.version,
                        exports.dumps(saved),
                        export.export_id,
                        export.version,
                    ),
                ).rowcount
            )
        )
        return saved if changed else None

    async def active_exports(self) -> list[ExportRecord]:
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT record FROM trace_exports WHERE state IN ('queued', 'running') "
                "AND expires_at >= ?",
                (self.clock(),),
            ).fetchall()
        )
        return sorted((exports.loads(r[0]) for r in rows), key=lambda e: e.created_at)

    async def expired_exports(self, now: float) -> list[ExportRecord]:
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT record FROM trace_exports WHERE expires_at < ?", (now,)
            ).fetchall()
        )
        return [exports.loads(r[0]) for r in rows]

    async def delete_export(self, export_id: str) -> None:
        await self._run(
            lambda conn: conn.execute("DELETE FROM trace_exports WHERE export_id = ?", (export_id,))
        )

    async def ping(self) -> None:
        # Reads the schema, unlike SELECT 1: a damaged or missing store file fails here.
        await self._run(lambda conn: conn.execute("SELECT 1 FROM trace_jobs LIMIT 1").fetchall())

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in incremental auto-vacuum mode; upgrade an older file."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _AUTO_VACUUM_INCREMENTAL:
        made = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        if made:  # a file of an older version: rewritten once, in the new mode
            log.warning("converting the job store %s to incremental auto-vacuum (once)", path)
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")  # needed even for a new file once it is in WAL mode
    conn.executescript(_SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(trace_jobs)")}
    if "owner" not in columns:  # older files: jobs made before count as anonymous
        conn.execute("ALTER TABLE trace_jobs ADD COLUMN owner TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS trace_jobs_owner ON trace_jobs (owner, expires_at)")
