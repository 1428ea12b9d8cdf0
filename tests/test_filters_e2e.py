"""Filtered jobs end to end, on real servers and a real SQLite file.

The ground truth is a direct SQL query with the filter written by hand. Everything a job
serves honours its filter: the stream, resumes after cuts (by line, by random byte, through
a cutting proxy with the Python client, on another replica), `since` and `offset` pages,
totals, and tokens (a filtered job's token is refused on any other job).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from svc.client import AsyncTraceClient, Retry, TraceClient
from tests.support import (
    DOMAINS,
    Row,
    create_job,
    expected_rows,
    iter_lines,
    last_since,
    records_of,
    records_union,
    sql_truth,
)
from tests.support.cutproxy import CutProxy
from tests.support.problems import assert_problem
from tests.support.servers import ServerProcess, start_server
from tests.support.walks import page_walk, read_through_random_cuts, read_until_cut

WHERE: dict[str, Any] = {
    "history": {
        "EVENTNAME": ["TrackIn", "TrackOut", "Hold", "Release", "DataCollect"],
        "TXNDATE": {"from": "2025-01-20", "to": "2025-03-15T12:00:00Z"},
    },
    "materials": {"MATERIALPARTNAME": ["EPOXY-8200", "AU-WIRE-25UM", "DIE-A7X"]},
}
# The same filter, written by hand for the direct query.
PREDICATES: dict[str, tuple[str, tuple[object, ...]]] = {
    "history": (
        "EVENTNAME IN ('TrackIn', 'TrackOut', 'Hold', 'Release', 'DataCollect')"
        " AND TXNDATE >= '2025-01-20T00:00:00' AND TXNDATE < '2025-03-15T12:00:00'",
        (),
    ),
    "materials": ("MATERIALPARTNAME IN ('EPOXY-8200', 'AU-WIRE-25UM', 'DIE-A7X')", ()),
}
FAST = Retry(attempts=8, base=0.01, cap=0.5)


@pytest.fixture(scope="module")
def cids(demo_cids: list[str]) -> list[str]:
    return sorted(demo_cids)[:1200]  # two 1000-CID chunks: batches cross a chunk boundary


@pytest.fixture(scope="module")
def job(server: ServerProcess, cids: list[str]) -> dict[str, Any]:
    shuffled = list(cids)
    random.Random(2).shuffle(shuffled)
    return create_job(server.url, shuffled + shuffled[:7], ["history", "materials"], WHERE)


@pytest.fixture(scope="module")
def truth(demo_db: Path, cids: list[str]) -> dict[str, list[Row]]:
    return sql_truth(demo_db, cids, where=PREDICATES)


def test_the_filter_narrows_but_leaves_several_batches(
    demo_db: Path, cids: list[str], truth: dict[str, list[Row]]
) -> None:
    for domain, rows in truth.items():
        assert 700 * 2 < len(rows) < len(expected_rows(demo_db, cids, DOMAINS[domain])) * 0.7


def test_the_job_shows_its_canonical_filter(server: ServerProcess, job: dict[str, Any]) -> None:
    canonical = {
        "history": {
            "EVENTNAME": ["DataCollect", "Hold", "Release", "TrackIn", "TrackOut"],
            "TXNDATE": {"from": "2025-01-20T00:00:00", "to": "2025-03-15T12:00:00"},
        },
        "materials": {"MATERIALPARTNAME": ["AU-WIRE-25UM", "DIE-A7X", "EPOXY-8200"]},
    }
    assert job["where"] == canonical
    described = httpx.get(server.url + job["links"]["self"]).json()
    assert described["where"] == canonical and described["cid_count"] == 1200
    meta = next(iter_lines(server.url, job["job_id"]))
    assert meta["type"] == "meta" and meta["where"] == canonical
    plain = create_job(server.url, ["a1"], ["history"])
    assert plain["where"] is None
    assert "where" not in next(iter_lines(server.url, plain["job_id"]))  # meta as before


def test_stream_and_totals_match_sql(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]]
) -> None:
    lines = list(iter_lines(server.url, job["job_id"], format="arrays"))
    assert records_of(lines) == truth
    aggregate = lines[-2]["data"]["domains"]
    for domain, rows in truth.items():
        start = next(x for x in lines if x["type"] == "domain_start" and x["domain"] == domain)
        assert start["total"] == len(rows) and start["total_batches"] == -(-len(rows) // 700)
        assert aggregate[domain] == {"records": len(rows), "containers": len({r[0] for r in rows})}
    assert lines[-1]["type"] == "complete"
    assert lines[-1]["total_records"] == sum(len(r) for r in truth.values())
    described = httpx.get(server.url + job["links"]["self"]).json()
    assert {d: t["records"] for d, t in described["totals"].items()} == {
        d: len(r) for d, r in truth.items()
    }


@pytest.mark.parametrize("k", [2, 3, 5, 8, 11])
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
    parts, cuts = read_through_random_cuts(server, job["job_id"], 1414, 400_000)
    assert cuts >= 3  # it was cut, and resumed, several times
    assert records_union(*parts) == truth


@pytest.mark.parametrize("limit", [333, 1000])
def test_since_pages_walk_the_filtered_rows(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]], limit: int
) -> None:
    for domain, rows in truth.items():
        assert page_walk(server, job["job_id"], domain, limit) == rows


def test_offset_pages_enter_the_filtered_rows_anywhere(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Row]]
) -> None:
    url = f"{server.url}/api/trace/job/{job['job_id']}/result"
    for domain, rows in truth.items():
        n = len(rows)
        for offset in (0, 1, 699, 1000, n // 2, n - 1, n, n + 7):
            page = httpx.get(url, params={"domain": domain, "offset": offset, "limit": 250}).json()
            assert page["total"] == n and page["offset"] == offset
            assert [tuple(x.values()) for x in page["data"]] == rows[offset : offset + 250]
            assert (page["next"] is None) == (offset + 250 >= n)
        got: list[Row] = []
        params: dict[str, Any] = {"domain": domain, "offset": n // 3, "limit": 400}
        while True:
            page = httpx.get(url, params=params).json()
            got.extend(tuple(x.values()) for x in page["data"])
            if not page["next"]:
                break
            params = {"since": page["next"], "limit": 400}
        assert got == rows[n // 3 :]


def test_a_filtered_jobs_token_is_refused_on_every_other_job(
    server: ServerProcess, job: dict[str, Any], cids: list[str]
) -> None:
    """Same CIDs, other filter (or none): the token names its job, and a job's filter
    never changes, so a token cannot carry one filter's position into another."""
    since = last_since(read_until_cut(server, job["job_id"], None, 4))
    assert since is not None
    other_filter = {"history": {"EVENTNAME": ["Hold"]}}
    for where in (other_filter, None, WHERE):  # WHERE: the same filter, another job
        other = create_job(server.url, cids, ["history", "materials"], where)
        base = f"{server.url}/api/trace/job/{other['job_id']}"
        for route in ("/stream", "/result"):
            r = httpx.get(base + route, params={"since": since})
            assert_problem(r, 400, "token_job_mismatch")
    own = httpx.get(f"{server.url}/api/trace/job/{job['job_id']}/result", params={"since": since})
    assert own.status_code == 200


