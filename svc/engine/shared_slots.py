"""A client's stream slot held in the job store, so the per-client stream cap
(TRACE_MAX_STREAMS_PER_CLIENT) holds across replicas and workers when the store is shared.

A slot is leased (`LEASE`) and renewed every third of it while the stream runs; a replica
that dies leaves its slots to run out with their lease. Costs: one script at the start, one
every 20 s of a stream, one command at its end. With the embedded store nothing is shared
and the process's own `svc.core.admission.Admission` counts alone.
"""

from __future__ import annotations

import asyncio
import logging

from svc.errors import StoreUnavailable
from svc.store import JobStore

log = logging.getLogger(__name__)

LEASE = 60.0  # seconds; a stream renews it every LEASE / 3
_releasing: set[asyncio.Task[None]] = set()  # releases still running after their stream


class SharedSlot:
    def __init__(self, store: JobStore, client: str, slot: str, lease: float) -> None:
        self.store, self.client, self.slot, self.lease = store, client, slot, lease
        self._renewal = asyncio.ensure_future(self._renew())

    @classmethod
    async def hold(
        cls, store: JobStore, client: str, limit: int, lease: float = LEASE
    ) -> SharedSlot | None:
        """A slot of `client`'s (`TooManyRequests` when all are held); None when the store
        is not shared."""
        slot = await store.hold_client_slot(client, limit, lease)
        return None if slot is None else cls(store, client, slot, lease)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.store.renew_client_slot(self.client, self.slot, self.lease)
            except StoreUnavailable:
                pass  # next turn: the lease outlives one missed renewal

    def release(self) -> None:
        """Give the slot back (in the background: called when a response closes)."""
        self._renewal.cancel()
        task = asyncio.ensure_future(self._release())
        _releasing.add(task)
        task.add_done_callback(_releasing.discard)

    async def _release(self) -> None:
        try:
            await self.store.release_client_slot(self.client, self.slot)
        except StoreUnavailable:
            log.info("stream slot of %s not released; its lease ends it", self.client)
