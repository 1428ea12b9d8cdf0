"""A per-process cache of decoded job specs, shared by the job stores.

Specs are immutable, so a cached spec is always right; a store still asks its backend
whether the job exists (cheaply, without the spec) before using it, so an expired job is
gone everywhere at once. The cache is bounded by the total number of CIDs it holds
(500,000 CIDs is ~40 MB of Python strings), least recently used first out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from svc.jobs import DomainStats, JobSpec


@dataclass
class CachedJob:
    spec: JobSpec
    stats: dict[str, DomainStats] = field(default_factory=dict)


class SpecCache:
    def __init__(self, max_cids: int = 500_000) -> None:
        self.max_cids = max_cids
        self._jobs: OrderedDict[str, CachedJob] = OrderedDict()
        self._cids = 0

    def get(self, job_id: str) -> CachedJob | None:
        """The cached job, unless it is absent or past its expiry."""
        entry = self._jobs.get(job_id)
        if entry is None:
            return None
        if entry.spec.expires_at < time.time():
            self.evict(job_id)
            return None
        self._jobs.move_to_end(job_id)
        return entry

    def peek(self, job_id: str) -> CachedJob | None:
        """The cached job whatever its expiry, without touching the LRU order."""
        return self._jobs.get(job_id)

    def remember(self, spec: JobSpec) -> CachedJob:
        self.evict(spec.job_id)
        entry = self._jobs[spec.job_id] = CachedJob(spec)
        self._cids += len(spec.cids)
        while self._cids > self.max_cids and len(self._jobs) > 1:
            self.evict(next(iter(self._jobs)))
        return entry

    def evict(self, job_id: str) -> None:
        entry = self._jobs.pop(job_id, None)
        if entry is not None:
            self._cids -= len(entry.spec.cids)