@pytest.mark.parametrize(
    ("where", "code", "words"),
    [
        ({"history": {"COMMENTS": ["ok"]}}, "invalid_filter", ["history.COMMENTS", "EVENTNAME"]),
        ({"history": {"EVENTNAME": [42]}}, "invalid_filter", ["history.EVENTNAME", "strings"]),
        ({"history": {"EVENTNAME": [None]}}, "invalid_filter", ["history.EVENTNAME"]),
        ({"history": {"EVENTNAME": {"from": "A"}}}, "invalid_filter", ["history.EVENTNAME"]),
        ({"history": {"TXNDATE": ["2025-01-01"]}}, "invalid_filter", ["history.TXNDATE"]),
        ({"history": {"TXNDATE": {"from": "1 May"}}}, "invalid_filter", ["history.TXNDATE"]),
        ({"history": {"QTY": {"from": "1000"}}}, "invalid_filter", ["history.QTY"]),
        ({"history": {"QTY": {"from": 1, "until": 2}}}, "invalid_filter", ["history.QTY", "until"]),
        ({"history": {"EVENTNAME": ["x"] * 1001}}, "invalid_filter", ["history.EVENTNAME"]),
        ({"history": "EVENTNAME = 'Hold'"}, "invalid_filter", ["where.history"]),
        ({"materials": {"UOM": ["g"]}}, "unknown_domain", ["materials"]),
    ],
)
def test_bad_filters_are_problems_naming_the_column(
    server: ServerProcess, where: dict[str, Any], code: str, words: list[str]
) -> None:
    r = httpx.post(
        f"{server.url}/api/trace/job",
        json={"container_ids": ["a1"], "domains": ["history"], "where": where},
    )
    body = assert_problem(r, 400, code)
    for word in words:
        assert word in body["detail"], body["detail"]


