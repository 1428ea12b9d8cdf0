"""Exports end to end, against a real server on loopback (svc/exports).

The file equals the stream value by value; cut downloads resume with Range to the same
bytes; `kill -9` or SIGTERM mid-export and a restart finish the same file; the per-key
cap, the disk budget and the TTL each hold.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Records, all_cids, create_job, iter_lines, records_of
from tests.support.exports import (
    Status,
    as_file_values,
    download,
    file_records,
    finished,
    poll,
    start_export,
)
from tests.support.servers import ServerProcess, start_server

FORMATS = ["ndjson.gz", "csv.zip"]


@pytest.fixture(scope="module")
def job(server: ServerProcess, demo_cids: list[str]) -> dict[str, Any]:
    return create_job(server.url, demo_cids)


@pytest.fixture(scope="module")
def truth(server: ServerProcess, job: dict[str, Any]) -> Records:
    return records_of(list(iter_lines(server.url, job["job_id"], format="arrays")))


@pytest.fixture(scope="module")
def exports(server: ServerProcess, job: dict[str, Any]) -> dict[str, tuple[Status, bytes]]:
    done = {}
    for fmt in FORMATS:
        status = finished(server.url, start_export(server.url, job["job_id"], fmt))
        done[fmt] = (status, download(server.url, status))
    return done


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_file_equals_the_stream_value_by_value(
    server: ServerProcess,
    truth: Records,
    exports: dict[str, tuple[Status, bytes]],
    fmt: str,
) -> None:
    status, blob = exports[fmt]
    assert file_records(fmt, blob) == as_file_values(fmt, truth)
    total = sum(len(rows) for rows in truth.values())
    assert status["records"] == status["total"] == total
    assert status["size"] == len(blob)
    assert status["sha256"] == hashlib.sha256(blob).hexdigest()
    r = httpx.head(server.url + status["links"]["file"])
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len(blob))
    assert r.headers["etag"] == f'"{status["sha256"]}"'
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-type"] == {"ndjson.gz": "application/gzip"}.get(
        fmt, "application/zip"
    )
    assert r.headers["content-disposition"].startswith("attachment; filename=")


def _cut_at(url: str, offset: int, headers: dict[str, str] | None = None) -> bytes:
    """GET `url` and drop the connection once `offset` bytes of the body arrived."""
    got = bytearray()
    with httpx.stream("GET", url, headers=headers, timeout=30) as r:
        assert r.status_code in (200, 206)
        for chunk in r.iter_raw(8192):
            got.extend(chunk)
            if len(got) >= offset:
                break
    return bytes(got[:offset])


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cut_download_resumes_with_range_to_the_same_bytes(
    server: ServerProcess, exports: dict[str, tuple[Status, bytes]], fmt: str
) -> None:
    status, whole = exports[fmt]
    url = server.url + status["links"]["file"]
    etag = f'"{status["sha256"]}"'
    rng = random.Random(fmt)
    for _ in range(6):  # one cut, then resumed to the end
        cut = rng.randrange(1, len(whole))
        part = _cut_at(url, cut)
        r = httpx.get(url, headers={"Range": f"bytes={cut}-", "If-Range": etag})
        assert r.status_code == 206
        assert r.headers["content-range"] == f"bytes {cut}-{len(whole) - 1}/{len(whole)}"
        assert r.headers["content-length"] == str(len(whole) - cut)
        assert hashlib.sha256(part + r.content).hexdigest() == status["sha256"]
    # several cuts in a row, each resumed from where the last one broke off
    got = b""
    for cut in sorted(rng.sample(range(1, len(whole)), 5)) + [len(whole)]:
        got += _cut_at(url, cut - len(got), {"Range": f"bytes={len(got)}-", "If-Range": etag})
    assert got == whole


def test_curl_resumes_a_cut_download(
    server: ServerProcess, exports: dict[str, tuple[Status, bytes]], tmp_path: Path
) -> None:
    """The README's example: `curl -C -` goes on from the partial file's length."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    status, whole = exports["ndjson.gz"]
    out = tmp_path / "job.ndjson.gz"
    out.write_bytes(whole[: len(whole) // 3])  # what a cut download left behind
    subprocess.run(
        ["curl", "-sSf", "-C", "-", "-o", str(out), server.url + status["links"]["file"]],
        check=True,
        timeout=60,
    )
    assert hashlib.sha256(out.read_bytes()).hexdigest() == status["sha256"]


def test_range_answers(server: ServerProcess, exports: dict[str, tuple[Status, bytes]]) -> None:
    status, whole = exports["csv.zip"]
    url = server.url + status["links"]["file"]
    size = len(whole)

    def get(**headers: str) -> httpx.Response:
        return httpx.get(url, headers=headers)

    stale = get(Range="bytes=100-", **{"If-Range": '"an-older-file"'})
    assert stale.status_code == 200 and stale.content == whole  # If-Range stale: whole file
    suffix = get(Range="bytes=-10")
    assert suffix.status_code == 206 and suffix.content == whole[-10:]
    middle = get(Range="bytes=5-14")
    assert middle.status_code == 206 and middle.content == whole[5:15]
    several = get(Range="bytes=0-1,5-6")
    assert several.status_code == 200 and several.content == whole  # documented: whole file
    malformed = get(Range="bytes=ten-")
    assert malformed.status_code == 200 and malformed.content == whole
    beyond = get(Range=f"bytes={size}-")
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.headers["content-type"] == "application/problem+json"
    assert beyond.json()["code"] == "range_not_satisfiable"
    head = httpx.head(url, headers={"Range": "bytes=5-14"})
    assert head.status_code == 206 and head.content == b""
    assert head.headers["content-length"] == "10"


def test_bad_export_requests(server: ServerProcess, job: dict[str, Any]) -> None:
    base = f"{server.url}/api/trace/job/{job['job_id']}/exports"
    cases: list[tuple[httpx.Response, int, str]] = [
        (httpx.post(base, json={"format": "xls"}), 400, "invalid_request"),
        (httpx.post(base, json={"format": "csv.zip", "x": 1}), 400, "invalid_request"),
        (
            httpx.post(base, content=b"{", headers={"content-type": "application/json"}),
            400,
            "invalid_request",
        ),
        (httpx.post(base, content=b"format=csv.zip"), 415, "unsupported_media_type"),
        (httpx.post(base, json={"format": "x" * 5000}), 413, "payload_too_large"),
        (
            httpx.post(f"{server.url}/api/trace/job/nope/exports", json={"format": "csv.zip"}),
            404,
            "job_not_found",
        ),
        (httpx.get(f"{base}/no-such-export"), 404, "export_not_found"),
        (httpx.get(f"{base}/no-such-export/file"), 404, "export_not_found"),
        (httpx.get(f"{base}/{'x' * 500}"), 404, "export_not_found"),
        (httpx.delete(f"{base}/x"), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["code"] == code


def test_an_export_is_found_only_under_its_own_job(
    server: ServerProcess, exports: dict[str, tuple[Status, bytes]], demo_cids: list[str]
) -> None:
    status, _ = exports["ndjson.gz"]
    other = create_job(server.url, demo_cids[:10])
    r = httpx.get(f"{server.url}/api/trace/job/{other['job_id']}/exports/{status['export_id']}")
    assert r.status_code == 404 and r.json()["code"] == "export_not_found"


# --- restarts -------------------------------------------------------------------------------


def _slow_export_env() -> dict[str, str]:
    # 50 records a batch: ~450 checkpoints, so a signal lands mid-export
    return {
        "TRACE_STREAM_BATCH_SIZE": "50",
        "TRACE_JOB_CREATE_RATE": "0",
        "TRACE_MAX_JOBS_PER_KEY": "0",
        "TRACE_EXPORT_WORKERS": "1",
    }


@pytest.mark.parametrize(
    ("fmt", "sig"),
    [("ndjson.gz", signal.SIGKILL), ("csv.zip", signal.SIGKILL), ("ndjson.gz", signal.SIGTERM)],
    ids=["ndjson.gz-kill9", "csv.zip-kill9", "ndjson.gz-sigterm"],
)
def test_an_interrupted_export_finishes_after_a_restart_exactly(
    demo_db: Path, tmp_path: Path, fmt: str, sig: signal.Signals
) -> None:
    data = tmp_path / "data"
    first = start_server(data, demo_db, _slow_export_env())
    try:
        job = create_job(first.url, all_cids(demo_db))
        status = start_export(first.url, job["job_id"], fmt)
        status = poll(first.url, status, lambda s: s["records"] >= 1500)
        if sig == signal.SIGKILL:
            os.kill(first.proc.pid, signal.SIGKILL)
            first.proc.wait()
        else:
            first.stop(signal.SIGTERM)
        assert status["state"] == "running", status
        assert 0 < status["records"] < status["total"]
    finally:
        first.stop(signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert "handed back at" in first.log()  # at its last checkpoint, not lost
    second = start_server(data, demo_db, _slow_export_env())
    try:
        resumed = finished(second.url, status)  # picked up at start, from its checkpoint
        assert "(attempt 2)" in second.log()
        blob = download(second.url, resumed)
        truth = records_of(list(iter_lines(second.url, job["job_id"], format="arrays")))
        assert file_records(fmt, blob) == as_file_values(fmt, truth)
        assert resumed["records"] == resumed["total"] == sum(map(len, truth.values()))
        clean = finished(second.url, start_export(second.url, job["job_id"], fmt))
        assert download(second.url, clean) == blob  # byte for byte: nothing twice, nothing lost
        assert clean["sha256"] == resumed["sha256"] == hashlib.sha256(blob).hexdigest()
        # the job's records digest, checkpointed with the export: its objects stream's
        digest = list(iter_lines(second.url, job["job_id"]))[-1]["digest"]
        assert resumed["digest"] == clean["digest"] == digest is not None
        assert not list((data / "exports" / ".work").iterdir())  # temporary files are gone
    finally:
        second.stop()


# --- limits ---------------------------------------------------------------------------------


@pytest.fixture
def locked_db(demo_db: Path, tmp_path: Path) -> Iterator[tuple[Path, Callable[[bool], None]]]:
    """A private copy of the demo database and lock(True/False): while locked, every
    read of the server waits (its busy timeout is 5 s)."""
    db = tmp_path / "demo.sqlite3"
    shutil.copy(demo_db, db)
    locker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)

    def lock(on: bool) -> None:
        locker.execute("BEGIN EXCLUSIVE" if on else "ROLLBACK")

    yield db, lock
    locker.close()


def test_the_per_key_cap_and_a_file_asked_for_too_early(
    locked_db: tuple[Path, Callable[[bool], None]], tmp_path: Path
) -> None:
    db, lock = locked_db
    srv = start_server(tmp_path / "data", db, {"TRACE_EXPORTS_PER_KEY": "1"})
    try:
        job = create_job(srv.url, all_cids(db)[:200])
        base = f"{srv.url}/api/trace/job/{job['job_id']}/exports"
        lock(True)
        try:
            first = start_export(srv.url, job["job_id"], "ndjson.gz")
            over = httpx.post(base, json={"format": "csv.zip"})
            assert over.status_code == 429 and over.json()["code"] == "too_many_exports"
            assert int(over.headers["retry-after"]) >= 1
            early = httpx.get(srv.url + first["links"]["file"])
            assert early.status_code == 409 and early.json()["code"] == "export_not_ready"
        finally:
            lock(False)
        finished(srv.url, first)
        finished(srv.url, start_export(srv.url, job["job_id"], "csv.zip"))  # its place is free
    finally:
        srv.stop()


def test_the_disk_budget(demo_db: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = start_server(data, demo_db, {"TRACE_EXPORT_DISK_BUDGET_MB": "1"})
    try:
        job = create_job(srv.url, all_cids(demo_db))
        # The CSV files of the whole demo job outgrow 1 MiB before they are zipped.
        status = poll(
            srv.url,
            start_export(srv.url, job["job_id"], "csv.zip"),
            lambda s: s["state"] in ("done", "failed"),
        )
        assert status["state"] == "failed", status
        assert status["error"]["code"] == "export_storage_full"
        assert "MiB" in status["error"]["message"]
        assert not list((data / "exports" / ".work").iterdir())  # its files are removed
        filler = data / "exports" / "filler"
        filler.write_bytes(b"\0" * (1 << 20))
        full = httpx.post(
            f"{srv.url}/api/trace/job/{job['job_id']}/exports", json={"format": "ndjson.gz"}
        )
        assert full.status_code == 507, full.text
        assert full.json()["code"] == "export_storage_full"
        filler.unlink()
        small = create_job(srv.url, all_cids(demo_db)[:50])
        finished(srv.url, start_export(srv.url, small["job_id"], "ndjson.gz"))
    finally:
        srv.stop()


def test_files_are_deleted_with_their_job(demo_db: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"TRACE_JOB_TTL_SECONDS": "4", "TRACE_JOB_PURGE_SECONDS": "1"}
    srv = start_server(data, demo_db, env)
    try:
        job = create_job(srv.url, all_cids(demo_db)[:100])
        status = finished(srv.url, start_export(srv.url, job["job_id"], "csv.zip"))
        path = data / "exports" / job["job_id"] / f"{status['export_id']}.zip"
        assert path.is_file() and path.stat().st_size == status["size"]
        deadline = time.monotonic() + 20
        while path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not path.exists() and not path.parent.exists()
        for url in (status["links"]["self"], status["links"]["file"]):
            r = httpx.get(srv.url + url)
            assert r.status_code == 404 and r.json()["code"] == "job_not_found"
    finally:
        srv.stop()


# --- replicas ---------------------------------------------------------------------------------


def test_replicas_sharing_redis_see_each_others_exports(
    demo_db: Path, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """Export state is in Redis: an export made on one replica is followed and downloaded
    on the other (local storage on a directory both share, as a network volume would be)."""
    env = {
        "TRACE_REDIS_URL": redis_url,
        "TRACE_REDIS_PREFIX": redis_prefix,
        "TRACE_EXPORTS_DIR": str(tmp_path / "shared-exports"),
        "TRACE_STREAM_BATCH_SIZE": "700",
    }
    a = start_server(tmp_path / "a", demo_db, env)
    b = start_server(tmp_path / "b", demo_db, env)
    try:
        job = create_job(a.url, all_cids(demo_db)[:400])
        status = finished(b.url, start_export(a.url, job["job_id"], "ndjson.gz"))
        blob = download(b.url, status)
        truth = records_of(list(iter_lines(b.url, job["job_id"], format="arrays")))
        assert file_records("ndjson.gz", blob) == truth
        assert hashlib.sha256(blob).hexdigest() == status["sha256"]
    finally:
        a.stop()
        b.stop()
