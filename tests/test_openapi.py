"""The contract: /openapi.json is valid OpenAPI 3.1, covers every route and code, and /docs
renders it; the NDJSON lines of a real stream match the documented line schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.routing import Mount, Route

from svc.config import Settings
from svc.core.export_record import ExportRecord
from svc.engine.service import Service
from svc.http import limits, openapi, paths
from svc.http.app import create_app
from svc.http.wire import job_links, status_of
from tests.support import create_job, iter_lines
from tests.support.servers import ServerProcess


@pytest.fixture(scope="module")
def doc(server: ServerProcess) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    return body


def line_validator(doc: dict[str, Any]) -> jsonschema.protocols.Validator:
    schema = {"$ref": "#/components/schemas/Line", "components": doc["components"]}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    validate(openapi.document(Settings(api_keys=["k"]), ["history"]))  # with the 401s and security


def test_every_route_of_the_app_is_documented(doc: dict[str, Any]) -> None:
    async def factory() -> Service:
        raise AssertionError("not started")

    app = create_app(factory)
    assert any(isinstance(r, Mount) for r in app.routes), "the front end is mounted"
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path in ("", "/") and "/" in doc["paths"]
            continue
        assert isinstance(route, Route)
        if route.name == "api_fallback":  # 404 or 405 for any other /api path: global
            continue
        assert route.path in doc["paths"], f"{route.path} is missing from /openapi.json"
        for method in (route.methods or set()) - {"HEAD"}:
            assert method.lower() in doc["paths"][route.path], f"{method} {route.path}"
    documented = {(path, m) for path, ops in doc["paths"].items() for m in ops}
    served = {
        (r.path, m.lower()) for r in app.routes if isinstance(r, Route) for m in r.methods or ()
    }
    assert documented - {("/", "get")} <= served, "documented routes the app does not serve"


def test_every_problem_code_is_documented(doc: dict[str, Any]) -> None:
    codes = set(doc["components"]["schemas"]["ProblemCode"]["enum"])
    assert doc["components"]["schemas"]["Problem"]["properties"]["code"] == {
        "$ref": "#/components/schemas/ProblemCode"
    }
    assert {e.code for e in openapi.all_errors()} <= codes
    in_responses = set()
    for ops in doc["paths"].values():
        for op in ops.values():
            for resp in op["responses"].values():
                schema = resp.get("content", {}).get("application/problem+json", {}).get("schema")
                if schema:  # plain, as generators take it; the codes beside it
                    assert schema == {"$ref": "#/components/schemas/Problem"}
                    assert all(f"`{code}`" in resp["description"] for code in resp["x-codes"])
                    in_responses |= set(resp["x-codes"])
    # Every code has a route that answers it; these answer any route, or none on purpose.
    any_route = {"internal", "method_not_allowed", "unauthorized", "http_error"}
    assert codes - in_responses == any_route | {"headers_too_large"}  # the protocol's
    keyed = openapi.document(Settings(api_keys=["k"]), ["history"])
    assert "unauthorized" in str(keyed["paths"]["/api/trace/job"]["post"]["responses"]["401"])


def _walk(node: Any, at: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield at, node
        for key, value in node.items():
            yield from _walk(value, f"{at}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{at}/{i}")


def test_schemas_are_complete_for_client_generators(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for at, node in _walk(doc):
        if node.get("type") == "array":
            assert "items" in node or "prefixItems" in node, f"{at}: an array without items"
        if "enum" in node and "/properties/" in at:
            raise AssertionError(f"{at}: an inline enum (generators number their names)")
        assert "allOf" not in node, f"{at}: generators cannot merge allOf"
    titles = [schema.get("title") for schema in schemas.values()]
    assert titles == list(schemas), "every schema titled by its own (unique) name"
    assert schemas["RecordsType"] == {"title": "RecordsType", "type": "string", "enum": ["records"]}
    operation_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(set(operation_ids)) == len(operation_ids)
    assert "result_page" in operation_ids and "create_job" in operation_ids


def test_stream_is_documented_as_ndjson_lines(doc: dict[str, Any]) -> None:
    ok = doc["paths"]["/api/trace/job/{job_id}/stream"]["get"]["responses"]["200"]
    assert ok["content"]["application/x-ndjson"]["schema"] == {"$ref": "#/components/schemas/Line"}
    line = doc["components"]["schemas"]["Line"]
    assert line["discriminator"]["propertyName"] == "type"
    tags = set(line["discriminator"]["mapping"])
    assert tags == {
        "meta",
        "domain_start",
        "records",
        "domain_end",
        "aggregating",
        "aggregation",
        "complete",
        "error",
        "reconnect",
        "heartbeat",
    }
    assert len(line["oneOf"]) == len(tags)


def test_docs_page_renders_the_document_without_outside_resources(
    server: ServerProcess, doc: dict[str, Any]
) -> None:
    r = httpx.get(f"{server.url}/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    for path in doc["paths"]:
        assert f"<code>{path}</code>" in page
    for name in doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no CDN, no outside links"
    assert '<link rel="stylesheet" href="/style.css">' in page
    assert httpx.get(f"{server.url}/style.css").status_code == 200


@pytest.mark.parametrize("fmt", ["objects", "arrays"])
def test_every_line_of_a_real_stream_matches_the_line_schema(
    server: ServerProcess, doc: dict[str, Any], demo_cids: list[str], fmt: str
) -> None:
    validator = line_validator(doc)
    job = create_job(server.url, demo_cids[:120])
    lines = list(iter_lines(server.url, job["job_id"], format=fmt))
    assert lines[-1]["type"] == "complete"
    for line in lines:
        validator.validate(line)
    # A resumed stream too (meta with resumed, the current domain's domain_start again).
    since = next(x["since"] for x in lines if x["type"] == "records")
    for line in iter_lines(server.url, job["job_id"], since=since, format=fmt):
        validator.validate(line)
    # And the schema rejects what is not a line.
    for bad in ({"type": "nope"}, {"type": "records", "domain": "x"}, {}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(bad)


def test_arrays_pages_carry_their_columns(server: ServerProcess, demo_cids: list[str]) -> None:
    job = create_job(server.url, demo_cids[:5])
    url = f"{server.url}/api/trace/job/{job['job_id']}/result"
    arrays = httpx.get(url, params={"domain": "history", "format": "arrays", "limit": 2}).json()
    domains = httpx.get(f"{server.url}/api/domains").json()["domains"]
    assert arrays["columns"] == next(d["columns"] for d in domains if d["name"] == "history")
    assert len(arrays["data"][0]) == len(arrays["columns"])
    objects = httpx.get(url, params={"domain": "history", "limit": 2}).json()
    assert objects["columns"] is None


def test_csv_is_documented_as_text_csv(doc: dict[str, Any]) -> None:
    export = doc["paths"]["/api/trace/job/{job_id}/export.csv"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv"}
    assert "Content-Disposition" in export["responses"]["200"]["headers"]
    assert {p["name"] for p in export["parameters"]} >= {"domain", "since", "offset", "header"}
    page = doc["paths"]["/api/trace/job/{job_id}/result"]["get"]
    assert set(page["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    fmt = next(p for p in page["parameters"] if p["name"] == "format")
    assert fmt["schema"]["enum"] == ["objects", "arrays", "csv"]


def test_the_document_reads_the_tables_of_routes_and_limits() -> None:
    doc = openapi.document(Settings(max_cids=7), ["history"])
    assert set(doc["paths"]) == {e.path for e in (*paths.ROUTED, paths.FRONTEND)}
    create = doc["paths"][paths.CREATE_JOB.path]["post"]["description"]
    assert f"{limits.job_body_bytes(7)} bytes" in create
    for endpoint in (paths.RESULT, paths.EXPORT_CSV):
        params = doc["paths"][endpoint.path]["get"]["parameters"]
        offset = next(p for p in params if p["name"] == "offset")
        assert offset["schema"]["maximum"] == limits.MAX_OFFSET


def test_links_are_the_routes_of_the_table() -> None:
    links = job_links("j1")
    assert (links.self_, links.stream, links.result) == (
        "/api/trace/job/j1",
        "/api/trace/job/j1/stream",
        "/api/trace/job/j1/result",
    )
    record = ExportRecord("e1", "j1", None, "csv.zip", "queued", 0.0, 0.0, 86400.0)
    status = status_of(record)
    assert (status.links.self_, status.links.file, status.links.job) == (
        "/api/trace/job/j1/exports/e1",
        "/api/trace/job/j1/exports/e1/file",
        "/api/trace/job/j1",
    )
    assert status.expires_at == "1970-01-02T00:00:00Z"
