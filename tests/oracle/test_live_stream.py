"""Live Oracle, through a real uvicorn server: exactly-once streams, resumes and paging."""

from __future__ import annotations

import random
import re
from typing import Any

import httpx
import pytest

from tests.oracle.live import LIVE
from tests.support import create_job, iter_lines, last_since, records_of, records_union
from tests.support.servers import ServerProcess

pytestmark = LIVE

BATCH = 700


@pytest.fixture(scope="module")
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    return {
        **server_env,
        "TRACE_STREAM_BATCH_SIZE": str(BATCH),
        "TRACE_ORACLE_POOL_MIN": "2",
        "TRACE_ORACLE_POOL_MAX": "2",
    }


@pytest.fixture(scope="module")
def job(server: ServerProcess, job_cids: list[str]) -> dict[str, Any]:
    cids = list(job_cids)
    random.Random(1).shuffle(cids)
    return create_job(server.url, cids + cids[:25], ["history", "materials"])


def test_full_stream_is_exactly_the_direct_query(
    server: ServerProcess, job: dict[str, Any], truths: dict[str, list[Any]]
) -> None:
    lines = list(iter_lines(server.url, job["job_id"]))
    assert [x["type"] for x in lines][-2:] == ["aggregation", "complete"]
    assert records_of(lines) == truths
    for domain, rows in truths.items():
        start = next(x for x in lines if x["type"] == "domain_start" and x["domain"] == domain)
        batches = [x for x in lines if x["type"] == "records" and x["domain"] == domain]
        assert start["total"] == len(rows) > 2 * BATCH
        assert [b["batch"] for b in batches] == list(range(1, -(-len(rows) // BATCH) + 1))
        assert all(len(b["data"]) == BATCH for b in batches[:-1])


@pytest.mark.parametrize("k", [3, 4, 15, 16, 17, 40])
def test_cut_then_resume_sends_nothing_twice_and_skips_nothing(
    server: ServerProcess, job: dict[str, Any], truths: dict[str, list[Any]], k: int
) -> None:
    first: list[dict[str, Any]] = []
    for line in iter_lines(server.url, job["job_id"]):
        first.append(line)
        if len(first) == k:
            break
    rest = list(iter_lines(server.url, job["job_id"], last_since(first)))
    assert rest[0]["resumed"] is True and rest[-1]["type"] == "complete"
    assert records_union(first, rest) == truths


@pytest.mark.parametrize("limit", [333, 5000])
def test_rest_paging_follows_next_to_the_end(
    server: ServerProcess, job: dict[str, Any], truths: dict[str, list[Any]], limit: int
) -> None:
    for domain, expected in truths.items():
        rows: list[Any] = []
        url: str | None = (
            f"{server.url}/api/trace/job/{job['job_id']}/result?domain={domain}&limit={limit}"
        )
        while url is not None:
            r = httpx.get(url, timeout=60)
            assert r.status_code == 200, r.text
            page = r.json()
            assert page["total"] == len(expected)
            rows.extend(tuple(rec.values()) for rec in page["data"])
            link = r.headers.get("link")
            if page["next"] is None:
                url = None
            else:
                match = re.fullmatch(r'<([^>]+)>; rel="next"', link or "")
                assert match is not None
                url = server.url + match.group(1)
        assert rows == expected


def test_no_connection_is_held_between_requests(server: ServerProcess, job: dict[str, Any]) -> None:
    list(iter_lines(server.url, job["job_id"]))
    metrics = httpx.get(server.url + "/metrics").text
    assert re.search(r"^trace_source_connections_in_use 0$", metrics, re.M), metrics
    assert httpx.get(server.url + "/readyz").status_code == 200  # ping: one round trip
