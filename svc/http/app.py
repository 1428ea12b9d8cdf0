"""HTTP routes (Starlette). Errors are mapped to problem+json here and only here."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from svc import logs, metrics
from svc import protocol as p
from svc.core import csv_cells, gzip_lines
from svc.core.export_record import ExportRecord
from svc.core.filters import MAX_WHERE_VALUES, explain_wire_error
from svc.engine.csv_download import CsvOptions, DomainCsv, filename
from svc.engine.ndjson import JobStream
from svc.engine.service import Service
from svc.errors import (
    BadRequest,
    Draining,
    ExportNotFound,
    ExportNotReady,
    InvalidFilter,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    RequestTimeout,
    TooManyCids,
    TraceError,
    UnsupportedMediaType,
)
from svc.exports.ranges import requested_range
from svc.exports.responses import FileRangeResponse
from svc.exports.runner import ExportRunner, status_of
from svc.exports.storage import MEDIA_TYPES, open_storage
from svc.http import openapi
from svc.http.auth import authorize
from svc.http.responses import CSV, CsvResponse, NdjsonResponse
from svc.sources.demo import random_cids
from svc.store import JobSpec
from svc.store.purge import purge_periodically

log = logging.getLogger(__name__)
T = TypeVar("T")
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
_MAX_CID_CHARS = 64
_DIGITS = re.compile(r"[0-9]{1,15}")
_BODY_BYTES_PER_CID = 80  # a quoted 64-char CID, a comma and JSON whitespace


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = p.Problem(
        type=f"/problems/{code}", title=detail, status=status, code=code, detail=detail
    )
    metrics.PROBLEMS.labels(code).inc()
    return Response(p.encode(body), status, headers, media_type="application/problem+json")


async def _trace_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TraceError)
    headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    return problem(exc.status, exc.code, exc.detail, headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client left mid-upload or mid-read: a normal end, and nobody reads this answer."""
    log.info("client left during %s %s", request.method, request.url.path)
    return Response(status_code=499)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors, as the service's own."""
    assert isinstance(exc, HTTPException)
    mapped = {404: NotFound, 405: MethodNotAllowed}.get(exc.status_code)
    if mapped is None:
        return problem(exc.status_code, "http_error", str(exc.detail))
    return await _trace_error(request, mapped())


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem(500, "internal", "Internal error")


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _client(request: Request, owner: str | None) -> str:
    """Who admission counts a request against: its API key, or its address."""
    if owner is not None:
        return owner
    return "addr:" + (request.client.host if request.client else "unknown")


async def _unless_gone(request: Request, work: Awaitable[T]) -> T:
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


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and _DIGITS.fullmatch(declared) and int(declared) > limit:
        raise PayloadTooLarge(f"the body may hold at most {limit} bytes")
    body = bytearray()
    timeout = _service(request).settings.body_timeout
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > limit:
                    raise PayloadTooLarge(f"the body may hold at most {limit} bytes")
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout} s") from None
    return bytes(body)


def _iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _links(job_id: str) -> p.Links:
    base = f"/api/trace/job/{job_id}"
    return p.Links(base, f"{base}/stream", f"{base}/result")


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(p.encode(data), status, headers, media_type="application/json")


def _check_media_type(request: Request) -> None:
    # Also what stops a cross-site HTML form (text/plain) from creating jobs.
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType()


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
    owner = authorize(request)
    service = _service(request)
    service.admit_job(_client(request, owner))
    _check_media_type(request)
    max_cids = service.settings.max_cids
    body = await _read_body(request, max_cids * _BODY_BYTES_PER_CID + 65536)
    # Every CID is a JSON string: two quotes each. Counting them before decoding bounds
    # the memory a body of millions of tiny (or duplicate) CIDs could take to decode.
    # (A filter's strings are allowed for: its values and a few hundred names.)
    if body.count(b'"') // 2 > max_cids + 64 + MAX_WHERE_VALUES + 1024:
        raise TooManyCids(f"at most {max_cids} container ids")
    req = _decode_job_request(body)
    await asyncio.to_thread(_validate_cids, req.container_ids)
    spec = await service.create_job(req.container_ids, req.domains, owner, req.where)
    metrics.JOBS_CREATED.inc()
    _background(request, _warm_totals(service, spec))
    links = _links(spec.job_id)
    created = p.JobCreated(
        spec.job_id, len(spec.cids), spec.domains, _iso(spec.expires_at), links, spec.where
    )
    return _json(created, 201, {"Location": links.self_})


