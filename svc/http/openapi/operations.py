"""The operations of the OpenAPI document: every route of the service and its parameters,
described once. Paths and methods come from the route table (`svc.http.paths`), limits from
`svc.http.limits` and the settings, so the document states what the handlers enforce.
"""

from __future__ import annotations

from typing import Any

from svc import protocol as p
from svc.config import Settings
from svc.errors import (
    BadRequest,
    Draining,
    ExportNotFound,
    ExportNotReady,
    ExportStorageFull,
    InvalidFilter,
    InvalidSelect,
    InvalidToken,
    JobExpired,
    JobNotFound,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RangeNotSatisfiable,
    RateLimited,
    RequestTimeout,
    SnapshotTooOld,
    SourceError,
    SourceMisconfigured,
    SourceUnavailable,
    StoreUnavailable,
    TokenJobMismatch,
    TooManyCids,
    TooManyExports,
    TooManyJobs,
    TooManyRequests,
    TraceError,
    UnknownDomain,
    UnsupportedMediaType,
)
from svc.http import limits, paths
from svc.http.openapi.model import Operation, Param
from svc.http.params import PAGE_FORMATS, STREAM_FORMATS
from svc.http.paths import Endpoint
from svc.http.responses import NDJSON


def _job_id() -> Param:
    return Param("job_id", "path", "The job's id, from `POST /api/trace/job`.", {"type": "string"})


def _export_id() -> Param:
    return Param(
        "export_id", "path", "The export's id, from `POST .../exports`.", {"type": "string"}
    )


def _since() -> Param:
    return Param(
        "since",
        "query",
        "An opaque position token from a `records` line, an `error` or `reconnect` line, "
        "or a page's `next`: go on after it.",
        {"type": "string"},
    )


_GZIP_HEADERS = {
    "Content-Encoding": "`gzip` when the request's `Accept-Encoding` takes it (and TRACE_GZIP "
    "is on); a stream's every line is flushed through it as written",
    "Vary": "`Accept-Encoding` (when TRACE_GZIP is on)",
}
_FORMAT = Param(
    "format",
    "query",
    "`objects`: each record a JSON object keyed by column; `arrays`: each record an array "
    "of values in the order of `columns` (smaller, faster).",
    {"type": "string", "enum": list(STREAM_FORMATS), "default": "objects"},
)

_PAGE_FORMAT = Param(
    "format",
    "query",
    "`objects`: each record a JSON object keyed by column; `arrays`: each record an array "
    "of values in the order of `columns`; `csv`: the page as `text/csv` (RFC 4180, UTF-8 "
    "without a BOM, a header row, values as they are), `next` only in the `Link` header.",
    {"type": "string", "enum": list(PAGE_FORMATS), "default": "objects"},
)

CSV_TEXT = {
    "type": "string",
    "description": "RFC 4180 CSV in UTF-8: a header row of the domain's columns, then one "
    "row per record; CRLF line ends; NULL is an empty cell; numbers as JSON writes them; "
    "dates ISO 8601; bytes base64.",
}


def _domain() -> Param:
    return Param(
        "domain",
        "query",
        "The domain; may be left out with a `since` (which names it).",
        {"$ref": "#/components/schemas/DomainName"},  # the configured domains
    )


def _offset(description: str) -> Param:
    return Param(
        "offset",
        "query",
        description,
        {"type": "integer", "minimum": 0, "maximum": limits.MAX_OFFSET},
    )


def _flag(name: str, description: str) -> Param:
    return Param(name, "query", description, {"type": "integer", "enum": [0, 1], "default": 1})


_STREAM_ERRORS: tuple[type[TraceError], ...] = (
    InvalidToken,
    TokenJobMismatch,
    UnknownDomain,
    BadRequest,
    JobNotFound,
    NotFound,  # a job id with a slash names no route
    SnapshotTooOld,
    JobExpired,  # a since token of a job that is gone
    TooManyRequests,
    SourceError,
    SourceMisconfigured,
    Overloaded,
    Draining,
    StoreUnavailable,
    SourceUnavailable,
)


def _outside_api(
    endpoint: Endpoint,
    summary: str,
    description: str,
    ok_text: str,
    media: str,
    schema: Any,
    errors: tuple[type[TraceError], ...] = (),
) -> Operation:
    """An operation outside /api (API keys do not apply) that answers 200 `ok_text`."""
    return Operation(
        endpoint, summary, description, (200, ok_text, media, schema), errors=errors, api=False
    )


