"""An export whose replica is killed (`kill -9`) is finished by another replica within 30 s.

Two replicas share one Redis and S3-compatible storage (moto's server on loopback); each
has its own data directory, so the survivor does not see the dead one's partial file and
writes the export again from the start. Settings are the defaults (a 10 s lease), so the
30 s is what a deployment gets. The finished file must be byte-identical to a clean export.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from svc.exports.files import worker_identity
from tests.support import all_cids, create_job
from tests.support.exports import finished, poll, start_export
from tests.support.s3 import moto_s3
from tests.support.servers import start_server

BUCKET = "trace-takeover"
TAKEOVER = 30.0  # seconds from kill -9 to done, at the default lease


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    with moto_s3(BUCKET) as env:
        yield env


def _download(base: str, status: dict[str, object]) -> bytes:
    links = status["links"]
    assert isinstance(links, dict)
    r = httpx.get(base + links["file"], follow_redirects=True, timeout=60)
    assert r.status_code == 200, r.text
    return r.content


def test_a_killed_replicas_export_is_finished_by_the_other_within_30_s(
    demo_db: Path, tmp_path: Path, redis_url: str, redis_prefix: str, s3_env: dict[str, str]
) -> None:
    env = {
        **s3_env,
        "TRACE_REDIS_URL": redis_url,
        "TRACE_REDIS_PREFIX": redis_prefix,
        "TRACE_EXPORT_STORAGE": f"s3://{BUCKET}/trace",
        "TRACE_STREAM_BATCH_SIZE": "50",  # many checkpoints: the kill lands mid-export
        "TRACE_JOB_CREATE_RATE": "0",
        "TRACE_EXPORT_WORKERS": "1",
    }
    a = start_server(tmp_path / "a", demo_db, env)
    b = start_server(tmp_path / "b", demo_db, env)
    try:
        job = create_job(a.url, all_cids(demo_db))
        status = start_export(a.url, job["job_id"], "ndjson.gz")
        status = poll(a.url, status, lambda s: s["records"] >= 1500)
        assert status["state"] == "running" and status["records"] < status["total"]
        os.kill(a.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        a.proc.wait()
        states: list[str] = []

        def seen(s: dict[str, object]) -> bool:
            assert isinstance(s["state"], str)
            if not states or states[-1] != s["state"]:
                states.append(s["state"])
            return s["state"] in ("done", "failed")

        done = poll(b.url, status, seen, timeout=TAKEOVER + 10)
        took = time.monotonic() - killed
        assert done["state"] == "done", done
        assert took < TAKEOVER, f"taken over and finished {took:.1f} s after kill -9"
        assert "recovering" in states, states  # between the lease's end and the takeover
        assert "(attempt 2)" in b.log()
        blob = _download(b.url, done)
        clean = finished(b.url, start_export(b.url, job["job_id"], "ndjson.gz"))
        assert _download(b.url, clean) == blob  # byte for byte
        assert clean["sha256"] == done["sha256"] == hashlib.sha256(blob).hexdigest()
        assert done["records"] == done["total"]
    finally:
        a.stop(signal.SIGKILL)
        b.stop()


def test_a_writers_identity_survives_a_new_hostname(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = worker_identity(tmp_path, 0)
    monkeypatch.setattr(socket, "gethostname", lambda: "another-host-after-restart")
    assert worker_identity(tmp_path, 0) == first  # kept in the data directory
    assert worker_identity(tmp_path / "other", 0) != first  # another replica: its own
    assert worker_identity(tmp_path, 1) != first  # a sibling worker