def _decode_job_request(body: bytes) -> p.JobRequest:
    try:
        return p.job_request_decoder.decode(body)
    except msgspec.ValidationError as exc:
        if "at `$.where" in str(exc):  # say which column, which msgspec's path does not
            raw = msgspec.json.decode(body)
            detail = explain_wire_error(raw.get("where"), f"invalid where: {exc}")
            raise InvalidFilter(detail) from None
        raise BadRequest(f"invalid job request: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise BadRequest("the body must be a JSON object in UTF-8") from None


async def _warm_totals(service: Service, spec: JobSpec) -> None:
    """Compute the totals while the client gets ready to stream, in stream order, one
    domain at a time, so the first domain's (which the stream's first line waits for) is
    ready soonest."""
    for name in spec.domains:
        await service.totals(spec, name)


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
    service = _service(request)
    spec = await service.job(request.path_params["job_id"], authorize(request))
    totals = await service.store.get_totals(spec.job_id)
    return _json(
        p.JobDescription(
            job_id=spec.job_id,
            cid_count=len(spec.cids),
            domains=spec.domains,
            created_at=_iso(spec.created_at),
            expires_at=_iso(spec.expires_at),
            snapshot=spec.snapshot,
            totals={
                d: p.DomainCount(s.records, s.containers)
                for d, s in totals.items()
                if d in spec.domains
            },
            links=_links(spec.job_id),
            where=spec.where,
        )
    )


def _format(request: Request) -> bool:
    fmt = request.query_params.get("format", "objects")
    if fmt not in ("objects", "arrays"):
        raise BadRequest("format must be objects or arrays")
    return fmt == "arrays"


async def stream(request: Request) -> Response:
    service = _service(request)
    if service.draining.is_set():  # a new stream here would end at its first batch
        raise Draining()
    owner = authorize(request)
    spec = await service.job(request.path_params["job_id"], owner)
    since = request.query_params.get("since")
    cursor = service.cursor(spec, since)
    arrays = _format(request)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    settings = service.settings
    if settings.gzip_level:
        headers["Vary"] = "Accept-Encoding"
    gzip_level = gzip_lines.negotiate(request.headers.get("accept-encoding"), settings.gzip_level)
    job_stream = JobStream(service, spec, cursor, since, arrays)
    if request.method == "HEAD":  # the headers a GET would get; the job is not run
        return NdjsonResponse(
            job_stream, headers=headers, heartbeat=0, slow_reader=0, gzip_level=gzip_level
        )
    client = _client(request, owner)
    service.admission.acquire(client)  # released when the response ends, however it ends
    try:
        # Fail before the first byte where we can: the first page needs the source.
        await job_stream.open()
    except BaseException:
        service.admission.release(client)
        raise
    return NdjsonResponse(
        job_stream,
        headers=headers,
        heartbeat=settings.heartbeat_seconds,
        slow_reader=settings.slow_reader_seconds,
        on_close=lambda outcome: service.admission.release(client),
        gzip_level=gzip_level,
    )


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # ASCII digits only (str.isdigit() also takes "²"), and short: int() of thousands of
    # digits is slow, and above 4,300 it raises.
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(raw)


async def result_page(request: Request) -> Response:
    service = _service(request)
    owner = authorize(request)
    spec = await service.job(request.path_params["job_id"], owner)
    settings = service.settings
    limit = _int_param(request, "limit", settings.batch_size, 1, settings.max_page_limit)
    offset = None
    if "offset" in request.query_params:
        offset = _int_param(request, "offset", 0, 0, 10**12)
    fmt = request.query_params.get("format", "objects")
    if fmt not in ("objects", "arrays", "csv"):
        raise BadRequest("format must be objects, arrays or csv")
    with service.admission.slot(_client(request, owner)):
        page = await _unless_gone(
            request,
            service.page(
                spec,
                request.query_params.get("domain"),
                since=request.query_params.get("since"),
                offset=offset,
                limit=limit,
                arrays=fmt != "objects",
            ),
        )
    headers = {"Cache-Control": "no-store"}
    if page.next is not None:
        url = request.url.remove_query_params("offset").include_query_params(
            since=page.next, domain=page.domain, limit=limit
        )
        headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    if fmt == "csv":  # the same records, with a header row; no BOM, values as they are
        body = await asyncio.to_thread(csv_cells.encode, page.columns or [], page.data)
        response = Response(body.encode(), headers=headers, media_type=CSV)
    else:
        response = _json(page, headers=headers)
    metrics.page_sent(page.domain, fmt, len(page.data), len(response.body))
    return await _maybe_gzip(request, response, settings.gzip_level)


async def _maybe_gzip(request: Request, response: Response, level: int) -> Response:
    """The response gzipped when the client takes it and it is worth it; `Vary` either way."""
    if not level:
        return response
    response.headers["Vary"] = "Accept-Encoding"
    level = gzip_lines.negotiate(request.headers.get("accept-encoding"), level)
    if level and len(response.body) >= gzip_lines.MIN_BYTES:
        body = bytes(response.body)
        if gzip_lines.off_loop(level, len(body)):
            response.body = await asyncio.to_thread(gzip_lines.gzip_body, body, level)
        else:
            response.body = gzip_lines.gzip_body(body, level)
        response.headers["Content-Length"] = str(len(response.body))
        response.headers["Content-Encoding"] = "gzip"
        metrics.GZIP_BYTES.inc(len(response.body))
    return response


def _flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw not in ("0", "1"):
        raise BadRequest(f"{name} must be 0 or 1")
    return raw == "1"


async def export_csv(request: Request) -> Response:
    """A whole domain as one CSV file, streamed; admitted and cancelled like a stream."""
    service = _service(request)
    if service.draining.is_set():  # the download would end at its first batch
        raise Draining()
    owner = authorize(request)
    spec = await service.job(request.path_params["job_id"], owner)
    offset = None
    if "offset" in request.query_params:
        offset = _int_param(request, "offset", 0, 0, 10**12)
    domain, cursor = service.position(
        spec, request.query_params.get("domain"), request.query_params.get("since"), offset
    )
    options = CsvOptions(_flag(request, "header", True), _flag(request, "spreadsheet", True))
    body = DomainCsv(service, spec, domain, cursor, offset, options)
    headers = {
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
        "Content-Disposition": f'attachment; filename="{filename(spec.job_id, domain)}"',
    }
    if request.method == "HEAD":  # the headers a GET would get; nothing is read
        return CsvResponse(body, headers=headers, heartbeat=0, slow_reader=0)
    client = _client(request, owner)
    service.admission.acquire(client)  # released when the response ends, however it ends
    try:
        await _unless_gone(request, body.open())  # a failure here is still a problem+json
    except BaseException:
        service.admission.release(client)
        raise
    return CsvResponse(
        body,
        headers=headers,
        heartbeat=0,
        slow_reader=service.settings.slow_reader_seconds,
        on_close=lambda outcome: service.admission.release(client),
    )


# --- exports (svc/exports): a job written to a file in the background ---------------------

_EXPORT_BODY_BYTES = 4096
_MAX_EXPORT_ID_CHARS = 64


def _exports(request: Request) -> ExportRunner:
    runner: ExportRunner = request.app.state.exports
    return runner


async def create_export(request: Request) -> Response:
    service = _service(request)
    if service.draining.is_set():
        raise Draining()
    owner = authorize(request)
    spec = await service.job(request.path_params["job_id"], owner)
    _check_media_type(request)
    body = await _read_body(request, _EXPORT_BODY_BYTES)
    try:
        req = msgspec.json.decode(body, type=p.ExportRequest)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid export request: {exc}") from None
    except msgspec.DecodeError:
        raise BadRequest("the body must be a JSON object in UTF-8") from None
    record = await _exports(request).create(spec, req.format)
    status = status_of(record)
    return _json(status, 202, {"Location": status.links.self_})


async def _export_of(request: Request) -> tuple[ExportRunner, ExportRecord]:
    service = _service(request)
    spec = await service.job(request.path_params["job_id"], authorize(request))
    export_id = request.path_params["export_id"]
    if len(export_id) > _MAX_EXPORT_ID_CHARS:
        raise ExportNotFound()
    runner = _exports(request)
    return runner, await runner.get(spec, export_id)


async def export_status(request: Request) -> Response:
    _, record = await _export_of(request)
    return _json(status_of(record), headers={"Cache-Control": "no-store"})


async def export_file(request: Request) -> Response:
    """The finished file: here with Range support, or a redirect to a pre-signed URL."""
    runner, record = await _export_of(request)
    if record.state != "done" or record.sha256 is None or record.size is None:
        raise ExportNotReady(f"the export is {record.state}")
    name = record.file_name
    url = await runner.storage.signed_url(name, runner.service.settings.export_url_seconds)
    if url is not None:
        return Response(status_code=307, headers={"Location": url, "Cache-Control": "no-store"})
    path = runner.storage.local_path(name)
    if path is None or not path.is_file():
        raise ExportNotFound("the export's file is not on this server's disk")
    etag = f'"{record.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "Content-Disposition": f'attachment; filename="{record.download_name}"',
    }
    try:
        span = requested_range(
            request.headers.get("range"), request.headers.get("if-range"), etag, record.size
        )
    except RangeNotSatisfiable as exc:
        return problem(
            exc.status,
            exc.code,
            exc.detail,
            {**headers, "Content-Range": f"bytes */{exc.size}", "Accept-Ranges": "bytes"},
        )
    return FileRangeResponse(path, record.size, span, headers, MEDIA_TYPES[record.format])


