"""Job stores: where saved queries (sorted CID lists and domains) live for their TTL.

`JobStore` is the interface; `EmbeddedJobStore` (a SQLite file in the data directory,
the default) and `RedisJobStore` (shared by replicas) implement it. A spec is immutable
once created; only per-domain statistics are added to a job later.
"""

from __future__ import annotations

import abc
import secrets
import time

import msgspec


class DomainStats(msgspec.Struct, array_like=True):
    records: int
    containers: int  # CIDs of the job with at least one record in the domain


class JobSpec(msgspec.Struct):
    job_id: str
    cids: list[str]  # sorted, unique
    domains: list[str]
    created_at: float
    expires_at: float
    owner: str | None = None  # API key fingerprint, None when keys are off
    snapshot: int | None = None  # Oracle SCN the job reads AS OF


def new_job_id() -> str:
    return secrets.token_urlsafe(16)


def new_spec(
    cids: list[str], domains: list[str], ttl: float, owner: str | None, snapshot: int | None
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
    )


class JobStore(abc.ABC):
    """Stores job specs and their per-domain statistics with a TTL.

    Errors of the backing store are raised as `StoreUnavailable`; a missing or expired
    job as `JobNotFound`.
    """

    @abc.abstractmethod
    async def create(self, spec: JobSpec) -> None:
        """Store `spec` atomically: a reader never sees half a job."""

    @abc.abstractmethod
    async def get(self, job_id: str) -> JobSpec: ...

    @abc.abstractmethod
    async def get_stats(self, job_id: str) -> dict[str, DomainStats]: ...

    @abc.abstractmethod
    async def put_stats(self, job_id: str, domain: str, stats: DomainStats) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise `StoreUnavailable` if the store cannot serve requests."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass
