"""The OpenAPI 3.1 document served at /openapi.json, built from the operations table.

The schemas are generated from the msgspec structs of `svc.protocol`, never written by
hand; the error responses of each operation from the error classes it lists.
"""

from __future__ import annotations

from typing import Any

import msgspec

from svc import __version__
from svc import protocol as p
from svc.config import Settings
from svc.errors import TraceError, Unauthorized
from svc.http.openapi.operations import operations
from svc.http.problems import PROBLEM

REF = "#/components/schemas/{name}"


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


def _problem_response(errors: list[type[TraceError]]) -> dict[str, Any]:
    """A plain `$ref` to `Problem` (generators cannot merge an `allOf` that narrows it);
    the codes this status may carry are listed in the description and in `x-codes`."""
    retry = any(e.retryable for e in errors)
    response: dict[str, Any] = {
        "description": "; ".join(f"`{e.code}`: {e.title}" for e in errors),
        "content": {PROBLEM: {"schema": {"$ref": REF.format(name="Problem")}}},
        "x-codes": sorted({e.code for e in errors}),
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


_RECORD = {
    "title": "Record",
    "description": "One record: an object keyed by column (`format=objects`) or an array of "
    "values in the order of the domain's columns (`format=arrays`).",
    "anyOf": [{"type": "object", "additionalProperties": True}, {"type": "array", "items": {}}],
}
_VALUE = {"description": "A column's value: text, a number, or null"}  # any JSON value


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _complete_for_generators(schemas: dict[str, Any]) -> None:
    """What client generators need beyond valid JSON Schema: every array has `items`
    (openapi-python-client drops a schema whose array has none, and every schema that
    refers to it), and every enum of a property a named schema (datamodel-code-generator
    numbers the colliding names of inline ones: `Type1`, `Type2`, ...)."""
    schemas["Record"] = _RECORD
    schemas["Records"]["properties"]["data"]["items"] = {"$ref": REF.format(name="Record")}
    schemas["Page"]["properties"]["data"]["items"] = {"$ref": REF.format(name="Record")}
    schemas["Group"]["properties"]["key"]["items"] = _VALUE
    enums: dict[str, Any] = {}
    for name, schema in schemas.items():
        schema.setdefault("title", name)
        for prop, sub in schema.get("properties", {}).items():
            if "enum" in sub:  # a named schema of its own: `RecordsType`, `ExportStatusState`
                title = name + _camel(prop)
                text = all(isinstance(v, str) for v in sub["enum"])
                enums[title] = {"title": title, **({"type": "string"} if text else {}), **sub}
                sub.clear()
                sub["$ref"] = REF.format(name=title)
    schemas.update(enums)


def components(domains: list[str]) -> dict[str, Any]:
    """The schemas of every wire struct, and `Line`: the union of the NDJSON lines.

    A job request's domains are the configured ones: their names are `DomainName`.
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
    _complete_for_generators(schemas)
    schemas["DomainName"] = {"title": "DomainName", "type": "string", "enum": domains}
    domain_name = {"$ref": REF.format(name="DomainName")}
    for variant in schemas["JobRequest"]["properties"]["domains"]["anyOf"]:
        if variant.get("type") == "array":
            variant["items"] = domain_name
    for field in ("where", "select"):
        for variant in schemas["JobRequest"]["properties"][field]["anyOf"]:
            if variant.get("type") == "object":  # keyed by the job's domains
                variant["propertyNames"] = domain_name
    return schemas


_REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Your id for this request (1-64 printable ASCII characters), echoed back "
    "and logged; one is made when it is missing or not valid.",
    "schema": {"type": "string"},
}


_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "ETags you hold (or `*`): 304 without a body when one is current.",
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
        if op.conditional:
            responses["304"] = {
                "description": "Not modified: `If-None-Match` named the current `ETag`.",
                "headers": {"ETag": {"description": "The ETag", "schema": {"type": "string"}}},
            }
        for code, errs in sorted(by_status.items()):
            responses[str(code)] = _problem_response(errs)
        operation: dict[str, Any] = {
            "operationId": op.endpoint.name,  # generated clients name their calls by it
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
            + ([_IF_NONE_MATCH] if op.conditional else [])
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
