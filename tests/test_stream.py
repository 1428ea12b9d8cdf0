"""End to end on a real uvicorn server and a real SQLite file: exactly-once across resumes."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    create_job,
    iter_lines,
    last_since,
    records_of,
    records_union,
    sql_truth,
)
from tests.support.servers import ServerProcess
from tests.support.walks import page_walk, read_through_random_cuts, read_until_cut

BATCH = 700  # the server fixture's TRACE_STREAM_BATCH_SIZE


@pytest.fixture(scope="module")
def job(server: ServerProcess, demo_cids: list[str]) -> dict[str, Any]:
    # 1200 CIDs span two 1000-CID chunks, so batches cross a chunk boundary.
    cids = sorted(demo_cids)[:1200]
    random.Random(1).shuffle(cids)
    return create_job(server.url, cids + cids[:10], ["history", "materials"])


@pytest.fixture(scope="module")
def truth(demo_db: Path, job: dict[str, Any], demo_cids: list[str]) -> dict[str, list[Any]]:
    return sql_truth(demo_db, sorted(demo_cids)[:1200])


def test_job_is_deduplicated_and_described(server: ServerProcess, job: dict[str, Any]) -> None:
    assert job["cid_count"] == 1200
    r = httpx.get(server.url + job["links"]["self"])
    assert r.status_code == 200
    assert r.json()["cid_count"] == 1200 and r.json()["domains"] == ["history", "materials"]


def test_full_stream_matches_sql(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Any]]
) -> None:
    lines = list(iter_lines(server.url, job["job_id"]))
    types = [line["type"] for line in lines]
    assert types[0] == "meta" and lines[0]["resumed"] is False
    assert types[-2:] == ["aggregation", "complete"]
    assert records_of(lines) == truth
    for domain, rows in truth.items():
        starts = [x for x in lines if x["type"] == "domain_start" and x["domain"] == domain]
        assert len(starts) == 1  # counted within the wait: the total comes with the first
        start = starts[0]
        batches = [x for x in lines if x["type"] == "records" and x["domain"] == domain]
        assert start["total"] == len(rows)
        assert start["total_batches"] == len(batches) == -(-len(rows) // BATCH)
        assert [b["batch"] for b in batches] == list(range(1, len(batches) + 1))
        assert all(len(b["data"]) == BATCH for b in batches[:-1])
        end = next(x for x in lines if x["type"] == "domain_end" and x["domain"] == domain)
        assert end["total_records"] == len(rows)
        assert lines[-2]["data"]["domains"][domain]["records"] == len(rows)
    assert lines[-1]["total_records"] == sum(len(r) for r in truth.values())


def test_arrays_format_carries_the_same_rows(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Any]]
) -> None:
    lines = list(iter_lines(server.url, job["job_id"], format="arrays"))
    assert all(isinstance(r, list) for x in lines if x["type"] == "records" for r in x["data"])
    assert records_of(lines) == truth


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8, 12, 13, 14, 20, 30, 34])
def test_cut_after_kth_line_then_resume(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Any]], k: int
) -> None:
    first = read_until_cut(server, job["job_id"], None, k)
    since = last_since(first)
    rest = list(iter_lines(server.url, job["job_id"], since))
    if since is not None:
        assert rest[0]["type"] == "meta" and rest[0]["resumed"] is True
        assert rest[1]["type"] == "domain_start"
        before = [x for x in first if x["type"] == "records"][-1]
        after = next((x for x in rest if x["type"] == "records"), None)
        if after is not None and after["domain"] == before["domain"]:
            assert after["batch"] == before["batch"] + 1
    assert rest[-1]["type"] == "complete"
    assert records_union(first, rest) == truth


@pytest.mark.parametrize(("encoding", "most"), [("identity", 400_000), ("gzip", 50_000)])
def test_repeated_random_byte_cuts_lose_and_repeat_nothing(
    server: ServerProcess,
    job: dict[str, Any],
    truth: dict[str, list[Any]],
    encoding: str,
    most: int,
) -> None:
    """Cuts at random bytes of the wire, inside the gzip stream too (~8x smaller there)."""
    parts, _ = read_through_random_cuts(server, job["job_id"], 20261123, most, encoding)
    assert records_union(*parts) == truth


@pytest.mark.parametrize("limit", [333, 700, 5000])
def test_paging_walk_equals_the_stream(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Any]], limit: int
) -> None:
    for domain, rows in truth.items():
        assert page_walk(server, job["job_id"], domain, limit) == rows


def test_stream_token_drives_paging_and_page_token_resumes_stream(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Any]]
) -> None:
    first = read_until_cut(server, job["job_id"], None, 4)  # meta, start, 2 records lines
    since = last_since(first)
    r = httpx.get(f"{server.url}/api/trace/job/{job['job_id']}/result", params={"since": since})
    assert r.status_code == 200
    page = r.json()
    assert page["domain"] == "history" and page["next"]
    rest = list(iter_lines(server.url, job["job_id"], page["next"]))
    union = records_of(first)
    union["history"].extend(tuple(x.values()) for x in page["data"])
    for domain, rows in records_of(rest).items():
        union.setdefault(domain, []).extend(rows)
    assert union == truth


def _metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))


def test_client_disconnect_leaves_no_stream_or_connection_behind(
    server: ServerProcess, job: dict[str, Any]
) -> None:
    for _ in range(3):
        read_until_cut(server, job["job_id"], None, 3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            _metric(server, "trace_active_streams") == 0
            and _metric(server, "trace_source_connections_in_use") == 0
        ):
            return
        time.sleep(0.05)
    pytest.fail("a stream or a source connection outlived its client")


def test_offset_paging_enters_anywhere_and_continues_by_keyset(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Any]]
) -> None:
    url = f"{server.url}/api/trace/job/{job['job_id']}/result"
    rows = truth["history"]
    for offset in (0, 1, 699, 1000, len(rows) - 1, len(rows), len(rows) + 7):
        r = httpx.get(url, params={"domain": "history", "offset": offset, "limit": 333})
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["offset"] == offset and page["total"] == len(rows)
        assert [tuple(x.values()) for x in page["data"]] == rows[offset : offset + 333]
        assert (page["next"] is None) == (offset + 333 >= len(rows))
    # follow `next` from a middle offset: the rest of the domain, exactly once
    got: list[Any] = []
    params: dict[str, Any] = {"domain": "history", "offset": 5000, "limit": 1000}
    while True:
        r = httpx.get(url, params=params)
        got.extend(tuple(x.values()) for x in r.json()["data"])
        if not r.json()["next"]:
            break
        assert "offset" not in r.headers["link"]
        params = {"since": r.json()["next"], "limit": 1000}
    assert got == rows[5000:]
    both = httpx.get(url, params={"domain": "history", "offset": 5, "since": params["since"]})
    assert both.status_code == 400 and both.json()["code"] == "invalid_request"
