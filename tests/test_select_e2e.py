"""Jobs with a column selection (`select`) end to end, on real servers and a real SQLite file.

The ground truth is a direct SQL query of the selected columns (the filter written by
hand). Everything a job serves carries those columns and no other: the stream (objects
and arrays, resumed after cuts), `since` and `offset` pages, CSV pages and downloads,
export files, and the Python client; totals and aggregations stay those of the job's rows,
and a token of the job is refused on any other job.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import gzip
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from svc.client import AsyncTraceClient, TraceClient
from svc.core.csv_cells import BOM
from tests.support import (
    DOMAINS,
    Row,
    assert_problem,
    assert_rows_equal,
    expected_rows,
    iter_lines,
    last_since,
    read_csv,
    records_of,
    records_union,
)
from tests.support.exports import finished, start_export
from tests.support.servers import ServerProcess, start_server
from tests.support.walks import page_walk, read_through_random_cuts, read_until_cut

SELECT: dict[str, list[str]] = {
    "history": ["EVENTNAME", "TXNDATE", "EVENTNAME"],  # the key is added first
    "materials": ["QTYCONSUMED", "CONTAINERID", "UOM"],  # the key where it is named
}
COLUMNS = {
    "history": ["CONTAINERID", "EVENTNAME", "TXNDATE"],
    "materials": ["QTYCONSUMED", "CONTAINERID", "UOM"],
}
# A filter on a column the selection leaves out, and the same by hand for the direct query.
WHERE = {"materials": {"MATERIALPARTNAME": ["EPOXY-8200", "AU-WIRE-25UM", "DIE-A7X"]}}
PREDICATES = {"materials": "MATERIALPARTNAME IN ('EPOXY-8200', 'AU-WIRE-25UM', 'DIE-A7X')"}


def post_job(base: str, cids: list[str], **fields: Any) -> httpx.Response:
    body = {"container_ids": cids, "domains": ["history", "materials"], **fields}
    return httpx.post(f"{base}/api/trace/job", json=body, timeout=30)


def make_job(base: str, cids: list[str], **fields: Any) -> dict[str, Any]:
    r = post_job(base, cids, **fields)
    assert r.status_code == 201, r.text
    job: dict[str, Any] = r.json()
    return job


@pytest.fixture(scope="module")
def cids(demo_cids: list[str]) -> list[str]:
    return sorted(demo_cids)[:1200]  # two 1000-CID chunks: batches cross a chunk boundary


@pytest.fixture(scope="module")
def job(server: ServerProcess, cids: list[str]) -> dict[str, Any]:
    return make_job(server.url, cids, select=SELECT, where=WHERE)


@pytest.fixture(scope="module")
def truth(demo_db: Path, cids: list[str]) -> dict[str, list[Row]]:
    """The selected columns straight from SQL, in keyset order."""
    out = {}
    for name, columns in COLUMNS.items():
        narrowed = dataclasses.replace(DOMAINS[name], columns=tuple(columns), select=())
        out[name] = expected_rows(demo_db, cids, narrowed, PREDICATES.get(name, ""))
    return out


def test_the_job_shows_its_canonical_selection(server: ServerProcess, job: dict[str, Any]) -> None:
    assert job["select"] == COLUMNS
    described = httpx.get(server.url + job["links"]["self"]).json()
    assert described["select"] == COLUMNS
    plain = make_job(server.url, ["a1"])
    assert plain["select"] is None


@pytest.mark.parametrize("fmt", ["objects", "arrays"])
def test_records_carry_only_the_selected_columns(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]], fmt: str
) -> None:
    lines = list(iter_lines(server.url, job["job_id"], format=fmt))
    starts = [x for x in lines if x["type"] == "domain_start"]
    assert starts and all(x["columns"] == COLUMNS[x["domain"]] for x in starts)
    for line in lines:
        if line["type"] == "records":
            for record in line["data"]:
                if fmt == "objects":  # the selected keys, in the selection's order
                    assert list(record) == COLUMNS[line["domain"]]
                else:
                    assert len(record) == len(COLUMNS[line["domain"]])
    assert records_of(lines) == truth
    for domain, rows in truth.items():  # totals are the job's rows, whatever its columns
        start = next(x for x in starts if x["domain"] == domain and x["total"] is not None)
        assert start["total"] == len(rows)
    assert lines[-1]["type"] == "complete"
    assert lines[-1]["total_records"] == sum(len(r) for r in truth.values())


def test_aggregations_are_the_rows_not_the_columns(
    server: ServerProcess, job: dict[str, Any], cids: list[str]
) -> None:
    """Aggregations (over columns the selection leaves out, too) equal those of the same
    job without a selection."""
    plain = make_job(server.url, cids, where=WHERE)
    selected = list(iter_lines(server.url, job["job_id"]))[-2]
    unselected = list(iter_lines(server.url, plain["job_id"]))[-2]
    assert selected["type"] == unselected["type"] == "aggregation"
    assert selected["data"] == unselected["data"]
    assert set(selected["data"]["aggregations"]["history"]) >= {"events", "qty"}


@pytest.mark.parametrize("k", [2, 4, 7])
def test_cut_after_kth_line_then_resume(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]], k: int
) -> None:
    first = read_until_cut(server, job["job_id"], None, k)
    rest = list(iter_lines(server.url, job["job_id"], last_since(first)))
    assert rest[-1]["type"] == "complete"
    assert records_union(first, rest) == truth


def test_repeated_random_byte_cuts_lose_and_repeat_nothing(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]]
) -> None:
    parts, cuts = read_through_random_cuts(server, job["job_id"], 2929, 120_000)
    assert cuts >= 3  # it was cut, and resumed, several times
    assert records_union(*parts) == truth


@pytest.mark.parametrize("limit", [333, 1000])
def test_since_pages_carry_the_selected_columns(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]], limit: int
) -> None:
    for domain, rows in truth.items():
        assert page_walk(server, job["job_id"], domain, limit) == rows


def test_offset_and_array_pages_carry_the_selected_columns(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]]
) -> None:
    url = f"{server.url}/api/trace/job/{job['job_id']}/result"
    for domain, rows in truth.items():
        offset = len(rows) // 2
        page = httpx.get(url, params={"domain": domain, "offset": offset, "limit": 50}).json()
        assert [list(x) for x in page["data"]] == [COLUMNS[domain]] * len(page["data"])
        assert [tuple(x.values()) for x in page["data"]] == rows[offset : offset + 50]
        params: dict[str, str | int] = {"domain": domain, "limit": 50, "format": "arrays"}
        arrays = httpx.get(url, params=params).json()
        assert arrays["columns"] == COLUMNS[domain] and arrays["total"] == len(rows)
        assert [tuple(x) for x in arrays["data"]] == rows[:50]


def test_csv_pages_and_downloads_hold_only_the_selected_columns(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]]
) -> None:
    base = f"{server.url}/api/trace/job/{job['job_id']}"
    for domain, rows in truth.items():
        r = httpx.get(f"{base}/export.csv", params={"domain": domain}, timeout=60)
        assert r.status_code == 200, r.text
        header, *cells = read_csv(r.content, bom=True)
        assert header == COLUMNS[domain]
        assert_rows_equal(cells, rows, sheet=True)
        params: dict[str, str | int] = {"domain": domain, "format": "csv", "limit": 40, "offset": 5}
        r = httpx.get(f"{base}/result", params=params)
        assert r.status_code == 200, r.text
        header, *cells = read_csv(r.content, bom=False)
        assert header == COLUMNS[domain]
        assert_rows_equal(cells, rows[5:45], sheet=False)


@pytest.mark.parametrize("fmt", ["ndjson.gz", "csv.zip"])
def test_export_files_hold_only_the_selected_columns(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]], fmt: str
) -> None:
    status = finished(server.url, start_export(server.url, job["job_id"], fmt))
    r = httpx.get(server.url + status["links"]["file"], timeout=60)
    assert r.status_code == 200, r.text
    if fmt == "ndjson.gz":
        got: dict[str, list[Row]] = {}
        for line in gzip.decompress(r.content).splitlines():
            record = json.loads(line)
            domain = record.pop("_domain")
            assert list(record) == COLUMNS[domain]
            got.setdefault(domain, []).append(tuple(record.values()))
        assert got == truth
        return
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        for domain, rows in truth.items():
            text = zf.read(f"{domain}.csv").decode("utf-8")
            assert text.startswith(BOM)
            header, *cells = csv.reader(io.StringIO(text[1:], newline=""))
            assert header == COLUMNS[domain]
            assert_rows_equal(cells, rows, sheet=True)


def test_a_selected_jobs_token_is_refused_on_every_other_job(
    server: ServerProcess, job: dict[str, Any], cids: list[str]
) -> None:
    """The selection is part of the job: a token cannot carry a position into other
    columns (same CIDs and filter; no selection, another, or the same in another job)."""
    since = last_since(read_until_cut(server, job["job_id"], None, 4))
    assert since is not None
    for select in (None, {"history": ["COMMENTS"]}, SELECT):
        other = make_job(server.url, cids, where=WHERE, select=select)
        base = f"{server.url}/api/trace/job/{other['job_id']}"
        for route in ("/stream", "/result", "/export.csv"):
            assert_problem(
                httpx.get(base + route, params={"since": since}), 400, "token_job_mismatch"
            )
    own = httpx.get(f"{server.url}/api/trace/job/{job['job_id']}/result", params={"since": since})
    assert own.status_code == 200


@pytest.mark.parametrize(
    ("select", "code", "words"),
    [
        ({"history": ["EVENTNAME", "NOPE"]}, "invalid_select", ["history.NOPE", "TXNDATE"]),
        ({"history": ["eventname"]}, "invalid_select", ["history.eventname"]),
        ({"history": ['"EVENTNAME"']}, "invalid_select", ["history."]),
        ({"history": []}, "invalid_select", ["select.history"]),
        ({"history": "EVENTNAME"}, "invalid_select", ["select.history"]),
        ({"history": [42]}, "invalid_select", ["select.history", "42"]),
        ({"history": ["X" * 131]}, "invalid_select", ["select.history"]),
        ({"history": ["CONTAINERID"], "other": ["A"]}, "unknown_domain", ["other"]),
    ],
)
def test_bad_selections_are_problems_naming_the_column(
    server: ServerProcess, select: dict[str, Any], code: str, words: list[str]
) -> None:
    r = httpx.post(
        f"{server.url}/api/trace/job",
        json={"container_ids": ["a1"], "domains": ["history"], "select": select},
    )
    body = assert_problem(r, 400, code)
    for word in words:
        assert word in body["detail"], body["detail"]


def test_the_client_creates_a_selected_job(
    server: ServerProcess, cids: list[str], truth: dict[str, list[Row]]
) -> None:
    with TraceClient(server.url) as client:
        job = client.create_job(cids, ["history"], select={"history": ["TXNDATE", "EVENTNAME"]})
        records = [record for _, record in client.iter_records(job.job_id)]
    assert job.select == {"history": ["CONTAINERID", "TXNDATE", "EVENTNAME"]}
    assert {tuple(r) for r in records} == {("CONTAINERID", "TXNDATE", "EVENTNAME")}
    assert [(r["CONTAINERID"], r["EVENTNAME"], r["TXNDATE"]) for r in records] == truth["history"]


def test_the_async_client_creates_a_selected_job(
    server: ServerProcess, cids: list[str], truth: dict[str, list[Row]]
) -> None:
    async def main() -> tuple[Any, list[Any]]:
        async with AsyncTraceClient(server.url) as client:
            select = {"materials": SELECT["materials"]}
            job = await client.create_job(cids, ["materials"], select=select, where=WHERE)
            return job, [r async for _, r in client.iter_records(job.job_id)]

    job, records = asyncio.run(main())
    assert job.select == {"materials": COLUMNS["materials"]}
    assert [tuple(r.values()) for r in records] == truth["materials"]


def test_rows_path_and_another_replica_carry_the_selection(
    redis_url: str,
    demo_db: Path,
    cids: list[str],
    truth: dict[str, list[Row]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Replicas share the job through Redis; one builds pages as JSON in SQLite, the other
    reads rows (TRACE_DATABASE_JSON=0): a stream cut on one resumes on the other."""
    prefix = f"select-{uuid.uuid4().hex[:8]}:"
    env = {"TRACE_REDIS_URL": redis_url, "TRACE_REDIS_PREFIX": prefix}
    env["TRACE_STREAM_BATCH_SIZE"] = "300"
    a = start_server(tmp_path_factory.mktemp("select-a"), demo_db, env)
    try:
        b = start_server(
            tmp_path_factory.mktemp("select-b"), demo_db, {**env, "TRACE_DATABASE_JSON": "0"}
        )
        try:
            job = make_job(a.url, cids, select=SELECT, where=WHERE)
            first = read_until_cut(a, job["job_id"], None, 6)
            rest = list(iter_lines(b.url, job["job_id"], last_since(first)))
            whole = list(iter_lines(b.url, job["job_id"], format="arrays"))
        finally:
            b.stop()
    finally:
        a.stop()
    assert records_union(first, rest) == truth
    assert records_of(whole) == truth


