"""What the app holds for its handlers (`app.state`): the service, the export runner and
the background tasks that end with it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from starlette.requests import Request

from svc.engine.service import Service
from svc.exports.runner import ExportRunner

log = logging.getLogger(__name__)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def exports_of(request: Request) -> ExportRunner:
    runner: ExportRunner = request.app.state.exports
    return runner


def run_in_background(request: Request, work: Awaitable[Any]) -> None:
    """Run `work` past the response; cancelled when the app stops."""
    tasks: set[asyncio.Task[Any]] = request.app.state.background

    async def run() -> None:
        try:
            await work
        except Exception as exc:  # the request that needs the result will report it
            log.info("background task failed: %s", exc)

    task = asyncio.ensure_future(run())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
