"""HTTP routes (Starlette). Errors are mapped to problem+json here and only here."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from svc import protocol as p
from svc.errors import (
    BadRequest,
    InvalidToken,
    PayloadTooLarge,
    TraceError,
    Unauthorized,
    Unavailable,
    UnknownDomain,
)
from svc.jobs import JobSpec
from svc.service import Service, owner_of
from svc.stream import TOTAL_WAIT_SECONDS, start_key, stream_job
from svc.tokens import Cursor

log = logging.getLogger(__name__)

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
_MAX_CID_CHARS = 64
_BODY_BYTES_PER_CID = 80  # a quoted 64-char CID, a comma and JSON whitespace
NDJSON = "application/x-ndjson"


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "type": f"/problems/{code}",
        "title": detail,
        "status": status,
        "code": code,
        "detail": detail,
    }
    return Response(p.encode(body), status, headers, media_type="application/problem+json")


async def _trace_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TraceError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
    return problem(exc.status, exc.code, exc.detail, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return problem(exc.status_code, code, str(exc.detail))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem(500, "internal", "Internal error")


def _service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def _authorize(request: Request) -> str | None:
    """The caller's owner fingerprint; raises Unauthorized when keys are on and none match."""
    keys = _service(request).settings.api_keys
    if not keys:
        return None
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    if given:
        for key in keys:
            if hmac.compare_digest(given.encode(), key.encode()):
                return owner_of(key)
    raise Unauthorized()


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body may hold at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"the body may hold at most {limit} bytes")
    return bytes(body)


