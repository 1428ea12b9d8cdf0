"""The walk through one domain of a job, from a start, a batch at a time: the one loop of the
NDJSON stream, the CSV download and the export writer.

Each batch comes with its place: its number, the domain's records so far and the `since`
token after its last record, signed here for every user alike (a REST page numbers its one
batch the same way, `Service.page`), so a token from any of them resumes any other.
Between two batches the walk stops with `Drained` once the service drains: the batch in
flight was handed out whole, and its user hands over (a `reconnect` line, an aborted
download, an export handed back at its checkpoint).

A walk given `encode` (the stream, the export writer) also hashes each batch's records as a
records line's `data` would hold them into the records digest's chain (`svc.core.digest`),
which its tokens carry; a walk without it (the CSV download) signs tokens without a chain.

The walk holds no batch while its user handles one: a slow reader holds its line's bytes,
never the batch's records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from svc.core import digest
from svc.engine.batches import Batch, Batches
from svc.engine.positions import Start
from svc.engine.service import Service
from svc.store import JobSpec


class Drained(Exception):
    """The service drains: the walk stopped before reading its next batch."""


@dataclass(frozen=True)
class SignedBatch:
    data: list[Any]  # the batch's records (`Batch.data`)
    more: bool  # records may follow
    number: int  # the number of the domain's last batch with records (this one, if it has)
    seen: int  # the domain's records up to this batch's last
    since: str | None  # the token after this batch's last record (None: it has none)
    encoded: bytes | None = None  # `data` as a records line holds it (with `encode`)


class DomainWalk:
    """The batches of `start.domain` from `start`, from `batches`; `first`, when given, is
    the first batch, read already (before the response's first byte). `encode`: how a
    records line encodes a batch's data, hashed into `chain` (None: no digest)."""

    def __init__(
        self,
        service: Service,
        spec: JobSpec,
        start: Start,
        batches: Batches,
        first: Batch | None = None,
        encode: Callable[[list[Any]], bytes] | None = None,
    ) -> None:
        self.service, self.spec, self.domain = service, spec, start.domain
        self.batches = batches
        self.number, self.seen = start.batch, start.seen
        self.encode = encode
        self.chain = start.chain if encode is not None else None
        self._first = first
        self._started = False  # a batch was handed out
        self._more = True

    def __aiter__(self) -> DomainWalk:
        return self

    async def __anext__(self) -> SignedBatch:
        """The next batch; raises `Drained` instead when the service drains (never before
        the walk's first batch: its user checked that when it started)."""
        if not self._more:
            raise StopAsyncIteration
        if self._started and self.service.draining.is_set():
            raise Drained()
        self._started = True
        batch, self._first = self._first, None
        if batch is None:
            batch = await self.batches.next()
        self._more = batch.more
        if not batch.data:
            return SignedBatch(batch.data, batch.more, self.number, self.seen, None)
        assert batch.last is not None
        self.number += 1
        self.seen += len(batch.data)
        encoded = None
        if self.encode is not None:
            encoded = self.encode(batch.data)
            if self.chain is not None:
                self.chain = digest.chain(self.chain, encoded)
        since = self.service.sign(
            self.spec, self.domain, self.number, batch.last, self.seen, self.chain
        )
        return SignedBatch(batch.data, batch.more, self.number, self.seen, since, encoded)
