"""A per-process cache of decoded job specs, shared by the job stores.

Specs are immutable, so a cached spec is always right; a store still asks its backend
whether the job exists (cheaply, without the spec) before using it, so an expired job is
gone everywhere at once. The cache is bounded by the total number of CIDs it holds
(docs/benchmarks.md#sizes-and-encoding-costs), least recently used first out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from svc.core.lru import WeightedLru
from svc.protocol import DomainTotals
from svc.store import JobSpec

SPEC_CACHE_CIDS = 500_000


@dataclass
class CachedJob:
    spec: JobSpec
    totals: dict[str, DomainTotals] = field(default_factory=dict)


class SpecCache:
    def __init__(
        self, max_cids: int = SPEC_CACHE_CIDS, clock: Callable[[], float] = time.time
    ) -> None:
        self._jobs: WeightedLru[str, CachedJob] = WeightedLru(max_cids, _cids)
        self._clock = clock  # the owning store's, so both agree on what has expired

    def get(self, job_id: str) -> CachedJob | None:
        """The cached job, unless it is absent or past its expiry."""
        entry = self._jobs.get(job_id)
        if entry is not None and entry.spec.expires_at < self._clock():
            self.evict(job_id)
            return None
        return entry

    def peek(self, job_id: str) -> CachedJob | None:
        """The cached job whatever its expiry, without touching the LRU order."""
        return self._jobs.peek(job_id)

    def remember(self, spec: JobSpec) -> CachedJob:
        return self._jobs.put(spec.job_id, CachedJob(spec))

    def evict(self, job_id: str) -> None:
        self._jobs.pop(job_id)


def _cids(entry: CachedJob) -> int:
    return len(entry.spec.cids)
