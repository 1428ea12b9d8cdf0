"""Exports (`svc.exports`): a job written to a file in the background, its state, and the
finished file."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from svc.core.export_record import ExportRecord
from svc.errors import ExportNotFound, ExportNotReady, RangeNotSatisfiable
from svc.exports.ranges import requested_range
from svc.exports.responses import FileRangeResponse
from svc.exports.runner import ExportRunner
from svc.exports.storage import MEDIA_TYPES
from svc.http import limits
from svc.http.app_state import exports_of
from svc.http.params import read_export_request
from svc.http.problems import problem_of
from svc.http.routes.shared import client_key, job_of, json_response, none_match, not_modified
from svc.http.wire import status_of


async def create_export(request: Request) -> Response:
    _, owner, spec = await job_of(request, starts_work=True)
    req = await read_export_request(request)
    # with keys off the quota counts per client address (client_key), not for everyone
    record = await exports_of(request).create(
        spec,
        req.format,
        req.domain,
        spreadsheet=req.spreadsheet,
        quota_key=client_key(request, owner),
    )
    status = status_of(record)
    return json_response(status, 202, {"Location": status.links.self_})


async def _export_of(request: Request) -> tuple[ExportRunner, ExportRecord]:
    _, _, spec = await job_of(request)
    export_id = request.path_params["export_id"]
    if len(export_id) > limits.MAX_EXPORT_ID_CHARS:
        raise ExportNotFound()
    runner = exports_of(request)
    return runner, await runner.get(spec, export_id)


async def export_status(request: Request) -> Response:
    _, record = await _export_of(request)
    return json_response(status_of(record), headers={"Cache-Control": "no-store"})


async def export_file(request: Request) -> Response:
    """The finished file: here with Range support, or a redirect to a pre-signed URL."""
    runner, record = await _export_of(request)
    if record.state != "done" or record.sha256 is None or record.size is None:
        raise ExportNotReady(f"the export is {record.state}")
    etag = f'"{record.sha256}"'
    if none_match(request, etag):  # before the redirect too: the client has the file
        return not_modified({"ETag": etag, "Cache-Control": "private, no-cache"})
    name = record.file_name
    url = await runner.storage.signed_url(name, runner.service.settings.export_url_seconds)
    if url is not None:
        return Response(status_code=307, headers={"Location": url, "Cache-Control": "no-store"})
    path = runner.storage.local_path(name)
    if path is None or not path.is_file():
        raise ExportNotFound("the export's file is not on this server's disk")
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
        unsatisfiable = {"Content-Range": f"bytes */{exc.size}", "Accept-Ranges": "bytes"}
        return problem_of(exc, {**headers, **unsatisfiable})
    return FileRangeResponse(path, record.size, span, headers, MEDIA_TYPES[record.format])
