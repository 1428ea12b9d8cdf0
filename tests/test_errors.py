"""Every error code reachable over HTTP, as problem+json before the first byte or an
`error` line after it, and nothing internal in any response."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import create_job, iter_lines, last_since
from tests.support.problems import LEAKS, assert_problem
from tests.support.servers import ServerProcess, start_server


@pytest.fixture(scope="module")
def job(server: ServerProcess, demo_cids: list[str]) -> dict[str, Any]:
    return create_job(server.url, demo_cids[:50])


def test_invalid_tokens(server: ServerProcess, job: dict[str, Any]) -> None:
    stream = f"{server.url}/api/trace/job/{job['job_id']}/stream"
    result = f"{server.url}/api/trace/job/{job['job_id']}/result"
    good = last_since(list(iter_lines(server.url, job["job_id"])))
    assert good is not None
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    for since in ("abc", "", "!!!", good[:-3], flipped, "A" * 5000):
        assert_problem(httpx.get(stream, params={"since": since}), 400, "invalid_token")
        assert_problem(httpx.get(result, params={"since": since}), 400, "invalid_token")


def test_token_of_another_job(
    server: ServerProcess, job: dict[str, Any], demo_cids: list[str]
) -> None:
    other = create_job(server.url, demo_cids[50:60])
    since = last_since(list(iter_lines(server.url, other["job_id"])))
    url = f"{server.url}/api/trace/job/{job['job_id']}"
    assert_problem(httpx.get(url + "/stream", params={"since": since}), 400, "token_job_mismatch")
    assert_problem(httpx.get(url + "/result", params={"since": since}), 400, "token_job_mismatch")


def test_job_not_found(server: ServerProcess) -> None:
    for path in ("", "/stream", "/result?domain=history"):
        assert_problem(httpx.get(f"{server.url}/api/trace/job/nope{path}"), 404, "job_not_found")


def test_unknown_domain(server: ServerProcess, job: dict[str, Any], demo_cids: list[str]) -> None:
    r = httpx.post(
        f"{server.url}/api/trace/job", json={"container_ids": ["a"], "domains": ["nope"]}
    )
    assert_problem(r, 400, "unknown_domain")
    r = httpx.get(f"{server.url}/api/trace/job/{job['job_id']}/result?domain=nope")
    assert_problem(r, 400, "unknown_domain")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"container_ids": []}',
        b'{"container_ids": [1, 2]}',
        b'{"container_ids": ["a"], "extra": 1}',
        b'{"container_ids": [" padded "]}',
        b'{"container_ids": ["' + b"x" * 65 + b'"]}',
        b'{"domains": ["history"]}',
    ],
)
def test_invalid_job_requests(server: ServerProcess, body: bytes) -> None:
    r = httpx.post(
        f"{server.url}/api/trace/job", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(r, 400, "invalid_request")


@pytest.mark.parametrize("query", ["format=csv", "limit=0", "limit=abc", "limit=999999999", ""])
def test_invalid_page_requests(server: ServerProcess, job: dict[str, Any], query: str) -> None:
    url = f"{server.url}/api/trace/job/{job['job_id']}/result?{query}"
    if query != "format=csv" and query:
        url += "&domain=history"
    assert_problem(httpx.get(url), 400, "invalid_request")


def test_unknown_route_is_a_problem_too(server: ServerProcess) -> None:
    assert_problem(httpx.get(f"{server.url}/api/nothing"), 404, "not_found")


def test_wrong_method_is_a_problem_too(server: ServerProcess) -> None:
    assert_problem(httpx.delete(f"{server.url}/api/trace/job/x/stream"), 405, "method_not_allowed")


def test_demo_cids_are_not_found_on_a_configured_database(server: ServerProcess) -> None:
    """`server` runs on a database of its own (TRACE_DB_URL): no demo CIDs to pick."""
    assert_problem(httpx.get(f"{server.url}/api/demo/cids", params={"n": 5}), 404, "not_found")


@pytest.fixture(scope="module")
def strict(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory.mktemp("strict"),
        demo_db,
        {"TRACE_MAX_CIDS": "10", "TRACE_API_KEYS": "key-one,key-two"},
    )
    yield srv
    srv.stop()


def test_too_many_cids(strict: ServerProcess) -> None:
    cids = [f"c{i}" for i in range(11)]
    r = httpx.post(
        f"{strict.url}/api/trace/job",
        json={"container_ids": cids},
        headers={"Authorization": "Bearer key-one"},
    )
    assert_problem(r, 400, "too_many_cids")


def test_payload_too_large_with_and_without_content_length(strict: ServerProcess) -> None:
    big = json.dumps({"container_ids": ["x" * 60] * 5000}).encode()
    headers = {"X-API-Key": "key-one", "content-type": "application/json"}
    r = httpx.post(f"{strict.url}/api/trace/job", content=big, headers=headers)
    assert_problem(r, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    r = httpx.post(f"{strict.url}/api/trace/job", content=chunks(), headers=headers)
    assert_problem(r, 413, "payload_too_large")


def test_api_keys_guard_the_api_and_scope_jobs(strict: ServerProcess) -> None:
    url = f"{strict.url}/api/trace/job"
    assert_problem(httpx.post(url, json={"container_ids": ["a"]}), 401, "unauthorized")
    assert_problem(
        httpx.post(url, json={"container_ids": ["a"]}, headers={"X-API-Key": "wrong"}),
        401,
        "unauthorized",
    )
    job = create_job(strict.url, ["a"], headers={"Authorization": "Bearer key-one"})
    mine = httpx.get(f"{url}/{job['job_id']}", headers={"Authorization": "Bearer key-one"})
    assert mine.status_code == 200
    theirs = httpx.get(f"{url}/{job['job_id']}", headers={"Authorization": "Bearer key-two"})
    assert_problem(theirs, 404, "job_not_found")
    assert httpx.get(f"{strict.url}/healthz").status_code == 200


def test_store_unavailable(demo_db: Path, tmp_path: Path) -> None:
    srv = start_server(tmp_path, demo_db)
    try:
        job = create_job(srv.url, ["a"])
        deadline = time.monotonic() + 10  # let the background totals finish writing first
        while len(httpx.get(f"{srv.url}{job['links']['self']}").json()["totals"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for suffix in ("", "-wal", "-shm"):
            path = tmp_path / f"jobs.sqlite3{suffix}"
            if path.exists():
                os.remove(path)
        (tmp_path / "jobs.sqlite3").write_bytes(b"this is not a database" * 100)
        assert_problem(
            httpx.post(f"{srv.url}/api/trace/job", json={"container_ids": ["a"]}),
            503,
            "store_unavailable",
        )
        r = httpx.get(f"{srv.url}/api/trace/job/{job['job_id']}/stream")
        assert_problem(r, 503, "store_unavailable")
        assert_problem(httpx.get(f"{srv.url}/readyz"), 503, "store_unavailable")
    finally:
        srv.stop()


def test_source_unavailable(tmp_path: Path) -> None:
    srv = start_server(tmp_path, tmp_path / "missing.sqlite3")
    try:
        job = create_job(srv.url, ["a"])
        r = httpx.get(f"{srv.url}/api/trace/job/{job['job_id']}/stream")
        assert_problem(r, 503, "source_unavailable")
        r = httpx.get(f"{srv.url}/api/trace/job/{job['job_id']}/result?domain=history")
        assert_problem(r, 503, "source_unavailable")
    finally:
        srv.stop()


def test_failure_after_first_byte_is_an_error_line_with_the_last_good_token(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    """A domain whose table is missing fails mid-stream, after the first domain streamed."""
    domains = tmp_path / "domains.toml"
    domains.write_text(
        '[domains.history]\ntable = "MES_CONTAINER_HISTORY"\n'
        'columns = ["CONTAINERID", "EVENTNAME"]\n'
        '[domains.broken]\ntable = "NO_SUCH_TABLE"\ncolumns = ["CONTAINERID"]\n'
    )
    srv = start_server(tmp_path, demo_db, {"TRACE_DOMAINS": str(domains)})
    try:
        job = create_job(srv.url, demo_cids[:20], ["history", "broken"])
        lines = list(iter_lines(srv.url, job["job_id"]))
        assert [x["type"] for x in lines[:2]] == ["meta", "domain_start"]
        error = lines[-1]
        assert error["type"] == "error" and error["code"] == "source_unavailable"
        assert error["retryable"] is True
        assert error["since"] == last_since(lines[:-1]) is not None
        assert not any(leak in json.dumps(error) for leak in LEAKS)
        assert "NO_SUCH_TABLE" not in json.dumps(lines)
    finally:
        srv.stop()


def test_job_whose_domain_is_no_longer_configured(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    first = start_server(tmp_path, demo_db)
    try:
        job = create_job(first.url, demo_cids[:5], ["history", "materials"])
    finally:
        first.stop()
    only_history = tmp_path / "domains.toml"
    only_history.write_text(
        '[domains.history]\ntable = "MES_CONTAINER_HISTORY"\ncolumns = ["CONTAINERID"]\n'
    )
    second = start_server(tmp_path, demo_db, {"TRACE_DOMAINS": str(only_history)})
    try:
        r = httpx.get(f"{second.url}/api/trace/job/{job['job_id']}/stream")
        body = assert_problem(r, 400, "unknown_domain")
        assert "materials" in body["detail"]
    finally:
        second.stop()
