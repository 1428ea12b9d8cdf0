"""Job stores: where saved queries (sorted CID lists and domains) live for their TTL.

`JobStore` is the interface; `EmbeddedJobStore` (a SQLite file in the data directory,
the default) and `RedisJobStore` (shared by replicas) implement it. A spec (CIDs,
domains, filters, columns) is immutable once created; only per-domain statistics (totals,
aggregations) are added later. Export records (`svc.core.export_record`) live here too, so every
replica sees an export's state.
"""

from __future__ import annotations

import abc
import secrets
import time

import msgspec

from svc.config import Settings
from svc.core.export_record import ExportRecord
from svc.protocol import DomainTotals, Select, Where


class JobSpec(msgspec.Struct):
    job_id: str
    cids: list[str]  # sorted, unique
    domains: list[str]
    created_at: float
    expires_at: float
    owner: str | None = None  # API key fingerprint, None when keys are off
    snapshot: int | None = None  # Oracle SCN the job reads AS OF
    where: Where | None = None  # filters per domain, canonical (svc.core.filters); None: none
    # columns per domain, canonical (svc.core.select); None: every column. Last, with a
    # default: specs stored before it decode as before (svc.store.codec).
    select: Select | None = None


def new_job_id() -> str:
    return secrets.token_urlsafe(16)


def new_spec(
    cids: list[str],
    domains: list[str],
    ttl: float,
    owner: str | None,
    snapshot: int | None,
    where: Where | None = None,
    select: Select | None = None,
) -> JobSpec:
    now = time.time()
    return JobSpec(
        job_id=new_job_id(),
        cids=sorted(set(cids)),
        domains=domains,
        created_at=now,
        expires_at=now + ttl,
        owner=owner,
        snapshot=snapshot,
        where=where,
        select=select,
    )


class JobStore(abc.ABC):
    """Stores job specs and their per-domain statistics with a TTL.

    Errors of the backing store are raised as `StoreUnavailable`; a missing or expired
    job as `JobNotFound`.
    """

    @abc.abstractmethod
    async def create(
        self, spec: JobSpec, *, limit: int | None = None, quota_key: str | None = None
    ) -> None:
        """Store `spec` atomically: a reader never sees half a job.

        With a `limit`, raise `TooManyJobs` (with the seconds until the owner's oldest
        live job expires) if `quota_key` (default `spec.owner`; with keys off the route
        passes the client's address) already holds `limit` live jobs; the check and the
        write are one atomic step, so concurrent creations never overshoot. Without a key
        all anonymous jobs (owner None) count together.
        """

    @abc.abstractmethod
    async def get(self, job_id: str) -> JobSpec: ...

    @abc.abstractmethod
    async def get_totals(self, job_id: str) -> dict[str, DomainTotals]: ...

    @abc.abstractmethod
    async def put_totals(self, job_id: str, domain: str, totals: DomainTotals) -> None:
        """Store a domain's totals; nothing is written for a missing or expired job."""

    @abc.abstractmethod
    async def get_aggregations(self, job_id: str, domain: str) -> bytes | None:
        """A domain's stored aggregations, or None
        (`svc.core.aggregates.merging.encode_aggregations`)."""

    @abc.abstractmethod
    async def put_aggregations(self, job_id: str, domain: str, blob: bytes) -> None:
        """Store a domain's aggregations; nothing is written for a missing or expired job."""

    @abc.abstractmethod
    async def purge_expired(self) -> int:
        """Delete expired jobs and reclaim their space; the number of jobs deleted."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise `StoreUnavailable` if the store cannot serve requests: a keyed write, as job
        creation needs (a full or read-only store is not ready), not a mere PING."""

    # --- exports ----------------------------------------------------------------------

    @abc.abstractmethod
    async def create_export(
        self, export: ExportRecord, *, limit: int | None = None, quota_key: str | None = None
    ) -> None:
        """Store a new export. With a `limit`, raise `TooManyExports` if `quota_key`
        (default `export.owner`) already has `limit` live exports queued or running (check
        and write are one atomic step; without a key all anonymous exports count together)."""

    @abc.abstractmethod
    async def get_export(self, export_id: str) -> ExportRecord:
        """The export, or `ExportNotFound` (also once it expired)."""

    @abc.abstractmethod
    async def save_export(self, export: ExportRecord) -> ExportRecord | None:
        """Replace the stored export if its version is still `export.version`; the stored
        record (version + 1), or None when another writer got there first or it is gone."""

    @abc.abstractmethod
    async def active_exports(self) -> list[ExportRecord]:
        """Live exports queued or running, oldest first (what a runner picks up)."""

    @abc.abstractmethod
    async def expired_exports(self, now: float) -> list[ExportRecord]:
        """Exports whose job's TTL ran out before `now` (their files are to be deleted)."""

    @abc.abstractmethod
    async def delete_export(self, export_id: str) -> None: ...

    async def take_token(self, key: str, per_minute: float, burst: int) -> float | None:
        """A token of `key`'s bucket shared by every replica: 0.0 when admitted, else the
        seconds until one is due; None when this store is not shared (the caller then
        counts in its own process)."""
        return None

    async def hold_client_slot(self, client: str, limit: int, lease: float) -> str | None:
        """Hold one of `client`'s `limit` stream slots shared by every replica, for `lease`
        seconds (renew it with `renew_client_slot`): the slot's id; `TooManyRequests` when
        all are held; None when this store is not shared (the process counts alone)."""
        return None

    async def renew_client_slot(self, client: str, slot: str, lease: float) -> None:  # noqa: B027
        pass

    async def release_client_slot(self, client: str, slot: str) -> None:  # noqa: B027
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass


def open_store(settings: Settings) -> JobStore:
    """Redis when TRACE_REDIS_URL is set (replicas share jobs), else the embedded store."""
    if settings.redis_url:
        from svc.store.redis import RedisJobStore

        return RedisJobStore(
            settings.redis_url,
            prefix=settings.redis_prefix,
            ttl=settings.job_ttl,
            refresh_on_access=settings.job_ttl_refresh,
        )
    from svc.store.embedded import EmbeddedJobStore

    return EmbeddedJobStore(
        settings.data_dir / "jobs.sqlite3",
        ttl=settings.job_ttl,
        refresh_on_access=settings.job_ttl_refresh,
    )
