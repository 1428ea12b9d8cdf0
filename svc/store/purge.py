"""The periodic purge of expired jobs, run by the app for as long as it serves."""

from __future__ import annotations

import asyncio
import logging

from svc.store import JobStore

log = logging.getLogger(__name__)


async def purge_periodically(store: JobStore, interval: float) -> None:
    """Purge expired jobs now and every `interval` seconds, until cancelled."""
    while True:
        try:
            purged = await store.purge_expired()
        except Exception as exc:  # a store outage: try again next time
            log.warning("purging expired jobs failed: %s: %s", type(exc).__name__, exc)
        else:
            if purged:
                log.info("purged %d expired jobs", purged)
        await asyncio.sleep(interval)
