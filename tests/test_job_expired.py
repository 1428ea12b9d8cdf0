"""410 `job_expired`: a correctly signed token of a job whose TTL passed (or that was
purged) proves that the job existed, so the service says it is gone and how to go on,
instead of `job_not_found`; an id never issued stays 404; the Python client stops at once
with the job id and its last position."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from svc.client import AsyncTraceClient, TraceClient
from svc.client.errors import JobExpired
from svc.core.tokens import TokenCodec
from tests.support import assert_problem, create_job
from tests.support.servers import TEST_SECRET, ServerProcess, start_server

TTL = 2


@pytest.fixture(scope="module")
def short_lived(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TRACE_STREAM_BATCH_SIZE": "100", "TRACE_JOB_TTL_SECONDS": str(TTL)}
    server = start_server(tmp_path_factory.mktemp("expiring"), demo_db, env)
    yield server
    server.stop()


def _first_records(server: ServerProcess, job_id: str) -> dict[str, Any]:
    url = f"{server.url}/api/trace/job/{job_id}/stream"
    with httpx.stream("GET", url, timeout=30) as r:
        for raw in r.iter_lines():
            line: dict[str, Any] = json.loads(raw)
            if line["type"] == "records":
                return line
    raise AssertionError("no records line")


def test_a_signed_token_of_an_expired_job_answers_410(
    short_lived: ServerProcess, demo_cids: list[str]
) -> None:
    job = create_job(short_lived.url, demo_cids[:200], ["history", "materials"])
    job_id, base = job["job_id"], f"{short_lived.url}/api/trace/job/{job['job_id']}"
    records = _first_records(short_lived, job_id)
    since = records["since"]
    time.sleep(TTL + 1)

    for url, params in [
        (f"{base}/stream", {"since": since}),
        (f"{base}/result", {"since": since}),
        (f"{base}/export.csv", {"since": since}),
    ]:
        body = assert_problem(httpx.get(url, params=params, timeout=30), 410, "job_expired")
        assert job_id in body["detail"] and "offset=100" in body["detail"]
        assert "domain='history'" in body["detail"] or "domain=history" in body["detail"]

    # without a token, or with a token that is not this service's: nothing proves it existed
    assert_problem(httpx.get(f"{base}/stream", timeout=30), 404, "job_not_found")
    forged = since[:-4] + ("AAAA" if not since.endswith("AAAA") else "BBBB")
    assert_problem(
        httpx.get(f"{base}/stream", params={"since": forged}, timeout=30), 404, "job_not_found"
    )
    other = TokenCodec(["another secret of 32 bytes......"])
    cursor = TokenCodec([TEST_SECRET]).verify(since)
    assert_problem(
        httpx.get(f"{base}/stream", params={"since": other.sign(cursor)}, timeout=30),
        404,
        "job_not_found",
    )


def test_a_never_issued_id_stays_404_even_with_a_real_token(
    short_lived: ServerProcess, demo_cids: list[str]
) -> None:
    job = create_job(short_lived.url, demo_cids[:50], ["history"])
    since = _first_records(short_lived, job["job_id"])["since"]
    never = "never-issued-" + job["job_id"][:8]
    url = f"{short_lived.url}/api/trace/job/{never}/stream"
    assert_problem(httpx.get(url, params={"since": since}, timeout=30), 404, "job_not_found")
    # a token naming the never-issued id, signed by someone without the secret: still 404
    cursor = msgspec.structs.replace(TokenCodec([TEST_SECRET]).verify(since), job_id=never)
    forged = TokenCodec(["not the service's secret, 32 byte"]).sign(cursor)
    assert_problem(httpx.get(url, params={"since": forged}, timeout=30), 404, "job_not_found")


def test_the_python_client_stops_at_410_with_the_job_and_its_position(
    short_lived: ServerProcess, demo_cids: list[str]
) -> None:
    job = create_job(short_lived.url, demo_cids[:200], ["history"])
    since = _first_records(short_lived, job["job_id"])["since"]
    time.sleep(TTL + 1)
    sleeps: list[float] = []
    with TraceClient(short_lived.url, sleep=sleeps.append) as client:
        with pytest.raises(JobExpired) as raised:
            list(client.iter_lines(job["job_id"], since))
        assert raised.value.job_id == job["job_id"] and raised.value.since == since
        assert raised.value.status == 410 and "offset=100" in raised.value.detail
        assert job["job_id"] in str(raised.value)
        with pytest.raises(JobExpired) as paged:
            list(client.iter_pages(job["job_id"], "history", since=since))
        assert paged.value.job_id == job["job_id"] and paged.value.since == since
    assert sleeps == []  # final: never retried


def test_the_async_client_stops_at_410_too(
    short_lived: ServerProcess, demo_cids: list[str]
) -> None:
    job = create_job(short_lived.url, demo_cids[:200], ["history"])
    since = _first_records(short_lived, job["job_id"])["since"]
    time.sleep(TTL + 1)
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> JobExpired:
        async with AsyncTraceClient(short_lived.url, sleep=no_sleep) as client:
            try:
                async for _ in client.iter_lines(job["job_id"], since):
                    pass
            except JobExpired as exc:
                return exc
        raise AssertionError("no JobExpired")

    raised = asyncio.run(run())
    assert raised.job_id == job["job_id"] and raised.since == since and sleeps == []