def test_a_job_whose_columns_the_domain_file_no_longer_declares_is_refused(
    demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The domain file changed under a stored job: a clear 400, never a query."""
    data = tmp_path_factory.mktemp("select-changed")
    before = start_server(data, demo_db)
    try:
        job = make_job(before.url, ["a1"], select={"history": ["COMMENTS"]})
    finally:
        before.stop()
    text = (Path(__file__).parent.parent / "svc" / "default_domains.toml").read_text()
    narrower = data / "domains.toml"
    narrower.write_text(text.replace('"EMPLOYEENAME", "COMMENTS",', '"EMPLOYEENAME",'))
    after = start_server(data, demo_db, {"TRACE_DOMAINS": str(narrower)})
    try:
        base = f"{after.url}/api/trace/job/{job['job_id']}"
        for url in (base, base + "/stream", base + "/result?domain=history"):
            body = assert_problem(httpx.get(url), 400, "invalid_select")
            assert "history.COMMENTS" in body["detail"], body["detail"]
    finally:
        after.stop()


def test_domains_name_the_columns_a_selection_takes_and_the_key(server: ServerProcess) -> None:
    domains = {d["name"]: d for d in httpx.get(f"{server.url}/api/domains").json()["domains"]}
    assert domains["history"]["key"] == domains["materials"]["key"] == "CONTAINERID"
    assert set(COLUMNS["history"]) < set(domains["history"]["columns"])


def test_the_openapi_document_describes_select(server: ServerProcess) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    schemas = doc["components"]["schemas"]
    variants = schemas["JobRequest"]["properties"]["select"]["anyOf"]
    keyed = next(v for v in variants if v.get("type") == "object")
    assert keyed["propertyNames"] == {"$ref": "#/components/schemas/DomainName"}
    assert schemas["DomainName"]["enum"] == ["history", "materials"]
    assert keyed["additionalProperties"]["type"] == "array"
    assert keyed["additionalProperties"]["minItems"] == 1
    assert "select" in schemas["JobCreated"]["properties"]
    assert "select" in schemas["JobDescription"]["properties"]
    assert "invalid_select" in schemas["ProblemCode"]["enum"]
    create = doc["paths"]["/api/trace/job"]["post"]
    assert "`select`" in create["description"] and "400" in create["responses"]