# Values no database compares exactly: 400 when the job is made, not a 500 on every page
# (Oracle's NUMBER range), nor a traceback and a closed connection (the rest).
EDGE_BODIES = {
    "number-above-oracle": '{"history": {"QTY": {"from": 1e300}}}',
    "number-below-oracle": '{"history": {"QTY": [5e-324]}}',
    "number-past-double": '{"history": {"QTY": [1e400]}}',
    "nested-1000-deep": '{"history": {"QTY": ' + "[" * 1000 + "]" * 1000 + "}}",
    "year-1-in-utc": '{"history": {"TXNDATE": {"from": "0001-01-01T00:00:00+00:01"}}}',
    "year-10000-in-utc": '{"history": {"TXNDATE": {"to": "9999-12-31T23:59:59-00:01"}}}',
    "from-finer-than-us": '{"history": {"TXNDATE": {"from": "2025-02-01T08:00:00.0000001"}}}',
    "to-finer-than-us": '{"history": {"TXNDATE": {"to": "2025-02-01T08:00:00.0000001"}}}',
    "julian": '{"history": {"TXNDATE": {"from": "1582-10-10"}}}',
}


@pytest.mark.parametrize("case", sorted(EDGE_BODIES))
def test_filter_values_no_database_compares_exactly_are_400(
    server: ServerProcess, case: str
) -> None:
    body = '{"container_ids": ["a1"], "domains": ["history"], "where": ' + EDGE_BODIES[case] + "}"
    r = httpx.post(
        f"{server.url}/api/trace/job",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )
    problem = assert_problem(r, 400, "invalid_filter")
    assert "where" in problem["detail"] or "history." in problem["detail"], problem
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # the server lives on


def test_domains_list_their_filterable_columns(server: ServerProcess) -> None:
    domains = {d["name"]: d for d in httpx.get(f"{server.url}/api/domains").json()["domains"]}
    filters = domains["history"]["filters"]
    assert filters["EVENTNAME"] == {"ops": ["in"], "type": "text"}
    assert filters["WORKCENTERNAME"] == {"ops": ["in"], "type": "text"}
    assert filters["TXNDATE"] == {"ops": ["range"], "type": "timestamp"}
    assert "COMMENTS" not in filters


# --- the Python client through a cutting proxy; another replica -----------------------------


