"""The HTTP contract: the OpenAPI 3.1 document served at /openapi.json, and /docs.

Every route and its parameters are described once, in `OPERATIONS`; the schemas are
generated from the msgspec structs of `svc.protocol`, never written by hand. A test
fails when a route of the app is missing here. `/docs` renders this same document as
one HTML page (no script, no CDN), styled by the front end's stylesheet.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import msgspec

from svc import __version__
from svc import protocol as p
from svc.config import Settings
from svc.errors import (
    BadRequest,
    Draining,
    ExportNotFound,
    ExportNotReady,
    ExportStorageFull,
    InvalidFilter,
    InvalidToken,
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
    Unauthorized,
    UnknownDomain,
    UnsupportedMediaType,
)

REF = "#/components/schemas/{name}"
NDJSON = "application/x-ndjson"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path, query
    description: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    ok: tuple[int, str, str, Any]  # status, description, media type, struct type or schema
    params: tuple[Param, ...] = ()
    body: type[msgspec.Struct] | None = None
    errors: tuple[type[TraceError], ...] = ()
    api: bool = True  # under /api: API keys apply
    headers: dict[str, str] = field(default_factory=dict)  # response headers of `ok`
    also: tuple[tuple[str, Any], ...] = ()  # other media types of `ok`, and their schemas


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
    {"type": "string", "enum": ["objects", "arrays"], "default": "objects"},
)

_PAGE_FORMAT = Param(
    "format",
    "query",
    "`objects`: each record a JSON object keyed by column; `arrays`: each record an array "
    "of values in the order of `columns`; `csv`: the page as `text/csv` (RFC 4180, UTF-8 "
    "without a BOM, a header row, values as they are), `next` only in the `Link` header.",
    {"type": "string", "enum": ["objects", "arrays", "csv"], "default": "objects"},
)

CSV_TEXT = {
    "type": "string",
    "description": "RFC 4180 CSV in UTF-8: a header row of the domain's columns, then one "
    "row per record; CRLF line ends; NULL is an empty cell; numbers as JSON writes them; "
    "dates ISO 8601; bytes base64.",
}


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
    TooManyRequests,
    SourceError,
    SourceMisconfigured,
    Overloaded,
    Draining,
    StoreUnavailable,
    SourceUnavailable,
)


def operations(settings: Settings, domains: list[str]) -> tuple[Operation, ...]:
    """Every route of the service, with the limits of these settings and domains."""
    return (
        Operation(
            "post",
            "/api/trace/job",
            "Create a job",
            "Saves the query (the sorted, de-duplicated container ids and the domains) for "
            f"{settings.job_ttl} s. Totals start counting in the background. The body may "
            f"hold at most {settings.max_cids} distinct container ids (`too_many_cids`) and "
            f"{settings.max_cids * 80 + 65536} bytes (`payload_too_large`). `where` narrows "
            "domains to the records that match its conditions, on the columns `GET "
            "/api/domains` lists as filterable (`invalid_filter` otherwise); the job applies "
            "it to its stream, pages, offsets, totals and tokens.",
            (201, "The job was created; `Location` is its URL.", "application/json", p.JobCreated),
            body=p.JobRequest,
            errors=(
                BadRequest,
                UnknownDomain,
                InvalidFilter,
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
            "get",
            "/api/trace/job/{job_id}",
            "Describe a job",
            "CID count, domains, times and, once counted, each domain's totals.",
            (200, "The job.", "application/json", p.JobDescription),
            params=(_job_id(),),
            errors=(JobNotFound, NotFound, UnknownDomain, StoreUnavailable),
        ),
        Operation(
            "get",
            "/api/trace/job/{job_id}/stream",
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
            "get",
            "/api/trace/job/{job_id}/result",
            "One page of a domain",
            "Records of one domain after `since`, from `offset`, or from the start. `next` "
            "(and the `Link: rel=next` header) is a `since` token; it also resumes a stream.",
            (200, "The page.", "application/json", p.Page),
            params=(
                _job_id(),
                Param(
                    "domain",
                    "query",
                    "The domain; may be left out with a `since` (which names it).",
                    {"type": "string", "enum": domains},
                ),
                Param(
                    "limit",
                    "query",
                    f"Records per page (default {settings.batch_size}).",
                    {"type": "integer", "minimum": 1, "maximum": settings.max_page_limit},
                ),
                _since(),
                Param(
                    "offset",
                    "query",
                    "Enter at the offset-th record (0-based) instead of a `since`; `next` "
                    "goes on by keyset.",
                    {"type": "integer", "minimum": 0, "maximum": 10**12},
                ),
                _PAGE_FORMAT,
            ),
            errors=tuple(e for e in _STREAM_ERRORS if e is not Draining),
            headers={"Link": 'The next page: `<URL>; rel="next"`', **_GZIP_HEADERS},
            also=(("text/csv", CSV_TEXT),),
        ),
        Operation(
            "get",
            "/api/trace/job/{job_id}/export.csv",
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
                Param(
                    "domain",
                    "query",
                    "The domain; may be left out with a `since` (which names it).",
                    {"type": "string", "enum": domains},
                ),
                _since(),
                Param(
                    "offset",
                    "query",
                    "Start at the offset-th record (0-based) instead of after a `since`.",
                    {"type": "integer", "minimum": 0, "maximum": 10**12},
                ),
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
            "post",
            "/api/trace/job/{job_id}/exports",
            "Export a job to a file",
            "Writes every record of the job to one file in the background: `ndjson.gz` (one "
            'record a line, `{"_domain": ..., <columns>}`) or `csv.zip` (one CSV file per '
            "domain). Poll the status URL (`Location`) until `state` is `done`, then download "
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
            "get",
            "/api/trace/job/{job_id}/exports/{export_id}",
            "An export's state",
            "`queued`, `running`, `done` or `failed`; the records written against the job's "
            "total; when done the file's size, its SHA-256 and the download link.",
            (200, "The export.", "application/json", p.ExportStatus),
            params=(_job_id(), _export_id()),
            errors=(JobNotFound, ExportNotFound, NotFound, UnknownDomain, StoreUnavailable),
        ),
        Operation(
            "get",
            "/api/trace/job/{job_id}/exports/{export_id}/file",
            "Download a finished export",
            "The file, with `Content-Length`, `ETag` (its SHA-256 in quotes) and "
            "`Accept-Ranges: bytes`. One `Range` (`bytes=a-b`, `bytes=a-`, `bytes=-n`) gets a "
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
        ),
        Operation(
            "get",
            "/api/trace/job/{job_id}/aggregation",
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
            "get",
            "/api/domains",
            "Configured domains",
            "Each domain's name, columns and filterable columns.",
            (200, "The domains.", "application/json", p.DomainList),
        ),
        Operation(
            "get",
            "/api/demo/cids",
            "Random demo container ids",
            "Only on the embedded demo database (`not_found` on a configured database).",
            (200, "The container ids.", "application/json", p.DemoCids),
            params=(
                Param(
                    "n",
                    "query",
                    "How many (default 100).",
                    {"type": "integer", "minimum": 1, "maximum": settings.max_cids},
                ),
            ),
            errors=(BadRequest, NotFound, SourceUnavailable),
        ),
        Operation(
            "get",
            "/healthz",
            "Liveness",
            "200 while the process serves requests.",
            (200, "Alive.", "application/json", p.Health),
            api=False,
        ),
        Operation(
            "get",
            "/readyz",
            "Readiness",
            "Checks the job store and the source; 503 while draining.",
            (200, "Ready.", "application/json", p.Health),
            errors=(Draining, StoreUnavailable, SourceUnavailable),
            api=False,
        ),
        Operation(
            "get",
            "/metrics",
            "Prometheus metrics",
            "Text exposition format.",
            (200, "The metrics.", "text/plain", {"type": "string"}),
            api=False,
        ),
        Operation(
            "get",
            "/openapi.json",
            "This document",
            "OpenAPI 3.1.",
            (200, "The document.", "application/json", {"type": "object"}),
            api=False,
        ),
        Operation(
            "get",
            "/docs",
            "This reference, as a page",
            "The document rendered as HTML.",
            (200, "The page.", "text/html", {"type": "string"}),
            api=False,
        ),
        Operation(
            "get",
            "/",
            "The browser front end",
            "The demo page and reference consumer (static files).",
            (200, "The page.", "text/html", {"type": "string"}),
            api=False,
        ),
    )


def all_errors() -> list[type[TraceError]]:
    """Every class of the error tree, parents first."""
    out: list[type[TraceError]] = []
    todo: list[type[TraceError]] = [TraceError]
    while todo:
        cls = todo.pop(0)
        if "code" in cls.__dict__:
            out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def _problem_response(status: int, errors: list[type[TraceError]]) -> dict[str, Any]:
    codes = sorted({e.code for e in errors})
    retry = any(e.retryable for e in errors)
    response: dict[str, Any] = {
        "description": "; ".join(f"`{e.code}`: {e.title}" for e in errors),
        "content": {
            PROBLEM: {
                "schema": {
                    "allOf": [
                        {"$ref": REF.format(name="Problem")},
                        {"properties": {"code": {"enum": codes}, "status": {"const": status}}},
                    ]
                }
            }
        },
    }
    if retry:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "string"},
            }
        }
    return response


def _schema_of(ok: Any) -> dict[str, Any]:
    if isinstance(ok, type):
        return {"$ref": REF.format(name=ok.__name__)}
    if isinstance(ok, str):
        return {"$ref": REF.format(name=ok)}
    schema: dict[str, Any] = ok
    return schema


def components(domains: list[str]) -> dict[str, Any]:
    """The schemas of every wire struct, and `Line`: the union of the NDJSON lines.

    A job request's domains are the configured ones: their names are listed.
    """
    structs = (
        p.JobRequest,
        p.JobCreated,
        p.JobDescription,
        p.Page,
        p.JobAggregation,
        p.DomainList,
        p.DemoCids,
        p.Health,
        p.Problem,
        p.ExportRequest,
        p.ExportStatus,
    )
    (line, *_), schemas = msgspec.json.schema_components((p.Line, *structs), ref_template=REF)
    # The tags make the line types mutually exclusive: exactly one matches.
    schemas["Line"] = {"oneOf": line["anyOf"], "discriminator": line["discriminator"]}
    schemas["Problem"]["properties"]["code"]["enum"] = sorted(
        {e.code for e in all_errors()} | {"http_error"}
    )
    for variant in schemas["JobRequest"]["properties"]["domains"]["anyOf"]:
        if variant.get("type") == "array":
            variant["items"]["enum"] = domains
    for variant in schemas["JobRequest"]["properties"]["where"]["anyOf"]:
        if variant.get("type") == "object":  # keyed by the job's domains
            variant["propertyNames"] = {"enum": domains}
    return schemas


_REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Your id for this request (1-64 printable ASCII characters), echoed back "
    "and logged; one is made when it is missing or not valid.",
    "schema": {"type": "string"},
}


def document(settings: Settings, domains: list[str]) -> dict[str, Any]:
    """The OpenAPI document of a service with these settings and configured domains."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations(settings, domains):
        status, description, media, ok = op.ok
        errors = list(op.errors)
        if op.api and settings.api_keys:
            errors.append(Unauthorized)
        by_status: dict[int, list[type[TraceError]]] = {}
        for err in errors:
            by_status.setdefault(err.status, []).append(err)
        ok_response: dict[str, Any] = {
            "description": description,
            "content": {
                media: {"schema": _schema_of(ok)},
                **{m: {"schema": _schema_of(schema)} for m, schema in op.also},
            },
            "headers": {
                "X-Request-ID": {
                    "description": "The request's id",
                    "schema": {"type": "string"},
                },
                **{
                    name: {"description": text, "schema": {"type": "string"}}
                    for name, text in op.headers.items()
                },
            },
        }
        responses: dict[str, Any] = {str(status): ok_response}
        for code, errs in sorted(by_status.items()):
            responses[str(code)] = _problem_response(code, errs)
        operation: dict[str, Any] = {
            "operationId": f"{op.method}_{op.path}".replace("/", "_").strip("_") or op.method,
            "summary": op.summary,
            "description": op.description,
            "parameters": [
                {
                    "name": prm.name,
                    "in": prm.where,
                    "required": prm.required or prm.where == "path",
                    "description": prm.description,
                    "schema": prm.schema,
                }
                for prm in op.params
            ]
            + [_REQUEST_ID],
            "responses": responses,
        }
        if op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema_of(op.body)}},
            }
        if op.api and settings.api_keys:
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
        paths.setdefault(op.path, {})[op.method] = operation
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "trace-stream",
            "version": __version__,
            "description": "Keyset-paginated, resumable NDJSON streams of manufacturing "
            "trace data. Before the first byte every error is `application/problem+json` "
            "(RFC 9457) with a stable `code`; 503s are retryable and carry `Retry-After`. "
            "Any other path answers 404 `not_found`, any other method 405 "
            "`method_not_allowed`. The codes: "
            + "; ".join(f"{e.status} `{e.code}`" for e in all_errors())
            + ".",
        },
        "paths": paths,
        "components": {
            "schemas": components(domains),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
    return doc


# --- /docs: the same document as one page ----------------------------------------------

_STYLE = """
.ref { max-width: 1100px; margin: 0 auto; padding: 20px; }
.ref section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
  padding: 14px 18px; margin: 0 0 16px; }
.ref h2 { margin: 18px 0 8px; }
.ref h3 { margin: 0 0 6px; font-size: 14px; }
.ref .verb { display: inline-block; min-width: 48px; font-family: var(--mono); font-weight: 600;
  color: var(--accent); }
.ref table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
.ref th, .ref td { text-align: left; vertical-align: top; padding: 4px 8px;
  border-bottom: 1px solid var(--line); }
.ref th { color: var(--muted); font-weight: 500; }
.ref code, .ref pre { font-family: var(--mono); font-size: 12px; }
.ref pre { background: var(--bg); padding: 8px; border-radius: 4px; overflow-x: auto; margin: 0; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _md(text: str) -> str:
    """Escape, then render `code` spans (the only markup the descriptions use)."""
    parts = _e(text).split("`")
    return "".join(f"<code>{s}</code>" if i % 2 else s for i, s in enumerate(parts))


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    if "allOf" in schema:
        return _type(schema["allOf"][0])
    if "anyOf" in schema or "oneOf" in schema:
        return " | ".join(_type(s) for s in schema.get("anyOf", schema.get("oneOf", [])))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    extra = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "default") if k in schema]
    if "enum" in schema:
        extra.insert(0, " | ".join(str(v) for v in schema["enum"]))
    return _e(kind) + (f" <span class=muted>({_e(', '.join(extra))})</span>" if extra else "")


def render_docs(doc: dict[str, Any]) -> str:
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(doc['info']['title'])}: API reference</title>",
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="/style.css">',
        f"<style>{_STYLE}</style></head><body>",
        '<header class="topbar"><div class="brand"><span class="brand-mark"></span>',
        f"<h1>{_e(doc['info']['title'])} {_e(doc['info']['version'])}</h1>",
        '<span class="brand-sub">API reference, from <a style="color:inherit" '
        'href="/openapi.json">/openapi.json</a></span></div></header><main class="ref">',
        f"<p>{_md(doc['info']['description'])}</p><h2>Endpoints</h2>",
    ]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            out.append(
                f'<section id="{_e(op["operationId"])}"><h3><span class="verb">'
                f"{_e(method.upper())}</span> <code>{_e(path)}</code> · {_e(op['summary'])}</h3>"
                f"<p>{_md(op['description'])}</p>"
            )
            params = op.get("parameters", [])
            if params:
                out.append(
                    "<table><tr><th>parameter</th><th>in</th><th>type</th><th>what</th></tr>"
                )
                for prm in params:
                    req = " <span class=muted>required</span>" if prm.get("required") else ""
                    out.append(
                        f"<tr><td><code>{_e(prm['name'])}</code>{req}</td><td>{_e(prm['in'])}"
                        f"</td><td>{_type(prm['schema'])}</td><td>{_md(prm['description'])}"
                        "</td></tr>"
                    )
                out.append("</table>")
            if "requestBody" in op:
                for media, content in op["requestBody"]["content"].items():
                    out.append(f"<p>Body: <code>{_e(media)}</code> {_type(content['schema'])}</p>")
            out.append("<table><tr><th>status</th><th>body</th><th>when</th></tr>")
            for status, resp in op["responses"].items():
                bodies = ", ".join(
                    f"<code>{_e(m)}</code> {_type(c['schema'])}"
                    for m, c in resp.get("content", {}).items()
                )
                out.append(
                    f"<tr><td>{_e(status)}</td><td>{bodies}</td><td>{_md(resp['description'])}"
                    "</td></tr>"
                )
            out.append("</table></section>")
    out.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        out.append(f'<section id="schema-{_e(name)}"><h3>{_e(name)}</h3>')
        if schema.get("description"):
            out.append(f"<p>{_md(schema['description'])}</p>")
        if "properties" in schema:
            required = set(schema.get("required", []))
            out.append("<table><tr><th>field</th><th>type</th></tr>")
            for prop, sub in schema["properties"].items():
                req = "" if prop in required else " <span class=muted>optional</span>"
                out.append(f"<tr><td><code>{_e(prop)}</code>{req}</td><td>{_type(sub)}</td></tr>")
            out.append("</table>")
        else:
            out.append(f"<p>{_type(schema)}</p>")
        out.append("</section>")
    out.append("</main></body></html>")
    return "\n".join(out)
