"""Job stores for the store tests: one backing store shared by several stores (a restarted
process, another replica), a clock moved forward instead of sleeping, and specs to store."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from svc.core.export_record import Checkpoint, ExportRecord, new_export_id
from svc.store import JobSpec, JobStore, new_spec
from svc.store.embedded import EmbeddedJobStore
from svc.store.redis import RedisJobStore


class OffsetClock:
    """Wall-clock time that a test moves forward: `time.time()` plus what was advanced, so
    specs stamped with the real time (new_spec) stay in step with it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class StoreFactory:
    """`stores(ttl=60, refresh_on_access=False)`: a store over this test's backing store (an
    embedded SQLite file, or a Redis prefix on one server or on a 3-master cluster, each store
    seeded from another node). `wait(s)` lets s seconds pass for expiry: on a fake clock for
    the embedded store; really for Redis, which expires its keys itself."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.kind, self._request, self._tmp_path = kind, request, tmp_path
        self.clock = OffsetClock()
        self.made: list[JobStore] = []

    def __call__(self, ttl: float = 60, refresh_on_access: bool = False) -> JobStore:
        store: JobStore
        if self.kind == "embedded":
            path = self._tmp_path / "jobs.sqlite3"
            store = EmbeddedJobStore(
                path, ttl=ttl, refresh_on_access=refresh_on_access, clock=self.clock
            )
        else:
            if self.kind == "cluster":  # any node: the store finds the others
                url = self._request.getfixturevalue("redis_cluster").urls[len(self.made) % 3]
            else:
                url = self._request.getfixturevalue("redis_url")
            prefix = self._request.getfixturevalue("redis_prefix")
            store = RedisJobStore(url, prefix=prefix, ttl=ttl, refresh_on_access=refresh_on_access)
        self.made.append(store)
        return store

    def now(self) -> float:
        return self.clock() if self.kind == "embedded" else time.time()

    async def wait(self, seconds: float) -> None:
        if self.kind == "embedded":
            self.clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    async def close(self) -> None:
        for store in self.made:
            await store.close()


def some_cids(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(64):016x}" for _ in range(n)]


def job_spec(
    cids: list[str] | None = None,
    ttl: float = 60,
    owner: str | None = None,
    snapshot: int | None = None,
) -> JobSpec:
    return new_spec(
        some_cids(500) if cids is None else cids, ["history", "materials"], ttl, owner, snapshot
    )


def export_record(owner: str | None = None, ttl: float = 60, state: str = "queued") -> ExportRecord:
    now = time.time()
    return ExportRecord(
        export_id=new_export_id(),
        job_id="job-" + new_export_id(),
        owner=owner,
        format="ndjson.gz",
        state=state,  # type: ignore[arg-type]
        created_at=now,
        updated_at=now,
        expires_at=now + ttl,
        checkpoint=Checkpoint(records=[0, 0]),
    )