@pytest.fixture(scope="module")
def small_batches(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    srv = start_server(
        tmp_path_factory.mktemp("filters-client"), demo_db, {"TRACE_STREAM_BATCH_SIZE": "50"}
    )
    yield srv.url
    srv.stop()


def test_the_client_creates_a_filtered_job_and_survives_cuts(
    small_batches: str, cids: list[str], truth: dict[str, list[Row]]
) -> None:
    rng = random.Random(21)
    # httpx asks for gzip: the cuts count compressed bytes (~1/7 of the JSON).
    cuts = [rng.randint(2_000, 6_000) for _ in range(40)]
    port = int(small_batches.rsplit(":", 1)[1])
    with CutProxy(port, cuts, marker=b"/stream") as proxy:
        with TraceClient(proxy.url, retries=FAST) as client:
            job = client.create_job(cids, ["history", "materials"], where=WHERE)
            pairs = list(client.iter_records(job.job_id))
        assert proxy.stats.cuts >= 30
    assert job.where is not None and set(job.where) == {"history", "materials"}
    got: dict[str, list[Row]] = {}
    for domain, record in pairs:
        got.setdefault(domain, []).append(tuple(record[c] for c in DOMAINS[domain].columns))
    assert got == truth


def test_the_async_client_creates_a_filtered_job(
    server: ServerProcess, cids: list[str], truth: dict[str, list[Row]]
) -> None:
    async def main() -> tuple[Any, int]:
        async with AsyncTraceClient(server.url, retries=FAST) as client:
            job = await client.create_job(
                cids, ["materials"], where={"materials": WHERE["materials"]}
            )
            return job, len([r async for r in client.iter_records(job.job_id)])

    job, count = asyncio.run(main())
    assert job.where == {
        "materials": {"MATERIALPARTNAME": sorted(WHERE["materials"]["MATERIALPARTNAME"])}
    }
    assert job.domains == ["materials"] and count == len(truth["materials"])


def test_another_replica_applies_the_filter(
    redis_url: str,
    demo_db: Path,
    cids: list[str],
    truth: dict[str, list[Row]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = {
        "TRACE_REDIS_URL": redis_url,
        "TRACE_REDIS_PREFIX": f"filters-{uuid.uuid4().hex[:8]}:",
        "TRACE_STREAM_BATCH_SIZE": "300",
    }
    a = start_server(tmp_path_factory.mktemp("filters-a"), demo_db, env)
    try:
        b = start_server(tmp_path_factory.mktemp("filters-b"), demo_db, env)
        try:
            job = create_job(a.url, cids, ["history", "materials"], WHERE)
            first = read_until_cut(a, job["job_id"], None, 6)
            rest = list(iter_lines(b.url, job["job_id"], last_since(first)))
            page = httpx.get(
                f"{b.url}/api/trace/job/{job['job_id']}/result",
                params={"domain": "materials", "offset": 10, "limit": 5},
            ).json()
        finally:
            b.stop()
    finally:
        a.stop()
    assert records_union(first, rest) == truth
    assert page["total"] == len(truth["materials"])
    assert [tuple(x.values()) for x in page["data"]] == truth["materials"][10:15]


def test_a_job_whose_filter_the_domain_file_no_longer_allows_is_refused(
    demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The domain file changed under a stored job: a clear 400, never a query."""
    data = tmp_path_factory.mktemp("filters-changed")
    before = start_server(data, demo_db)
    try:
        job = create_job(before.url, ["a1"], ["history"], {"history": {"EVENTNAME": ["Hold"]}})
    finally:
        before.stop()
    text = (Path(__file__).parent.parent / "svc" / "default_domains.toml").read_text()
    narrower = data / "domains.toml"
    narrower.write_text(text.replace('EVENTNAME = "in"\n', ""))
    after = start_server(data, demo_db, {"TRACE_DOMAINS": str(narrower)})
    try:
        base = f"{after.url}/api/trace/job/{job['job_id']}"
        for url in (base, base + "/stream", base + "/result?domain=history"):
            body = assert_problem(httpx.get(url), 400, "invalid_filter")
            assert "history.EVENTNAME" in body["detail"]
    finally:
        after.stop()
