"""The records digest (docs/protocol.md#digest): a stream cut at random bytes and resumed
ends with the digest of an uncut one, which is the chain the client computed over the
records it received; objects and arrays differ, gzip does not; REST pages carry the chain of
their end; exports record it; the Python client checks it and raises on a mismatch; a token
from before digests is still accepted (the stream then ends without one)."""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from svc import protocol as p
from svc.client import TraceClient
from svc.client._resume import StreamState
from svc.client.errors import DigestMismatch
from svc.core.tokens import TokenCodec
from tests.support import create_job
from tests.support.exports import finished, start_export
from tests.support.servers import TEST_SECRET, ServerProcess

BATCH = 700  # the server fixture's TRACE_STREAM_BATCH_SIZE


class _Data(msgspec.Struct):
    data: msgspec.Raw


def chain(raw_lines: list[bytes]) -> str:
    """The digest's definition, as a client computes it over the records lines it has."""
    h = bytes(32)
    for raw in raw_lines:
        if json.loads(raw)["type"] == "records":
            h = hashlib.sha256(h + bytes(msgspec.json.decode(raw, type=_Data).data)).digest()
    return h.hex()


def read_raw(
    server: ServerProcess,
    job_id: str,
    since: str | None,
    cut: int | None = None,
    arrays: bool = False,
    gzip: bool = False,
) -> list[bytes]:
    """The complete lines of a stream (as bytes), the connection dropped after about `cut`
    bytes of the wire."""
    params = {"since": since} if since else {}
    if arrays:
        params["format"] = "arrays"
    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    url = f"{server.url}/api/trace/job/{job_id}/stream"
    buf, seen = b"", 0
    gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with httpx.stream("GET", url, params=params, headers=headers, timeout=60) as r:
        assert r.status_code == 200, r.read()
        for piece in r.iter_raw(4096):
            seen += len(piece)
            buf += gunzip.decompress(piece) if gzip else piece
            if cut is not None and seen >= cut:
                break
    return [line for line in buf.split(b"\n")[:-1] if line]


def last_position(lines: list[bytes]) -> str | None:
    """The newest `since` of records lines and heartbeats (a client's resume point)."""
    since = None
    for raw in lines:
        line = json.loads(raw)
        if line["type"] in ("records", "heartbeat") and line.get("since"):
            since = line["since"]
    return since


@pytest.fixture(scope="module")
def job(server: ServerProcess, demo_cids: list[str]) -> dict[str, Any]:
    return create_job(server.url, sorted(demo_cids)[:1200], ["history", "materials"])


@pytest.fixture(scope="module")
def uncut(server: ServerProcess, job: dict[str, Any]) -> dict[str, list[bytes]]:
    return {
        fmt: read_raw(server, job["job_id"], None, arrays=fmt == "arrays")
        for fmt in ("objects", "arrays")
    }


def test_an_uncut_stream_ends_with_the_chain_of_its_records(
    uncut: dict[str, list[bytes]],
) -> None:
    digests = {}
    for fmt, lines in uncut.items():
        complete = json.loads(lines[-1])
        assert complete["type"] == "complete"
        assert complete["digest"] == chain(lines), fmt
        digests[fmt] = complete["digest"]
    assert digests["objects"] != digests["arrays"]  # format-dependent