async def job_aggregation(request: Request) -> Response:
    service = _service(request)
    owner = authorize(request)
    spec = await service.job(request.path_params["job_id"], owner)
    with service.admission.slot(_client(request, owner)):
        result = await _unless_gone(request, service.aggregation(spec))
    return _json(result)


async def list_domains(request: Request) -> Response:
    authorize(request)
    service = _service(request)
    return _json(
        p.DomainList(
            [
                p.DomainInfo(
                    d.name,
                    list(d.columns),
                    {f.name: p.FilterInfo(sorted(f.ops), f.type) for f in d.filters},
                )
                for d in service.domains.values()
            ]
        )
    )


async def demo_cids(request: Request) -> Response:
    authorize(request)
    service = _service(request)
    n = _int_param(request, "n", 100, 1, service.settings.max_cids)
    if service.settings.db_url is not None:
        raise NotFound("demo CIDs exist only on the embedded demo database")
    return _json(p.DemoCids(await random_cids(service.source, n)))


async def healthz(request: Request) -> Response:
    return _json(p.Health("ok"))


async def metrics_text(request: Request) -> Response:
    """Every metric of `svc.metrics`, in Prometheus text format."""
    service = _service(request)
    if not service.settings.metrics_public:
        authorize(request)
    body = metrics.exposition(service.source.in_use, service.draining.is_set())
    return Response(body, media_type=metrics.CONTENT_TYPE)