def operations(settings: Settings, domains: list[str]) -> tuple[Operation, ...]:
    """Every route of the service, with the limits of these settings and domains."""
    return (
        Operation(
            paths.CREATE_JOB,
            "Create a job",
            "Saves the query (the sorted, de-duplicated container ids and the domains) for "
            f"{settings.job_ttl} s. Totals start counting in the background. The body may "
            f"hold at most {settings.max_cids} container ids, counted before duplicates are "
            "removed (`too_many_cids`), and "
            f"{limits.job_body_bytes(settings.max_cids)} bytes (`payload_too_large`). "
            "`where` narrows domains to the records that match its conditions, on the columns `GET "
            "/api/domains` lists as filterable (`invalid_filter` otherwise); the job applies "
            "it to its stream, pages, offsets, totals and tokens. `select` narrows a domain's "
            "records to some of its columns (`GET /api/domains` lists them; `invalid_select` "
            "otherwise), always with the key column; the stream's `domain_start`, pages, CSV "
            "and exports carry those columns only.",
            (201, "The job was created; `Location` is its URL.", "application/json", p.JobCreated),
            body=p.JobRequest,
            errors=(
                BadRequest,
                UnknownDomain,
                InvalidFilter,
                InvalidSelect,
                TooManyCids,
                RequestTimeout,
                PayloadTooLarge,
                UnsupportedMediaType,
                TooManyJobs,
                RateLimited,
                StoreUnavailable,
            ),
            headers={"Location": "The job's URL"},
        ),
        Operation(
            paths.JOB,
            "Describe a job",
            "CID count, domains, times and, once counted, each domain's totals.",
            (200, "The job.", "application/json", p.JobDescription),
            params=(_job_id(),),
            errors=(JobNotFound, NotFound, UnknownDomain, StoreUnavailable),
            headers={"ETag": "A digest of this body; it changes when the totals arrive"},
            conditional=True,
        ),
        Operation(
            paths.STREAM,
            "Stream a job as NDJSON",
            "Every record of every domain of the job, as newline-delimited JSON: the schema "
            "is that of ONE line, a union tagged by `type` (see `Line`). A stream that ends "
            "without a `complete` line is incomplete: resume it with the last `since`. After "
            "the first byte failures arrive as an `error` line, never as a status.",
            (200, "The stream.", NDJSON, "Line"),
            params=(_job_id(), _since(), _FORMAT),
            errors=_STREAM_ERRORS,
            headers={"Cache-Control": "no-store", **_GZIP_HEADERS},
        ),
        Operation(
            paths.RESULT,
            "One page of a domain",
            "Records of one domain after `since`, from `offset`, or from the start. `next` "
            "(and the `Link: rel=next` header) is a `since` token; it also resumes a stream.",
            (200, "The page.", "application/json", p.Page),
            params=(
                _job_id(),
                _domain(),
                Param(
                    "limit",
                    "query",
                    f"Records per page (default {settings.batch_size}).",
                    {"type": "integer", "minimum": 1, "maximum": settings.max_page_limit},
                ),
                _since(),
                _offset(
                    "Enter at the offset-th record (0-based) instead of a `since`; `next` "
                    "goes on by keyset."
                ),
                _PAGE_FORMAT,
            ),
            errors=tuple(e for e in _STREAM_ERRORS if e is not Draining),
            headers={"Link": 'The next page: `<URL>; rel="next"`', **_GZIP_HEADERS},
            also=(("text/csv", CSV_TEXT),),
        ),
        Operation(
            paths.EXPORT_CSV,
            "A whole domain as one CSV file",
            "Every record of one domain, streamed as one CSV file (`Content-Disposition: "
            "attachment`), in the stream's order. Made for spreadsheets by default: a UTF-8 "
            "BOM, and text cells that start with `= + - @`, a tab or a CR get a leading `'` "
            "(`spreadsheet=0`: neither). A CSV file cannot carry an error: a failure after "
            "the first byte ends the body without the last chunk of the chunked encoding, "
            "so a cut or failed download is incomplete, never a short file. Continue one "
            "with `offset` (the records the file holds) and `header=0`.",
            (200, "The CSV file.", "text/csv", CSV_TEXT),
            params=(
                _job_id(),
                _domain(),
                _since(),
                _offset("Start at the offset-th record (0-based) instead of after a `since`."),
                _flag(
                    "header",
                    "1: begin with the header row (and the BOM); 0: neither, "
                    "to append to a cut download.",
                ),
                _flag(
                    "spreadsheet",
                    "1: a UTF-8 BOM before the header row and formula "
                    "defusing, for Excel; 0: plain RFC 4180, values as they are.",
                ),
            ),
            errors=_STREAM_ERRORS,
            headers={
                "Content-Disposition": 'attachment; filename="<job>-<domain>.csv"',
                "Cache-Control": "no-store",
            },
        ),
        Operation(
            paths.CREATE_EXPORT,
            "Export a job to a file",
            "Writes every record of the job to one file in the background: `ndjson.gz` (one "
            'record a line, `{"_domain": ..., <columns>}`), `csv.zip` (one CSV file per '
            "domain; `spreadsheet: false` for plain RFC 4180 without the BOM and the `'` of "
            "formula defusing), `xlsx` (a sheet per domain, typed cells) or `parquet` (the one "
            "`domain` named, typed columns; 400 when the server lacks the optional pyarrow). "
            "`domain` narrows any format to one of the job's domains. Poll the status URL "
            "(`Location`) until `state` is `done`, then download "
            f"`links.file`. At most {settings.exports_per_key} exports of one API key may be "
            "queued or running at once; the file lives as long as its job.",
            (202, "The export is queued.", "application/json", p.ExportStatus),
            params=(_job_id(),),
            body=p.ExportRequest,
            errors=(
                BadRequest,
                JobNotFound,
                NotFound,
                UnknownDomain,
                RequestTimeout,
                PayloadTooLarge,
                UnsupportedMediaType,
                TooManyExports,
                ExportStorageFull,
                Draining,
                StoreUnavailable,
            ),
            headers={"Location": "The export's status URL"},
        ),
        Operation(
            paths.EXPORT,
            "An export's state",
            "`queued`, `running`, `done` or `failed`; the records written against the job's "
            "total; when done the file's size, its SHA-256 and the download link.",
            (200, "The export.", "application/json", p.ExportStatus),
            params=(_job_id(), _export_id()),
            errors=(JobNotFound, ExportNotFound, NotFound, UnknownDomain, StoreUnavailable),
        ),
        Operation(
            paths.EXPORT_FILE,
            "Download a finished export",
            "The file, with `Content-Length`, `ETag` (its SHA-256 in quotes) and "
            "`Accept-Ranges: bytes`; `If-None-Match` with that ETag gets a 304. One `Range` "
            "(`bytes=a-b`, `bytes=a-`, `bytes=-n`) gets a "
            "206; several ranges, a malformed one, or an `If-Range` other than the current "
            "ETag get the whole file (200); a range starting beyond the end gets 416 with "
            "`Content-Range: bytes */SIZE`. HEAD answers the same headers. With S3 storage "
            "the answer is a 307 to a pre-signed URL valid "
            f"{settings.export_url_seconds} s (TRACE_EXPORT_URL_SECONDS), which S3 serves "
            "with the same range support.",
            (
                200,
                "The file (206: the requested range).",
                "application/octet-stream",
                {"type": "string", "format": "binary"},
            ),
            params=(_job_id(), _export_id()),
            errors=(
                JobNotFound,
                ExportNotFound,
                NotFound,
                UnknownDomain,
                ExportNotReady,
                RangeNotSatisfiable,
                StoreUnavailable,
            ),
            headers={
                "ETag": "The file's SHA-256, quoted",
                "Accept-Ranges": "`bytes`",
                "Content-Range": "On a 206: `bytes FIRST-LAST/SIZE`",
                "Content-Disposition": "`attachment` with a file name",
                "Location": "S3 storage: the pre-signed URL of the 307",
            },
            conditional=True,
        ),
        Operation(
            paths.AGGREGATION,
            "A job's aggregations",
            "Each domain's totals and the aggregations the domain file declares for it "
            "(counts by columns, sums, min and max, distinct counts), computed by the "
            "database over the whole job: the same object as the stream's `aggregation` "
            "line. Computed once, on first request or by a stream, then kept with the job; "
            "this request waits while they are computed.",
            (200, "The aggregations.", "application/json", p.JobAggregation),
            params=(_job_id(),),
            errors=tuple(
                e for e in _STREAM_ERRORS if e not in (Draining, InvalidToken, TokenJobMismatch)
            ),
        ),
        Operation(
            paths.DOMAINS,
            "Configured domains",
            "Each domain's name, columns and filterable columns.",
            (200, "The domains.", "application/json", p.DomainList),
        ),
        Operation(
            paths.DEMO_CIDS,
            "Random demo container ids",
            "Only on the embedded demo database (`not_found` on a configured database).",
            (200, "The container ids.", "application/json", p.DemoCids),
            params=(
                Param(
                    "n",
                    "query",
                    f"How many (default {limits.DEMO_CIDS_DEFAULT}).",
                    {"type": "integer", "minimum": 1, "maximum": settings.max_cids},
                ),
            ),
            errors=(BadRequest, NotFound, SourceUnavailable),
        ),
        _outside_api(
            paths.HEALTHZ,
            "Liveness",
            "200 while the process serves requests.",
            "Alive.",
            "application/json",
            p.Health,
        ),
        _outside_api(
            paths.READYZ,
            "Readiness",
            "Checks the job store and the source; 503 while draining.",
            "Ready.",
            "application/json",
            p.Health,
            errors=(Draining, StoreUnavailable, SourceUnavailable),
        ),
        _outside_api(
            paths.METRICS,
            "Prometheus metrics",
            "Text exposition format.",
            "The metrics.",
            "text/plain",
            {"type": "string"},
        ),
        _outside_api(
            paths.OPENAPI_JSON,
            "This document",
            "OpenAPI 3.1.",
            "The document.",
            "application/json",
            {"type": "object"},
        ),
        _outside_api(
            paths.DOCS,
            "This reference, as a page",
            "The document rendered as HTML.",
            "The page.",
            "text/html",
            {"type": "string"},
        ),
        _outside_api(
            paths.FRONTEND,
            "The browser front end",
            "The demo page and reference consumer (static files).",
            "The page.",
            "text/html",
            {"type": "string"},
        ),
    )
