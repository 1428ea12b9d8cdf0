"""A value per (job, domain) computed once per process, however many requests ask at once.

Totals and aggregations are costly queries that every stream, page and export of a job may
ask for together: the first asker starts the task, the others share it; once it is done the
caller keeps the value (with the job's state), and the task is forgotten. A failure is
raised to those awaiting it and logged (so asyncio does not warn of an exception never
retrieved), and the next asker tries again; so does the next asker after `cancel`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
V = TypeVar("V")
Key = tuple[str, str]  # (job id, domain)


class Once(Generic[V]):
    def __init__(self, doing: str) -> None:
        self.doing = doing  # what the task does, for the log: "counting"
        self._running: dict[Key, asyncio.Task[V]] = {}

    def future(
        self, key: Key, known: V | None, compute: Callable[[], Coroutine[Any, Any, V]]
    ) -> asyncio.Future[V]:
        """`known` as a done future, else the task computing the value (`compute()`, started
        now unless one is running)."""
        if known is not None:
            done: asyncio.Future[V] = asyncio.get_running_loop().create_future()
            done.set_result(known)
            return done
        task = self._running.get(key)
        if task is None:
            task = self._running[key] = asyncio.ensure_future(compute())
            task.add_done_callback(lambda done: self._forget(key, done))
        return task

    def running(self, key: Key) -> bool:
        """Whether a task computes `key` now."""
        return key in self._running

    def cancel(self, key: Key) -> None:
        """Stop the task computing `key`, if one runs; the next asker starts afresh."""
        task = self._running.pop(key, None)
        if task is not None:
            task.cancel()

    def _forget(self, key: Key, done: asyncio.Future[V]) -> None:
        if self._running.get(key) is done:  # not a task started after this one was cancelled
            del self._running[key]
        if not done.cancelled() and done.exception() is not None:  # seen: no asyncio warning
            log.info("%s %s/%s failed: %s", self.doing, *key, done.exception())