def _document(request: Request) -> dict[str, Any]:
    doc: dict[str, Any] | None = getattr(request.app.state, "openapi", None)
    if doc is None:
        service = _service(request)
        doc = openapi.document(service.settings, list(service.domains))
        request.app.state.openapi = doc
    return doc


async def openapi_json(request: Request) -> Response:
    return _json(_document(request))


async def docs(request: Request) -> Response:
    return HTMLResponse(openapi.render_docs(_document(request)))


async def readyz(request: Request) -> Response:
    service = _service(request)
    if service.draining.is_set():
        raise Draining()
    await service.store.ping()
    await service.source.ping()
    return _json(p.Health("ready"))


def create_app(
    service_factory: Callable[[], Awaitable[Service]],
    frontend: Path | None = FRONTEND_DIR,
    cors_origins: Sequence[str] = (),
) -> Starlette:
    """The ASGI app; `service_factory` builds the Service at start-up (in the loop).

    `cors_origins`: the browser origins allowed to call the API (none by default)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.service = await service_factory()
        app.state.background = set()
        settings = app.state.service.settings  # expired jobs: purged now and periodically
        purge = purge_periodically(app.state.service.store, settings.job_purge_seconds)
        app.state.background.add(asyncio.ensure_future(purge))
        storage = open_storage(settings.export_storage, settings.exports_path)
        app.state.exports = ExportRunner(app.state.service, storage)
        app.state.background.add(asyncio.ensure_future(app.state.exports.run_forever()))
        try:
            yield
        finally:
            for task in list(app.state.background):
                task.cancel()
            await app.state.exports.stop()  # writers hand their exports back at a checkpoint
            await app.state.service.close()

    api_routes: list[Route] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_text),
        Route("/openapi.json", openapi_json),
        Route("/docs", docs),
        Route("/api/domains", list_domains),
        Route("/api/demo/cids", demo_cids),
        Route("/api/trace/job", create_job, methods=["POST"]),
        Route("/api/trace/job/{job_id}", describe_job),
        Route("/api/trace/job/{job_id}/stream", stream),
        Route("/api/trace/job/{job_id}/result", result_page),
        Route("/api/trace/job/{job_id}/export.csv", export_csv),
        Route("/api/trace/job/{job_id}/exports", create_export, methods=["POST"]),
        Route("/api/trace/job/{job_id}/exports/{export_id}", export_status),
        Route("/api/trace/job/{job_id}/exports/{export_id}/file", export_file),
        Route("/api/trace/job/{job_id}/aggregation", job_aggregation),
    ]

    async def api_fallback(request: Request) -> Response:
        """An /api path no route takes: 405 if another method would do, else 404 (the
        front end's files, mounted at /, would otherwise answer for them)."""
        allowed = {
            m
            for r in api_routes
            if r.matches(request.scope)[0] is Match.PARTIAL
            for m in r.methods or ()
        }
        if allowed:
            exc = MethodNotAllowed()
            response = await _trace_error(request, exc)
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        raise NotFound()

    routes: list[Route | Mount] = [
        *api_routes,
        Route("/api/{rest:path}", api_fallback, methods=_ALL_METHODS),
    ]
    if frontend is not None and frontend.is_dir():
        routes.append(Mount("/", StaticFiles(directory=frontend, html=True)))
    middleware = [Middleware(logs.RequestLogMiddleware)]
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=cors_origins,
                allow_methods=["GET", "HEAD", "POST"],
                allow_headers=["Authorization", "X-Api-Key", "Content-Type", "X-Request-ID"],
                expose_headers=[
                    "Link",
                    "Retry-After",
                    "X-Request-ID",
                    "Location",
                    "ETag",
                    "Content-Range",
                    "Content-Disposition",
                ],
                max_age=600,
            )
        )
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            TraceError: _trace_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _internal_error,
        },
    )
