"""The background writer of exports: queue, lease, checkpoints, resume, purge.

One `ExportRunner` per server process. `create` stores a queued export in the job store
and starts writing it here; at most TRACE_EXPORT_WORKERS exports are written at once,
the rest wait. Writing one export:

1. claim it: state `running` with this process's lease (`worker`, `lease_until`); a
   write of the record succeeds only with the version that was read (`save_export`), so
   two runners never write the same export;
2. read every domain by the stream's walk (`svc.engine.walk`) over its keyset reader, one
   batch (TRACE_STREAM_BATCH_SIZE records) at a time: memory is one batch and its encoding;
3. after each batch: the file is appended and fsynced, then the checkpoint (the batch's
   `since`, the file's length, the records per domain) is saved with the lease renewed;
4. once all domains are written: pack (csv.zip: zip the CSV files; xlsx, parquet: build
   the file from the staged rows), hash (SHA-256),
   checkpoint `publish`, move the finished file into storage (`os.replace`, or an S3
   upload), and only then mark the export `done`.

A process killed at any point leaves a checkpoint whose bytes are on disk. The lease is
short (TRACE_EXPORT_LEASE_SECONDS) and renewed every third of it while the writer lives,
also during a slow batch. At start and every third of the lease, the runner picks up
queued exports and running ones whose lease ran out or that are its own (its identity is
kept in the data directory: a restart after `kill -9`, even under a new hostname, resumes
at once), cuts the file back to the checkpoint (or starts over when the file is elsewhere)
and goes on from its `since`. So another replica finishes a dead one's export within about
4/3 of the lease. While a lease has run out, its status says `recovering`. On SIGTERM a
writer stops after its batch in flight and hands the export back as `queued`. A retryable
failure (the database or job store unavailable) also hands it back, to be tried again at
the next sweep; any other failure marks it `failed`.

Files of expired exports (their job's TTL) are deleted every TRACE_JOB_PURGE_SECONDS, then
their records. The disk budget counts every file under the exports directory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from svc import metrics, process
from svc import protocol as p
from svc.core import digest as records_digest
from svc.core.export_record import ACTIVE, Checkpoint, ExportRecord, new_export_id
from svc.engine.positions import start_at
from svc.engine.service import Service
from svc.engine.walk import DomainWalk, Drained
from svc.errors import ExportNotFound, ExportStorageFull, JobNotFound, TraceError
from svc.exports.files import disk_usage, file_digest, worker_identity
from svc.exports.formats import ExportWriter
from svc.exports.registry import check_request, writer_for
from svc.exports.storage import MEDIA_TYPES, Storage
from svc.store import JobSpec

log = logging.getLogger(__name__)
T = TypeVar("T")


def _objects_line_data(columns: tuple[str, ...]) -> Callable[[list[Any]], bytes]:
    """A batch of rows as an objects stream's records line holds them: what the job's
    records digest hashes (so the export records the digest its stream ends with)."""
    return lambda rows: p.encode(p.shape_records(rows, columns, arrays=False))


class _HandBack(Exception):
    """Stop writing and leave the export queued (draining, or a retryable failure)."""


class _LostLease(Exception):
    """Another runner owns the export now (or it was deleted): stop without writing."""


class ExportRunner:
    def __init__(self, service: Service, storage: Storage) -> None:
        settings = service.settings
        self.service = service
        self.store = service.store
        self.storage = storage
        self.root = settings.exports_path
        self.work = self.root / ".work"  # temporary files; the finished ones are moved out
        self.work.mkdir(parents=True, exist_ok=True)
        self.worker = worker_identity(settings.data_dir, process.worker_slot)
        self.lease = float(settings.export_lease_seconds)
        self.budget = settings.export_disk_budget_mb * 1024 * 1024
        self.sweep_seconds = settings.job_purge_seconds
        self._slots = asyncio.Semaphore(settings.export_workers)
        self._pool = ThreadPoolExecutor(settings.export_workers + 1, "export-file")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._saving: dict[str, asyncio.Lock] = {}  # one record write at a time per export

    async def _io(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # --- the API's side ------------------------------------------------------------------

    async def create(
        self,
        spec: JobSpec,
        fmt: p.ExportFormat,
        domain: str | None = None,
        *,
        spreadsheet: bool = True,
        quota_key: str | None = None,
    ) -> ExportRecord:
        """Store a queued export of `spec` (of its `domain` only, if given) and start
        writing it (when a slot is free). `quota_key`: whom TRACE_EXPORTS_PER_KEY counts
        (default the job's owner)."""
        check_request(fmt, domain, spec.domains)
        await self._check_budget()
        now = time.time()
        names = [domain] if domain is not None else spec.domains
        totals = await self.store.get_totals(spec.job_id)
        known = all(d in totals for d in names)
        record = ExportRecord(
            export_id=new_export_id(),
            job_id=spec.job_id,
            owner=spec.owner,
            format=fmt,
            state="queued",
            created_at=now,
            updated_at=now,
            expires_at=spec.expires_at,
            checkpoint=Checkpoint(records=[0] * len(names), digest=records_digest.START.hex()),
            total=sum(totals[d].records for d in names) if known else None,
            domain=domain,
            spreadsheet=spreadsheet,
        )
        limit = self.service.settings.exports_per_key
        await self.store.create_export(record, limit=limit, quota_key=quota_key)
        metrics.export_started(fmt)
        self.submit(record.export_id)
        return record

    async def get(self, spec: JobSpec, export_id: str) -> ExportRecord:
        """The export `export_id` of the job `spec` (the caller checked the job's owner)."""
        record = await self.store.get_export(export_id)
        if record.job_id != spec.job_id:
            raise ExportNotFound()
        return record

    async def _check_budget(self) -> None:
        used = await self._io(disk_usage, self.root)
        if used >= self.budget:
            raise ExportStorageFull(
                f"export files take {used // 2**20} MiB of the "
                f"{self.budget // 2**20} MiB budget; wait for older exports to expire"
            )

    # --- running ---------------------------------------------------------------------

    def submit(self, export_id: str) -> None:
        if export_id in self._tasks:
            return
        task = asyncio.ensure_future(self._run(export_id))
        self._tasks[export_id] = task
        task.add_done_callback(lambda done: self._tasks.pop(export_id, None))

    async def run_forever(self) -> None:
        """Pick up interrupted and queued exports now and every third of the lease, purge
        expired ones every `sweep_seconds`, until cancelled (the app's lifespan runs this)."""
        purged = float("-inf")
        while True:
            purge = time.monotonic() - purged >= self.sweep_seconds
            try:
                await self.sweep(purge=purge)
                if purge:
                    purged = time.monotonic()
            except Exception as exc:  # a store outage: next time
                log.warning("export sweep failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.lease / 3)

    async def sweep(self, *, purge: bool = True) -> None:
        if purge:
            await self._purge()
        if self.service.draining.is_set():
            return
        now = time.time()
        for record in await self.store.active_exports():
            if record.state == "queued" or record.worker == self.worker:
                self.submit(record.export_id)
            elif record.lease_until < now:  # its runner died
                self.submit(record.export_id)

    async def _purge(self) -> None:
        for record in await self.store.expired_exports(time.time()):
            task = self._tasks.get(record.export_id)
            if task is not None:  # its writer stops before its files go
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await self.storage.delete(record.file_name)
            await self._io(self._writer(record).remove)
            await self.store.delete_export(record.export_id)
            log.info("export %s expired with its job; file deleted", record.export_id)

    async def stop(self) -> None:
        """Stop every writer; each hands its export back (queued) at its checkpoint."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _writer(self, record: ExportRecord, spec: JobSpec | None = None) -> ExportWriter:
        """The writer of `record`'s files (without `spec`: to remove them). Zip entries are
        dated with the job's creation, so every export of a job is the same file."""
        names = record.domains_of(spec.domains) if spec is not None else []
        stamp = spec.created_at if spec is not None else record.created_at
        # the domains as the job reads them: its selected columns (svc.core.select)
        domains = [self.service.domain(spec, d) for d in names] if spec else []
        return writer_for(
            record.format, self.work, record.export_id, domains, stamp, record.spreadsheet
        )

    async def _save(self, record: ExportRecord) -> None:
        """Store `record` (renewing the lease while running); its version moves on. The
        writer and its lease renewal take turns, so neither sees the other's version."""
        lock = self._saving.setdefault(record.export_id, asyncio.Lock())
        async with lock:
            now = time.time()
            record.updated_at = now
            if record.state == "running":
                record.lease_until = now + self.lease
            saved = await self.store.save_export(record)
            if saved is None:
                raise _LostLease()
            record.version = saved.version

    async def _renew(self, record: ExportRecord) -> None:
        """Renew the lease every third of it while the writer lives (a batch may be slow);
        a store outage is retried at the next turn, a lost lease ends the renewal."""
        while True:
            await asyncio.sleep(self.lease / 3)
            if record.state != "running":
                return
            try:
                await self._save(record)
            except _LostLease:
                return
            except Exception as exc:
                log.warning("export %s: lease not renewed: %s", record.export_id, exc)

    async def _claim(self, export_id: str) -> ExportRecord | None:
        try:
            record = await self.store.get_export(export_id)
        except ExportNotFound:
            return None
        now = time.time()
        if record.state not in ACTIVE:
            return None
        if record.state == "running" and record.worker != self.worker and record.lease_until > now:
            return None  # another runner is on it
        record.state = "running"
        record.worker = self.worker
        record.attempts += 1
        try:
            await self._save(record)
        except _LostLease:
            return None
        return record

    async def _run(self, export_id: str) -> None:
        async with self._slots:
            if self.service.draining.is_set():
                return
            record = await self._claim(export_id)
            if record is None:
                return
            log.info("export %s: writing (attempt %d)", export_id, record.attempts)
            renewal = asyncio.ensure_future(self._renew(record))
            try:
                await self._write(record)
            except _LostLease:
                log.info("export %s: taken over by another runner", export_id)
            except (_HandBack, asyncio.CancelledError) as exc:
                await asyncio.shield(self._hand_back(record))
                if isinstance(exc, asyncio.CancelledError):
                    raise
            except TraceError as exc:
                if exc.retryable:
                    log.warning("export %s: %s; retried later", export_id, exc.code)
                    await asyncio.shield(self._hand_back(record))
                else:
                    await self._fail(record, exc.code, exc.detail)
            except Exception:
                log.exception("export %s failed", export_id)
                await self._fail(record, "internal", "Internal error")
            finally:
                renewal.cancel()
                self._saving.pop(export_id, None)

    async def _hand_back(self, record: ExportRecord) -> None:
        record.state, record.worker, record.lease_until = "queued", None, 0.0
        try:
            await self._save(record)
            log.info("export %s: handed back at %d records", record.export_id, record.records)
        except Exception as exc:  # the lease runs out by itself
            log.info("export %s: not handed back: %s", record.export_id, type(exc).__name__)

    async def _fail(self, record: ExportRecord, code: str, detail: str) -> None:
        log.warning("export %s failed: %s", record.export_id, code)
        record.state, record.worker, record.lease_until = "failed", None, 0.0
        record.error_code, record.error = code, detail
        metrics.export_finished(record.format, "failed", record.created_at, None)
        try:
            await self._save(record)
        except Exception as exc:
            log.warning("export %s: failure not recorded: %s", record.export_id, exc)
        await self._io(self._writer(record).remove)

    # --- writing ---------------------------------------------------------------------

    async def _write(self, record: ExportRecord) -> None:
        service = self.service
        try:
            spec = await service.job(record.job_id, record.owner)
        except JobNotFound:
            raise JobNotFound("the export's job expired") from None
        writer = self._writer(record, spec)
        if record.total is None:
            totals = [await service.totals(spec, d) for d in record.domains_of(spec.domains)]
            record.total = sum(t.records for t in totals)
        if record.checkpoint.stage == "publish":
            if await self.storage.exists(record.file_name):
                return await self._done(record, writer)
            if not writer.finished.exists():
                self._start_over(record, writer)
        if record.checkpoint.stage == "pack":
            try:
                await self._pack(record, writer)
            except FileNotFoundError:
                self._start_over(record, writer)
        if record.checkpoint.stage == "write":
            cp = record.checkpoint
            if not await self._io(writer.resume, cp.domain, cp.bytes):
                self._start_over(record, writer)
                await self._io(writer.resume, 0, 0)
            await self._write_domains(record, spec, writer)
            await self._pack(record, writer)
        await self.storage.publish(
            writer.finished, record.file_name, record.download_name, MEDIA_TYPES[record.format]
        )
        await self._done(record, writer)

    def _start_over(self, record: ExportRecord, writer: ExportWriter) -> None:
        log.warning("export %s: its files are gone; starting over", record.export_id)
        writer.remove()
        record.checkpoint = Checkpoint(
            records=[0] * len(writer.domains), digest=records_digest.START.hex()
        )
        record.size = record.sha256 = record.digest = None

    async def _write_domains(
        self, record: ExportRecord, spec: JobSpec, writer: ExportWriter
    ) -> None:
        service, cp = self.service, record.checkpoint
        names = record.domains_of(spec.domains)
        if cp.bytes == 0:  # nothing written yet (a CSV file always starts with its header)
            cp.bytes = await self._io(writer.begin, cp.domain)
        for index in range(cp.domain, len(names)):
            name = names[index]
            if index > cp.domain:  # the previous domain is complete
                begun = await self._io(writer.begin, index)
                # all at once: a lease renewal may save the checkpoint at any await
                cp.domain, cp.since, cp.bytes = index, None, begun
                await self._save(record)
            start = start_at(name, service.cursor(spec, cp.since))
            if cp.since is None:  # a domain's start: the chain goes on from the last domain's
                start = replace(
                    start, chain=None if cp.digest is None else bytes.fromhex(cp.digest)
                )
            if service.draining.is_set():  # everything so far is checkpointed
                raise _HandBack()
            rows = await service.file_rows(spec, start)
            columns = service.domain(spec, name).columns  # as the job reads it (select)
            walk = DomainWalk(service, spec, start, rows, encode=_objects_line_data(columns))
            try:
                async for batch in walk:
                    if not batch.data:
                        continue
                    cp.bytes = await self._io(writer.append, index, batch.data)
                    cp.records[index] += len(batch.data)
                    cp.since = batch.since
                    cp.digest = None if walk.chain is None else walk.chain.hex()
                    del batch  # memory: one batch
                    await self._check_budget()
                    await self._save(record)
            except Drained:  # ... and so is everything now
                raise _HandBack() from None
        cp.stage = "pack"
        record.digest = cp.digest
        await self._save(record)

    async def _pack(self, record: ExportRecord, writer: ExportWriter) -> None:
        await self._io(writer.pack)
        record.size, record.sha256 = await self._io(file_digest, writer.finished)
        record.checkpoint.stage = "publish"
        await self._save(record)

    async def _done(self, record: ExportRecord, writer: ExportWriter) -> None:
        record.state, record.worker, record.lease_until = "done", None, 0.0
        await self._save(record)
        await self._io(writer.remove)
        metrics.export_finished(record.format, "done", record.created_at, record.size)
        log.info("export %s: done, %s bytes", record.export_id, record.size)
