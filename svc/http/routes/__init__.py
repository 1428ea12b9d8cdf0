"""The route handlers, by resource, and the app's routes: each endpoint of the route table
(`svc.http.paths`) with its handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from svc.http import paths
from svc.http.routes import exports, jobs, meta, streams

Handler = Callable[[Request], Awaitable[Response]]

HANDLERS: dict[paths.Endpoint, Handler] = {
    paths.HEALTHZ: meta.healthz,
    paths.READYZ: meta.readyz,
    paths.METRICS: meta.metrics_text,
    paths.OPENAPI_JSON: meta.openapi_json,
    paths.DOCS: meta.docs,
    paths.DOMAINS: meta.list_domains,
    paths.DEMO_CIDS: meta.demo_cids,
    paths.CREATE_JOB: jobs.create_job,
    paths.JOB: jobs.describe_job,
    paths.STREAM: streams.stream,
    paths.RESULT: streams.result_page,
    paths.EXPORT_CSV: streams.export_csv,
    paths.CREATE_EXPORT: exports.create_export,
    paths.EXPORT: exports.export_status,
    paths.EXPORT_FILE: exports.export_file,
    paths.AGGREGATION: jobs.job_aggregation,
}


def api_routes() -> list[Route]:
    """Every routed endpoint, in the table's order."""
    return [Route(e.path, HANDLERS[e], methods=[e.method], name=e.name) for e in paths.ROUTED]
