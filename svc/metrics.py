"""Prometheus metrics: every metric object of the service, and the /metrics exposition.

Every labelled counter has its known label values from the start (at 0), so `rate()` and
`increase()` see a series before the first event; there are no `_created` series.

With PROMETHEUS_MULTIPROC_DIR set (several worker processes), each process writes its
samples there and a scrape of any worker sums them (prometheus-client multiprocess mode;
the directory must be emptied before the workers start). Without it the process's own
registry is exposed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import get_args

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from svc import logs
from svc import protocol as p
from svc.errors import TraceError

# A `_created` series beside every counter and histogram child is noise to Prometheus.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# The three gauges the service always had (tests and dashboards read them).
ACTIVE_STREAMS = Gauge(
    "trace_active_streams", "NDJSON streams being sent now", multiprocess_mode="livesum"
)
SOURCE_IN_USE = Gauge(
    "trace_source_connections_in_use",
    "Trace database connections in use (set at scrape time)",
    multiprocess_mode="livesum",
)
DRAINING = Gauge("trace_draining", "1 while the server drains", multiprocess_mode="max")

STREAMS_FINISHED = Counter(
    "trace_streams_finished",
    "NDJSON streams ended, by outcome: complete, client_gone, error, drained",
    ["outcome"],
)
RECORDS_SENT = Counter(
    "trace_records_sent",
    "Records sent in stream lines, pages and CSV downloads",
    ["domain", "format"],
)
BYTES_SENT = Counter(
    "trace_bytes_sent",
    "Bytes of records lines, pages and CSV downloads sent (before compression)",
    ["domain", "format"],
)
GZIP_BYTES = Counter(
    "trace_gzip_bytes_sent",
    "Bytes of gzip-encoded streams and pages as sent (after compression; JSON: trace_bytes_sent)",
)
RESUMES = Counter("trace_stream_resumes", "Streams started with a since token")
READ_AHEAD_SHED = Counter(
    "trace_read_ahead_shed",
    "Times a stream dropped the pages it had read ahead, its client not reading for a second",
)
PROBLEMS = Counter("trace_problem_responses", "problem+json responses, by code", ["code"])
ERROR_LINES = Counter("trace_stream_error_lines", "error lines sent in streams, by code", ["code"])
PAGE_QUERY_SECONDS = Histogram(
    "trace_page_query_seconds",
    "One keyset page query against the trace database",
    ["source", "domain"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AGGREGATE_QUERY_SECONDS = Histogram(
    "trace_aggregate_query_seconds",
    "One declared aggregation over one chunk of a job (svc.core.aggregates.queries.aggregate_sql)",
    ["source", "domain"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STORE_SECONDS = Histogram(
    "trace_job_store_seconds",
    "One job store operation",
    ["op"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
STORE_ERRORS = Counter("trace_job_store_errors", "Job store operations that failed", ["op"])
JOBS_CREATED = Counter("trace_jobs_created", "Jobs created")

EXPORTS_STARTED = Counter("trace_exports_started", "Exports requested, by format", ["format"])
EXPORTS_FINISHED = Counter(
    "trace_exports_finished",
    "Exports finished, by format and state: done, failed",
    ["format", "state"],
)
EXPORT_BYTES = Counter("trace_export_bytes", "Bytes of finished export files", ["format"])
EXPORT_SECONDS = Histogram(
    "trace_export_seconds",
    "From an export's request to its finished file (queueing and resumes included)",
    ["format"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
HTTP_REQUESTS = Counter(
    "trace_http_requests",
    "HTTP requests answered, by route template (`other`: no route), method and status class",
    ["route", "method", "status"],
)

OUTCOMES = ("complete", "client_gone", "error", "drained")
EXPORT_STATES = ("done", "failed")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _error_codes() -> list[str]:
    codes = {"http_error"}  # Starlette's own HTTP errors (problems.py)
    todo: list[type[TraceError]] = [TraceError]
    while todo:
        cls = todo.pop()
        codes.add(cls.code)
        todo.extend(cls.__subclasses__())
    return sorted(codes)


def _known_labels() -> None:
    for outcome in OUTCOMES:
        STREAMS_FINISHED.labels(outcome)
    for code in _error_codes():
        PROBLEMS.labels(code)
        ERROR_LINES.labels(code)
    for fmt in get_args(p.ExportFormat):
        EXPORTS_STARTED.labels(fmt)
        EXPORT_BYTES.labels(fmt)
        for state in EXPORT_STATES:
            EXPORTS_FINISHED.labels(fmt, state)


_known_labels()


def known_domains(domains: Iterable[str], formats: Iterable[str]) -> None:
    """The record counters of the configured domains, at 0 (called at start-up)."""
    for domain in domains:
        for fmt in formats:
            RECORDS_SENT.labels(domain, fmt)
            BYTES_SENT.labels(domain, fmt)


def export_started(fmt: str) -> None:
    EXPORTS_STARTED.labels(fmt).inc()


def export_finished(fmt: str, state: str, created_at: float, size: int | None) -> None:
    """An export is `done` (its file `size` bytes) or `failed`; it was asked for at
    `created_at` (epoch seconds)."""
    EXPORTS_FINISHED.labels(fmt, state).inc()
    if state == "done":
        EXPORT_BYTES.labels(fmt).inc(size or 0)
        EXPORT_SECONDS.labels(fmt).observe(max(0.0, time.time() - created_at))


class HttpMetricsMiddleware:
    """Pure ASGI: counts each answered request by its route's template (`scope["route"]`,
    set by the router), so job ids never become label values."""

    def __init__(self, app: ASGIApp, routes: Iterable[tuple[str, str]] = ()) -> None:
        self.app = app
        for route, method in routes:  # (template, method) of every route, at 0
            for status in STATUS_CLASSES:
                HTTP_REQUESTS.labels(route, method, status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None)
            template = "other" if route is None else route or "/"
            method = scope.get("method", "GET")
            method = method if method in _METHODS else "other"  # any token is a method
            HTTP_REQUESTS.labels(template, method, f"{status // 100}xx").inc()


def exposition(source_in_use: int, draining: bool) -> bytes:
    """The text exposition of every metric, of this process or of all workers."""
    SOURCE_IN_USE.set(source_in_use)
    DRAINING.set(int(draining))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def page_sent(domain: str, fmt: str, records: int, nbytes: int) -> None:
    """A page of `records` in `fmt` (objects, arrays, csv) was sent."""
    RECORDS_SENT.labels(domain, fmt).inc(records)
    BYTES_SENT.labels(domain, fmt).inc(nbytes)


class StreamStats:
    """One stream's counts: metrics as lines go out, and its log line when it ends.

    The outcome is `client_gone` unless the stream says otherwise before it ends.
    """

    def __init__(self, job_id: str, resumed: bool, arrays: bool, fmt: str | None = None) -> None:
        self.format = fmt or ("arrays" if arrays else "objects")
        ctx = logs.current.get()
        if ctx is not None:
            ctx.streamed = True  # this line replaces the request's access line
        self._log = logs.StreamLog(logs.request_id(), job_id, resumed, self.format)
        self.outcome = "client_gone"
        self.domain: str | None = None
        self.records = 0
        self.bytes = 0
        ACTIVE_STREAMS.inc()
        if resumed:
            RESUMES.inc()

    def sent(self, domain: str, records: int, nbytes: int) -> None:
        self.domain = domain
        self.records += records
        self.bytes += nbytes
        RECORDS_SENT.labels(domain, self.format).inc(records)
        BYTES_SENT.labels(domain, self.format).inc(nbytes)

    def error_line(self, code: str) -> None:
        ERROR_LINES.labels(code).inc()
        self.outcome = "error"

    def finish(self) -> None:
        ACTIVE_STREAMS.dec()
        STREAMS_FINISHED.labels(self.outcome).inc()
        self._log.emit(self.domain, self.records, self.bytes, self.outcome)
