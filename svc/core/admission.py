"""Admission: caps on concurrent streams and page reads, for the process and per client.

Every admitted stream holds a line in flight and up to three pages (`svc.engine.ndjson`;
their size: docs/benchmarks.md#sizes-and-encoding-costs), and every page read a page, so
these caps are what bound the memory and the database sessions a few clients can take. A
client is its API key's fingerprint, or its address when keys are off. Over the per-client
cap the answer is 429, over the process cap 503; both come before the first byte, with
Retry-After (pure: no I/O).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from svc.errors import Overloaded, TooManyRequests


class Admission:
    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self._held: Counter[str] = Counter()
        self.active = 0

    def acquire(self, client: str) -> None:
        if self._held[client] >= self.per_client:
            raise TooManyRequests(
                f"at most {self.per_client} concurrent streams and page reads per client"
            )
        if self.active >= self.total:
            raise Overloaded()
        self._held[client] += 1
        self.active += 1

    def release(self, client: str) -> None:
        self.active -= 1
        self._held[client] -= 1
        if self._held[client] <= 0:
            del self._held[client]

    @contextmanager
    def slot(self, client: str) -> Iterator[None]:
        self.acquire(client)
        try:
            yield
        finally:
            self.release(client)
