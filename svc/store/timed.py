"""A job store whose every operation is timed and whose failures are counted (`svc.metrics`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from svc.core.export_record import ExportRecord
from svc.errors import ExportNotFound, JobNotFound, TooManyExports, TooManyRequests
from svc.metrics import STORE_ERRORS, STORE_SECONDS
from svc.protocol import DomainTotals
from svc.store import JobSpec, JobStore


@asynccontextmanager
async def _store_op(op: str) -> AsyncIterator[None]:
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        # a missing job or export is an answer, not a failure (so are the quotas)
        if not isinstance(exc, JobNotFound | ExportNotFound | TooManyExports | TooManyRequests):
            STORE_ERRORS.labels(op).inc()
        raise
    finally:
        STORE_SECONDS.labels(op).observe(time.perf_counter() - started)


class TimedStore(JobStore):
    """A job store whose every operation is timed and whose failures are counted."""

    def __init__(self, inner: JobStore) -> None:
        self.inner = inner
        for op in JobStore.__abstractmethods__:  # each operation's error series, at 0
            STORE_ERRORS.labels(op)

    async def create(
        self, spec: JobSpec, *, limit: int | None = None, quota_key: str | None = None
    ) -> None:
        async with _store_op("create"):
            await self.inner.create(spec, limit=limit, quota_key=quota_key)

    async def get(self, job_id: str) -> JobSpec:
        async with _store_op("get"):
            return await self.inner.get(job_id)

    async def get_totals(self, job_id: str) -> dict[str, DomainTotals]:
        async with _store_op("get_totals"):
            return await self.inner.get_totals(job_id)

    async def put_totals(self, job_id: str, domain: str, totals: DomainTotals) -> None:
        async with _store_op("put_totals"):
            await self.inner.put_totals(job_id, domain, totals)

    async def get_aggregations(self, job_id: str, domain: str) -> bytes | None:
        async with _store_op("get_aggregations"):
            return await self.inner.get_aggregations(job_id, domain)

    async def put_aggregations(self, job_id: str, domain: str, blob: bytes) -> None:
        async with _store_op("put_aggregations"):
            await self.inner.put_aggregations(job_id, domain, blob)

    async def ping(self) -> None:
        async with _store_op("ping"):
            await self.inner.ping()

    async def purge_expired(self) -> int:
        async with _store_op("purge_expired"):
            return await self.inner.purge_expired()

    async def create_export(
        self, export: ExportRecord, *, limit: int | None = None, quota_key: str | None = None
    ) -> None:
        async with _store_op("create_export"):
            await self.inner.create_export(export, limit=limit, quota_key=quota_key)

    async def get_export(self, export_id: str) -> ExportRecord:
        async with _store_op("get_export"):
            return await self.inner.get_export(export_id)

    async def save_export(self, export: ExportRecord) -> ExportRecord | None:
        async with _store_op("save_export"):
            return await self.inner.save_export(export)

    async def active_exports(self) -> list[ExportRecord]:
        async with _store_op("active_exports"):
            return await self.inner.active_exports()

    async def expired_exports(self, now: float) -> list[ExportRecord]:
        async with _store_op("expired_exports"):
            return await self.inner.expired_exports(now)

    async def delete_export(self, export_id: str) -> None:
        async with _store_op("delete_export"):
            await self.inner.delete_export(export_id)

    async def take_token(self, key: str, per_minute: float, burst: int) -> float | None:
        async with _store_op("take_token"):
            return await self.inner.take_token(key, per_minute, burst)

    async def hold_client_slot(self, client: str, limit: int, lease: float) -> str | None:
        async with _store_op("hold_client_slot"):
            return await self.inner.hold_client_slot(client, limit, lease)

    async def renew_client_slot(self, client: str, slot: str, lease: float) -> None:
        async with _store_op("renew_client_slot"):
            await self.inner.renew_client_slot(client, slot, lease)

    async def release_client_slot(self, client: str, slot: str) -> None:
        async with _store_op("release_client_slot"):
            await self.inner.release_client_slot(client, slot)

    async def close(self) -> None:
        await self.inner.close()