@pytest.mark.parametrize(
    ("fmt", "gzip"), [("objects", False), ("arrays", False), ("objects", True)]
)
def test_five_random_cuts_end_with_the_uncut_digest(
    server: ServerProcess,
    job: dict[str, Any],
    uncut: dict[str, list[bytes]],
    fmt: str,
    gzip: bool,
) -> None:
    rng = random.Random(f"{fmt}{gzip}")
    size = len(b"\n".join(uncut[fmt])) // (8 if gzip else 1)
    received: list[bytes] = []
    since, done, cut_count = None, False, 0
    for cut in [*(rng.randrange(200, size // 4) for _ in range(5)), None]:
        lines = read_raw(server, job["job_id"], since, cut, fmt == "arrays", gzip)
        # what a client keeps: the records lines after its resume point, none twice
        received += [raw for raw in lines if json.loads(raw)["type"] == "records"]
        since = last_position(lines) or since
        cut_count += cut is not None
        if lines and json.loads(lines[-1])["type"] == "complete":
            done = True
            complete = json.loads(lines[-1])
            break
    assert done and cut_count >= 1
    assert complete["digest"] == chain(received) == json.loads(uncut[fmt][-1])["digest"]


def test_the_python_client_checks_the_digest(server: ServerProcess, job: dict[str, Any]) -> None:
    with TraceClient(server.url) as client:
        lines = list(client.iter_lines(job["job_id"]))
    complete = lines[-1]
    assert isinstance(complete, p.Complete) and complete.digest is not None


def test_a_changed_record_raises_digest_mismatch(uncut: dict[str, list[bytes]]) -> None:
    lines = list(uncut["objects"])
    at = next(i for i, raw in enumerate(lines) if json.loads(raw)["type"] == "records")
    tampered = lines[at].replace(b'"data":[{', b'"data":[ {', 1)  # same records, other bytes
    assert tampered != lines[at]
    for changed in (tampered, None):  # a changed line, a lost line
        state = StreamState(None)
        with pytest.raises(DigestMismatch) as raised:
            for i, raw in enumerate(lines):
                if i == at:
                    if changed is None:
                        continue
                    raw = changed
                state.feed(raw)
        assert raised.value.code == "digest_mismatch"
    state = StreamState(None)
    for raw in lines:
        state.feed(raw)
    assert state.complete


def test_pages_carry_the_chain_of_their_end(
    server: ServerProcess, job: dict[str, Any], uncut: dict[str, list[bytes]]
) -> None:
    """A page walk at the stream's batch size ends with the chain of the stream's history
    lines; the client's page walk checks every page."""
    history = [raw for raw in uncut["objects"] if json.loads(raw).get("domain") == "history"]
    with TraceClient(server.url) as client:
        pages = list(client.iter_pages(job["job_id"], "history", limit=BATCH))
    assert len(pages) > 2
    assert pages[-1].digest == chain(history)
    tokens = TokenCodec([TEST_SECRET])
    for page in pages[:-1]:
        assert page.next is not None
        held = tokens.verify(page.next).chain
        assert held is not None and page.digest == held.hex()
    url = f"{server.url}/api/trace/job/{job['job_id']}/result"
    at_offset = httpx.get(url, params={"domain": "history", "offset": 10}, timeout=30).json()
    assert at_offset["digest"] is None  # the records before an offset were never hashed


def test_an_export_records_the_jobs_digest(
    server: ServerProcess, job: dict[str, Any], uncut: dict[str, list[bytes]]
) -> None:
    status = finished(server.url, start_export(server.url, job["job_id"], "ndjson.gz"))
    assert status["sha256"] and status["digest"] == json.loads(uncut["objects"][-1])["digest"]


def test_a_selected_jobs_stream_and_export_agree_on_its_digest(
    server: ServerProcess, demo_cids: list[str]
) -> None:
    """With `select`, the chain is over the selected columns, in the stream and the export."""
    body = {"container_ids": demo_cids[:300], "select": {"history": ["EVENTNAME"]}}
    job = httpx.post(f"{server.url}/api/trace/job", json=body, timeout=30).json()
    lines = read_raw(server, job["job_id"], None)
    complete = json.loads(lines[-1])
    assert complete["type"] == "complete" and complete["digest"] == chain(lines)
    status = finished(server.url, start_export(server.url, job["job_id"], "ndjson.gz"))
    assert status["digest"] == complete["digest"]


def test_a_token_without_a_chain_still_resumes(
    server: ServerProcess, job: dict[str, Any], uncut: dict[str, list[bytes]]
) -> None:
    """A token signed before digests existed (no chain) resumes as it always did; the stream
    then ends with digest null, and the client does not check it."""
    tokens = TokenCodec([TEST_SECRET])
    first = next(json.loads(raw) for raw in uncut["objects"] if b'"records"' in raw)
    old = tokens.sign(msgspec.structs.replace(tokens.verify(first["since"]), chain=None))
    lines = read_raw(server, job["job_id"], old)
    assert json.loads(lines[-1])["type"] == "complete"
    assert json.loads(lines[-1])["digest"] is None
    state = StreamState(old)
    for raw in lines:
        state.feed(raw)
    assert state.complete


def test_the_reference_implementation_in_the_protocol_holds(
    uncut: dict[str, list[bytes]],
) -> None:
    """docs/protocol.md's reference implementation, run as written, accepts the stream and
    refuses it with a record changed."""
    doc = (Path(__file__).resolve().parent.parent / "docs/protocol.md").read_text()
    section = doc[doc.index("## Digest") :]
    code = section[
        section.index("```python") + 9 : section.index("```", section.index("```python") + 9)
    ]
    assert len(code.strip().splitlines()) <= 10
    scope: dict[str, Any] = {}
    exec(code, scope)  # noqa: S102 - the documentation's own code
    for fmt in ("objects", "arrays"):
        scope["verify"](uncut[fmt])
    lines = list(uncut["objects"])
    at = next(i for i, raw in enumerate(lines) if json.loads(raw)["type"] == "records")
    lines[at] = lines[at].replace(b'"data":[{', b'"data":[ {', 1)
    with pytest.raises(AssertionError, match="records lost"):
        scope["verify"](lines)
