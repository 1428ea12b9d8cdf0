"""Two replicas, one Redis, one TRACE_SECRET: either resumes what the other started.

Two real server processes on loopback share the job store (Redis) and the token secret,
and nothing else (each has its own data directory). A stream is cut part-way on one and
resumed on the other with the last `since`; the union of the records must equal a direct
SQLite query of the job's rows in (CONTAINERID, rowid) order: nothing missing, nothing
repeated, nothing out of order.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import DOMAINS, Row, records_union, sql_truth
from tests.support.servers import ServerProcess, start_server

BATCH = 100  # records per line: ~50 history lines and ~25 material lines for 500 CIDs


@pytest.fixture(scope="module")
def replicas(
    redis_url: str,
    small_demo_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {
        "TRACE_REDIS_URL": redis_url,
        "TRACE_REDIS_PREFIX": f"replicas-{uuid.uuid4().hex[:8]}:",
        "TRACE_STREAM_BATCH_SIZE": str(BATCH),
    }
    a = start_server(tmp_path_factory.mktemp("replica-a"), small_demo_db, env)
    try:
        b = start_server(tmp_path_factory.mktemp("replica-b"), small_demo_db, env)
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def all_cids(small_demo_db: Path) -> list[str]:
    with sqlite3.connect(small_demo_db) as conn:
        return [r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS")]


@pytest.fixture(scope="module")
def job(replicas: tuple[ServerProcess, ServerProcess], all_cids: list[str]) -> str:
    """A job of every CID (shuffled, some twice), created on replica A."""
    cids = list(all_cids)
    random.Random(5).shuffle(cids)
    r = httpx.post(
        f"{replicas[0].url}/api/trace/job",
        json={"container_ids": cids + cids[:25], "domains": ["history", "materials"]},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    job_id: str = r.json()["job_id"]
    return job_id


@pytest.fixture(scope="module")
def truth(small_demo_db: Path, all_cids: list[str]) -> dict[str, list[Row]]:
    return sql_truth(small_demo_db, all_cids)


def read(
    server: ServerProcess, job_id: str, since: str | None, stop_after: int | None
) -> list[dict[str, Any]]:
    """The stream's lines from `since`; cut (connection closed) after `stop_after` records lines."""
    params = {} if since is None else {"since": since}
    lines: list[dict[str, Any]] = []
    records = 0
    url = f"{server.url}/api/trace/job/{job_id}/stream"
    with httpx.stream("GET", url, params=params, timeout=30) as r:
        assert r.status_code == 200, r.read()
        for raw in r.iter_lines():
            if not raw:
                continue
            line = json.loads(raw)
            lines.append(line)
            if line["type"] == "records":
                records += 1
                if records == stop_after:
                    break
    return lines


def _since(lines: list[dict[str, Any]]) -> str:
    token: str = [line["since"] for line in lines if line["type"] == "records"][-1]
    return token


def test_the_job_is_shared(replicas: tuple[ServerProcess, ServerProcess], job: str) -> None:
    a, b = replicas
    on_a = httpx.get(f"{a.url}/api/trace/job/{job}").json()
    on_b = httpx.get(f"{b.url}/api/trace/job/{job}").json()
    assert on_b["cid_count"] == on_a["cid_count"] == 500
    assert on_b["expires_at"] == on_a["expires_at"]


@pytest.mark.parametrize("where", ["in-history", "at-history-end", "in-materials"])
def test_cut_on_a_resume_on_b(
    replicas: tuple[ServerProcess, ServerProcess],
    job: str,
    truth: dict[str, list[Row]],
    where: str,
) -> None:
    a, b = replicas
    history_lines = -(-len(truth["history"]) // BATCH)
    cuts = {"in-history": 20, "at-history-end": history_lines, "in-materials": history_lines + 7}
    cut = cuts[where]
    first = read(a, job, None, stop_after=cut)
    last = first[-1]
    assert last["type"] == "records"
    starts = {line["domain"]: line for line in first if line["type"] == "domain_start"}
    second = read(b, job, _since(first), stop_after=None)
    assert second[0]["type"] == "meta" and second[0]["resumed"] is True
    assert second[1]["type"] == "domain_start" and second[1]["domain"] == last["domain"]
    assert second[-1]["type"] == "complete"
    resumed = next(line for line in second if line["type"] == "records")
    if last["batch"] < starts[last["domain"]]["total_batches"]:
        assert (resumed["domain"], resumed["batch"]) == (last["domain"], last["batch"] + 1)
    else:  # cut after the domain's last batch: B ends it and starts the next
        assert (resumed["domain"], resumed["batch"]) == ("materials", 1)
    assert records_union(first, second) == truth


def test_many_cuts_alternating_replicas(
    replicas: tuple[ServerProcess, ServerProcess], job: str, truth: dict[str, list[Row]]
) -> None:
    parts: list[list[dict[str, Any]]] = []
    since: str | None = None
    for turn in range(100):
        lines = read(replicas[turn % 2], job, since, stop_after=7)
        parts.append(lines)
        if lines[-1]["type"] == "complete":
            break
        since = _since(lines)
    else:
        pytest.fail("the stream never completed")
    assert len(parts) > 5
    assert records_union(*parts) == truth


@pytest.mark.parametrize("domain", ["history", "materials"])
def test_rest_pages_alternating_replicas(
    replicas: tuple[ServerProcess, ServerProcess],
    job: str,
    truth: dict[str, list[Row]],
    domain: str,
) -> None:
    columns = DOMAINS[domain].columns
    rows: list[Row] = []
    params: dict[str, Any] = {"domain": domain, "limit": 333}
    for page in range(100):
        r = httpx.get(
            f"{replicas[page % 2].url}/api/trace/job/{job}/result", params=params, timeout=30
        )
        assert r.status_code == 200, r.text
        body = r.json()
        rows += [tuple(rec[c] for c in columns) for rec in body["data"]]
        if body["next"] is None:
            break
        params = {"since": body["next"], "limit": 333}
    assert rows == truth[domain]


def test_the_digest_survives_cuts_across_replicas(
    replicas: tuple[ServerProcess, ServerProcess], job: str
) -> None:
    """Cut every 5 records lines, resumed on the other replica each time: the digest is the
    uncut stream's (the chain travels in the token), docs/protocol.md#digest."""
    uncut = read(replicas[1], job, None, stop_after=None)[-1]
    assert uncut["type"] == "complete" and len(uncut["digest"]) == 64
    since: str | None = None
    for turn in range(100):
        lines = read(replicas[turn % 2], job, since, stop_after=5)
        if lines[-1]["type"] == "complete":
            break
        since = _since(lines)
    else:
        pytest.fail("the stream never completed")
    assert turn > 5 and lines[-1]["digest"] == uncut["digest"]
