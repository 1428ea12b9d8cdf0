"""End to end on the rows path (`TRACE_DATABASE_JSON=0`: what Oracle streams get), a page
read ahead of the client: the records are the SQL truth, and a stream read through random
byte cuts, each resumed with its newest `since`, sends the records lines the uncut stream
sends (records, numbers, tokens), and the same digest: the same `data` bytes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import create_job, records_of, records_union, sql_truth
from tests.support.servers import ServerProcess
from tests.support.walks import read_through_random_cuts


@pytest.fixture(scope="module")
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    return {**server_env, "TRACE_DATABASE_JSON": "0"}


@pytest.fixture(scope="module")
def job(server: ServerProcess, demo_cids: list[str]) -> dict[str, Any]:
    cids = sorted(demo_cids)[:1200]  # two chunks: batches cross a chunk boundary
    random.Random(2).shuffle(cids)
    return create_job(server.url, cids, ["history", "materials"])


@pytest.fixture(scope="module")
def truth(demo_db: Path, demo_cids: list[str]) -> dict[str, list[Any]]:
    return sql_truth(demo_db, sorted(demo_cids)[:1200])


def _raw_lines(server: ServerProcess, job_id: str, fmt: str) -> list[bytes]:
    url = f"{server.url}/api/trace/job/{job_id}/stream?format={fmt}"
    r = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=60)
    assert r.status_code == 200
    return r.content.split(b"\n")[:-1]


@pytest.mark.parametrize("fmt", ["objects", "arrays"])
def test_the_rows_path_sends_the_sql_truth(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Any]], fmt: str
) -> None:
    lines = [json.loads(x) for x in _raw_lines(server, job["job_id"], fmt)]
    assert records_of(lines) == truth
    assert lines[-1]["type"] == "complete" and lines[-1]["digest"]


def test_the_rows_path_sends_the_same_lines_through_random_cuts(
    server: ServerProcess, job: dict[str, Any], truth: dict[str, list[Any]]
) -> None:
    lines = [json.loads(x) for x in _raw_lines(server, job["job_id"], "objects")]
    records = {(x["domain"], x["batch"]): x for x in lines if x["type"] == "records"}
    assert len(records) > 20
    parts, cuts = read_through_random_cuts(server, job["job_id"], 20261207, 300_000)
    assert cuts > 3
    assert records_union(*parts) == truth
    for part in parts:
        for line in part:
            if line["type"] == "records":
                assert line == records[(line["domain"], line["batch"])]
    assert parts[-1][-1]["digest"] == lines[-1]["digest"]  # the chain of the data's bytes
