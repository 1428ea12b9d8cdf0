"""A job's records: the NDJSON stream, one page of a domain, and a domain as one CSV file.

The stream and the CSV download are long responses: they share `_streamed` (HEAD, admission,
opening before the first byte). A page is one short read, admitted for its duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from svc import metrics
from svc.core import csv_cells, gzip_lines
from svc.engine.body import Body
from svc.engine.csv_download import CsvOptions, DomainCsv, filename
from svc.engine.ndjson import JobStream
from svc.engine.shared_slots import SharedSlot
from svc.http.params import (
    PAGE_FORMATS,
    STREAM_FORMATS,
    flag,
    format_param,
    int_param,
    offset_param,
)
from svc.http.responses import CSV, CsvResponse, NdjsonResponse, StreamResponse
from svc.http.routes.shared import JobAccess, client_key, job_of, json_response, unless_gone

_LONG_RESPONSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def _streamed(
    request: Request,
    job: JobAccess,
    response: type[StreamResponse],
    body: Body,
    headers: dict[str, str],
    *,
    open_body: Callable[[], Awaitable[object]],
    heartbeat: float,
    gzip_level: int = 0,
) -> Response:
    """`body` as a long response: HEAD gets the headers a GET would get and nothing is read;
    a GET holds an admission slot until the response ends, however it ends, and opens the
    body first, so that a failure to start is still a problem+json."""
    if request.method == "HEAD":
        return response(body, headers=headers, heartbeat=0, slow_reader=0, gzip_level=gzip_level)
    admission = job.service.admission
    client = client_key(request, job.owner)
    admission.acquire(client)
    shared: SharedSlot | None = None
    try:
        # the cap across replicas, when the store is shared (Redis)
        limit = job.service.settings.max_streams_per_client
        shared = await SharedSlot.hold(job.service.store, client, limit)
        await open_body()
    except BaseException:
        admission.release(client)
        if shared is not None:
            shared.release()
        raise

    def closed(outcome: str) -> None:
        admission.release(client)
        if shared is not None:
            shared.release()

    return response(
        body,
        headers=headers,
        heartbeat=heartbeat,
        slow_reader=job.service.settings.slow_reader_seconds,
        on_close=closed,
        gzip_level=gzip_level,
    )


async def stream(request: Request) -> Response:
    job = await job_of(request, starts_work=True)
    service, _, spec = job
    since = request.query_params.get("since")
    cursor = service.cursor(spec, since)
    arrays = format_param(request, STREAM_FORMATS) == "arrays"
    headers = dict(_LONG_RESPONSE_HEADERS)
    settings = service.settings
    if settings.gzip_level:
        headers["Vary"] = "Accept-Encoding"
    gzip_level = gzip_lines.negotiate(request.headers.get("accept-encoding"), settings.gzip_level)
    job_stream = JobStream(service, spec, cursor, since, arrays)
    return await _streamed(
        request,
        job,
        NdjsonResponse,
        job_stream,
        headers,
        open_body=job_stream.open,  # the first page needs the source
        heartbeat=settings.heartbeat_seconds,
        gzip_level=gzip_level,
    )


async def export_csv(request: Request) -> Response:
    """A whole domain as one CSV file, streamed; admitted and cancelled like a stream."""
    job = await job_of(request, starts_work=True)
    service, _, spec = job
    offset = offset_param(request)
    domain, cursor = service.position(
        spec, request.query_params.get("domain"), request.query_params.get("since"), offset
    )
    options = CsvOptions(flag(request, "header", True), flag(request, "spreadsheet", True))
    body = DomainCsv(service, spec, domain, cursor, offset, options)
    headers = {
        **_LONG_RESPONSE_HEADERS,
        "Content-Disposition": f'attachment; filename="{filename(spec.job_id, domain)}"',
    }
    return await _streamed(
        request,
        job,
        CsvResponse,
        body,
        headers,
        open_body=lambda: unless_gone(request, body.open()),
        heartbeat=0,  # a CSV file has no line for it
    )


async def result_page(request: Request) -> Response:
    service, owner, spec = await job_of(request)
    settings = service.settings
    limit = int_param(request, "limit", settings.batch_size, 1, settings.max_page_limit)
    offset = offset_param(request)
    fmt = format_param(request, PAGE_FORMATS)
    with service.admission.slot(client_key(request, owner)):
        page = await unless_gone(
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
        response = json_response(page, headers=headers)
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
