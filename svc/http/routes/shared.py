"""What the route handlers share: the job a request may see, who admission counts it
against, JSON answers, and reads that end with their client."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable
from typing import Any, NamedTuple, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from svc import protocol as p
from svc.engine.service import Service
from svc.errors import Draining
from svc.http.app_state import service_of
from svc.http.auth import authorize
from svc.store import JobSpec

T = TypeVar("T")


class JobAccess(NamedTuple):
    service: Service
    owner: str | None  # the caller's key fingerprint; None without API keys
    spec: JobSpec


def refuse_when_draining(service: Service) -> None:
    """Work started on a draining server would end at its first batch: send it elsewhere."""
    if service.draining.is_set():
        raise Draining()


async def job_of(request: Request, *, starts_work: bool = False) -> JobAccess:
    """The job of the path, authorized: another key's job is not found. `starts_work`: a
    stream, download or export, which a draining server refuses first. A `since` token of
    the job proves that it existed: gone, it is `job_expired`, not `job_not_found`."""
    service = service_of(request)
    if starts_work:
        refuse_when_draining(service)
    owner = authorize(request)
    since = request.query_params.get("since")
    spec = await service.job(request.path_params["job_id"], owner, since)
    return JobAccess(service, owner, spec)


def client_key(request: Request, owner: str | None) -> str:
    """Who admission counts a request against: its API key, or its address."""
    if owner is not None:
        return owner
    return "addr:" + (request.client.host if request.client else "unknown")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(p.encode(data), status, headers, media_type="application/json")


def none_match(request: Request, etag: str) -> bool:
    """True when `If-None-Match` names `etag` (or is `*`): the client has this version
    (RFC 9110 13.1.2, weak comparison: `W/` ignored)."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def not_modified(headers: dict[str, str]) -> Response:
    """304: no body; the validators and caching headers the 200 would have carried."""
    return Response(status_code=304, headers=headers)


def conditional_json(request: Request, data: Any) -> Response:
    """A JSON body with an ETag (a digest of the body), or 304 when the client has it."""
    body = p.encode(data)
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    if none_match(request, etag):
        return not_modified({"ETag": etag})
    return Response(body, 200, {"ETag": etag}, media_type="application/json")


async def unless_gone(request: Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelled as soon as the client disconnects: no read outlives its client."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()  # the client left first (or this request is being cancelled)
    if not task.done() or task.cancelled():
        raise ClientDisconnect()
    return task.result()