def _iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _links(request: Request, job_id: str) -> dict[str, str]:
    base = f"/api/trace/job/{job_id}"
    return {"self": base, "stream": f"{base}/stream", "result": f"{base}/result"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(p.encode(data), status, headers, media_type="application/json")


def _validate_cids(cids: list[str]) -> None:
    if not cids:
        raise BadRequest("container_ids must not be empty")
    for cid in cids:
        if not cid or len(cid) > _MAX_CID_CHARS or not cid.isprintable() or cid != cid.strip():
            raise BadRequest(
                f"each container id must be 1-{_MAX_CID_CHARS} printable characters "
                "without surrounding spaces"
            )


async def create_job(request: Request) -> Response:
    owner = _authorize(request)
    svc = _service(request)
    limit = svc.settings.max_cids * _BODY_BYTES_PER_CID + 65536
    body = await _read_body(request, limit)
    try:
        req = p.job_request_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid job request: {exc}") from None
    except msgspec.DecodeError:
        raise BadRequest("the body must be a JSON object") from None
    await asyncio.to_thread(_validate_cids, req.container_ids)
    spec = await svc.create_job(req.container_ids, req.domains, owner)
    _background(request, _warm_totals(svc, spec))
    links = _links(request, spec.job_id)
    return _json(
        {
            "job_id": spec.job_id,
            "cid_count": len(spec.cids),
            "domains": spec.domains,
            "expires_at": _iso(spec.expires_at),
            "links": links,
        },
        201,
        {"Location": links["self"]},
    )


async def _warm_totals(svc: Service, spec: JobSpec) -> None:
    """Compute the totals while the client gets ready to stream, in stream order, one
    domain at a time, so the first domain's (which the stream's first line waits for) is
    ready soonest."""
    for name in spec.domains:
        await svc.stats(spec, name)


def _background(request: Request, work: Awaitable[Any]) -> None:
    tasks: set[asyncio.Task[Any]] = request.app.state.background

    async def run() -> None:
        try:
            await work
        except Exception as exc:  # the request that needs the result will report it
            log.info("background task failed: %s", exc)

    task = asyncio.ensure_future(run())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def describe_job(request: Request) -> Response:
    svc = _service(request)
    spec = await svc.job(request.path_params["job_id"], _authorize(request))
    stats = await svc.store.get_stats(spec.job_id)
    return _json(
        {
            "job_id": spec.job_id,
            "cid_count": len(spec.cids),
            "domains": spec.domains,
            "created_at": _iso(spec.created_at),
            "expires_at": _iso(spec.expires_at),
            "snapshot": spec.snapshot,
            "totals": {
                d: {"records": s.records, "containers": s.containers}
                for d, s in stats.items()
                if d in spec.domains
            },
            "links": _links(request, spec.job_id),
        }
    )


def _cursor(svc: Service, spec: JobSpec, since: str | None) -> Cursor | None:
    if since is None:
        return None
    cursor = svc.tokens.verify(since, spec.job_id)
    if cursor.domain not in spec.domains or cursor.snapshot != spec.snapshot:
        raise InvalidToken()
    return cursor


def _format(request: Request) -> bool:
    fmt = request.query_params.get("format", "objects")
    if fmt not in ("objects", "arrays"):
        raise BadRequest("format must be objects or arrays")
    return fmt == "arrays"


async def stream(request: Request) -> Response:
    svc = _service(request)
    spec = await svc.job(request.path_params["job_id"], _authorize(request))
    since = request.query_params.get("since")
    cursor = _cursor(svc, spec, since)
    arrays = _format(request)
    # Fail before the first byte where we can: counting the first domain needs the source.
    # A count that takes long is not waited for: the stream sends the total when known.
    await svc.stats_within(spec, cursor.domain if cursor else spec.domains[0], TOTAL_WAIT_SECONDS)
    return StreamingResponse(
        stream_job(svc, spec, cursor, since, arrays, waited=True),
        media_type=NDJSON,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(raw)


async def result_page(request: Request) -> Response:
    svc = _service(request)
    spec = await svc.job(request.path_params["job_id"], _authorize(request))
    since = request.query_params.get("since")
    cursor = _cursor(svc, spec, since)
    domain = request.query_params.get("domain") or (cursor.domain if cursor else None)
    if domain is None:
        raise BadRequest("domain is required (or a since token that names it)")
    if domain not in spec.domains:
        raise UnknownDomain(f"this job has no domain {domain[:64]!r}")
    if cursor is not None and cursor.domain != domain:
        raise InvalidToken("the since token is for another domain")
    limit = _int_param(request, "limit", svc.settings.batch_size, 1, svc.settings.max_page_limit)
    offset: int | None = None
    if "offset" in request.query_params:
        if cursor is not None:
            raise BadRequest("give either offset or since, not both")
        offset = _int_param(request, "offset", 0, 0, 10**12)
    arrays = _format(request)
    stats = await svc.stats(spec, domain)
    reader = svc.reader(spec, domain)
    if offset:
        batch = await reader.read_at(offset, limit, await svc.chunk_records(spec, domain))
    else:
        batch = await reader.read(start_key(cursor) if cursor else None, limit)
    token = None
    if batch.more and batch.last is not None:
        before = offset if offset is not None else (cursor.seen if cursor else 0)
        number = (cursor.batch if cursor else -(-before // limit)) + 1
        seen = before + len(batch.rows)
        token = svc.tokens.sign(
            Cursor(spec.job_id, domain, number, batch.last.cid, batch.last.rid, seen, spec.snapshot)
        )
    columns = svc.domains[domain].columns
    data = p.shape_records(batch.rows, columns, arrays)
    page = p.Page(domain, limit, stats.records, data, token, offset)
    headers = {"Cache-Control": "no-store"}
    if token is not None:
        url = request.url.remove_query_params("offset").include_query_params(
            since=token, domain=domain, limit=limit
        )
        headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return _json(page, headers=headers)


async def list_domains(request: Request) -> Response:
    _authorize(request)
    svc = _service(request)
    return _json(
        {"domains": [{"name": d.name, "columns": list(d.columns)} for d in svc.domains.values()]}
    )


async def demo_cids(request: Request) -> Response:
    _authorize(request)
    svc = _service(request)
    if svc.settings.db_url is not None:
        raise HTTPException(404, "demo CIDs exist only on the embedded demo database")
    n = _int_param(request, "n", 100, 1, svc.settings.max_cids)
    rows = await svc.source.fetch(
        "SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS ORDER BY random() LIMIT :n", {"n": n}
    )
    return _json({"container_ids": [r[0] for r in rows]})


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


async def metrics(request: Request) -> Response:
    """A few gauges in Prometheus text format."""
    svc = _service(request)
    lines = [
        "# TYPE trace_active_streams gauge",
        f"trace_active_streams {svc.active_streams}",
        "# TYPE trace_source_connections_in_use gauge",
        f"trace_source_connections_in_use {svc.source.in_use}",
        "# TYPE trace_draining gauge",
        f"trace_draining {int(svc.draining.is_set())}",
    ]
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


async def readyz(request: Request) -> Response:
    svc = _service(request)
    if svc.draining.is_set():
        return problem(503, "draining", "The server is draining", {"Retry-After": "1"})
    await svc.store.ping()
    await svc.source.ping()
    return _json({"status": "ready"})


def create_app(
    service_factory: Callable[[], Awaitable[Service]], frontend: Path | None = FRONTEND_DIR
) -> Starlette:
    """The ASGI app; `service_factory` builds the Service at start-up (in the loop)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.service = await service_factory()
        app.state.background = set()
        try:
            yield
        finally:
            for task in list(app.state.background):
                task.cancel()
            await app.state.service.close()

    routes: list[Route | Mount] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/api/domains", list_domains),
        Route("/api/demo/cids", demo_cids),
        Route("/api/trace/job", create_job, methods=["POST"]),
        Route("/api/trace/job/{job_id}", describe_job),
        Route("/api/trace/job/{job_id}/stream", stream),
        Route("/api/trace/job/{job_id}/result", result_page),
    ]
    if frontend is not None and frontend.is_dir():
        routes.append(Mount("/", StaticFiles(directory=frontend, html=True)))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            TraceError: _trace_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
