"""Schemathesis fuzzes the real server on loopback from its own /openapi.json.

What must hold for every generated request: no 500, every response (status, content type,
headers, body) conforms to the document, and no body shows SQL, a stack trace or a path.
Half the requests that take a job id get a real job's, so the job routes are reached past
`job_not_found`. A bounded example count keeps this well under a minute.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from tests.support import all_cids, create_job
from tests.support.servers import ServerProcess, start_server

EXAMPLES = 40  # per operation and mode; 9 operations

# What would betray internals: SQL, a Python stack trace, a file path, a driver's name.
LEAK = re.compile(
    r"Traceback|File \"|\bSELECT\b|\bFROM\s+[A-Z_]+\b|\bWHERE\b|sqlite|oracledb|redis\.|"
    r"/(?:usr|home|tmp|work|opt|root|var)/|\.py\b|\.sqlite3\b|MES_CONTAINER",
)


@schemathesis.check
def no_internals_in_the_body(ctx: Any, response: Any, case: Any) -> bool | None:
    if case.path in ("/openapi.json", "/docs", "/metrics", "/"):
        return None  # the contract and metrics name things on purpose
    text = response.text if isinstance(response.text, str) else ""
    found = LEAK.search(text)
    if found:
        raise AssertionError(f"the body shows {found.group(0)!r}: {text[:300]}")
    return None


@pytest.fixture(scope="module")
def fuzz_server(
    small_demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory.mktemp("fuzz"),
        small_demo_db,
        {
            "TRACE_STREAM_BATCH_SIZE": "500",
            "TRACE_MAX_CIDS": "200",
            # the fuzzer creates jobs by the hundred: quotas are tested in test_limits.py
            "TRACE_JOB_CREATE_RATE": "0",
            "TRACE_MAX_JOBS_PER_KEY": "0",
            "TRACE_MAX_STREAMS_PER_CLIENT": "64",
        },
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def real_job(fuzz_server: ServerProcess, small_demo_db: Path) -> str:
    job: str = create_job(fuzz_server.url, all_cids(small_demo_db)[:20])["job_id"]
    return job


def operations(server: ServerProcess) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    skip = {"/docs", "/openapi.json", "/metrics", "/"}  # static or self-describing
    ops: list[Any] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation the document does not describe properly
        op = result.ok()
        if op.path not in skip:
            ops.append(op)
    return ops


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_the_api(fuzz_server: ServerProcess, real_job: str, mode: GenerationMode) -> None:
    ran = []
    for operation in operations(fuzz_server):

        @given(case=operation.as_strategy(mode), real=st.booleans())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any, real: bool) -> None:
            if real and case.path_parameters and "job_id" in case.path_parameters:
                case.path_parameters["job_id"] = real_job
            # A schema cannot say which strings are signed tokens: a schema-valid `since`
            # is rightly refused (400 invalid_token, a documented status and code).
            excluded = [positive_data_acceptance]
            if case.path == "/api/trace/job" and mode is GenerationMode.NEGATIVE:
                # The schema promises printable ASCII CIDs; any printable CID is accepted.
                excluded.append(negative_data_rejection)
            case.call_and_validate(
                base_url=fuzz_server.url,
                additional_checks=[no_internals_in_the_body],
                excluded_checks=excluded,
                timeout=30,
            )

        try:
            run()
        except Unsatisfiable:
            # Only free-form strings (a job id, a header): nothing can be schema-invalid.
            assert mode is GenerationMode.NEGATIVE, operation.path
        else:
            ran.append(operation.path)
    assert len(ran) >= 4, ran


@pytest.mark.parametrize("value", ["²", "①", "٣", "1" * 4301, "0" * 5000, "-1", "1e3", " 1"])
@pytest.mark.parametrize("param", ["limit", "offset", "n"])
def test_integer_parameters_that_are_not_plain_digits(
    fuzz_server: ServerProcess, real_job: str, param: str, value: str
) -> None:
    """Found by fuzzing: `²` and `①` pass str.isdigit() but not int(), and int() refuses
    over 4300 digits; each was a 500."""
    if param == "n":
        url = f"{fuzz_server.url}/api/demo/cids"
    else:
        url = f"{fuzz_server.url}/api/trace/job/{real_job}/result?domain=history"
    r = httpx.get(url, params={param: value})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        b'{"container_ids": ["a\xff"]}',
        b'\xfe\xff{"container_ids": ["a"]}',
        b'{"container_ids": ["\xed\xa0\x80"]}',
    ],
)
def test_a_job_body_that_is_not_utf8(fuzz_server: ServerProcess, body: bytes) -> None:
    """Found by fuzzing: invalid UTF-8 in the JSON body was a 500."""
    r = httpx.post(
        f"{fuzz_server.url}/api/trace/job",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_request"


@pytest.mark.parametrize("length", ["²", "1" * 4400])
def test_a_content_length_that_is_not_plain_digits(fuzz_server: ServerProcess, length: str) -> None:
    import socket

    host, port = fuzz_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST /api/trace/job HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        head = sock.recv(65536).split(b"\r\n", 1)[0]
    assert b" 500 " not in head, head
