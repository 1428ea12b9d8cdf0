"""Through a real nginx (the shipped deploy/nginx.conf, tests/nginx.py) with a short
`proxy_read_timeout`: a stream whose database stalls for longer than that timeout survives
because of the heartbeats, and completes exactly; with heartbeats off nginx cuts it (the client
sees the body end without `complete`), and a fresh request completes it once the database is
back.

The stall is a SQLite `BEGIN EXCLUSIVE` held from before the stream's first page query (as in
tests/test_faults.py): the query waits on the lock (busy timeout 5 s), then runs. Heartbeats
every 1 s, nginx's timeout 3 s, the lock held 4 s.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.nginx import SHIPPED, Nginx, local_config, nginx_binary
from tests.servers import ServerProcess, start_server
from tests.support import DOMAINS, create_job, expected_rows, records_of

READ_TIMEOUT = 3  # nginx's proxy_read_timeout here (deploy/nginx.conf ships 60 s)
HEARTBEAT = 1.0
STALL = 4.0  # > READ_TIMEOUT, < the SQLite source's busy timeout (5 s)
TIMED_OUT = "upstream timed out"  # nginx's error log line for a proxy_read_timeout


@pytest.fixture
def db(demo_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.sqlite3"
    shutil.copy(demo_db, path)  # this test locks it
    return path


def _behind_nginx(tmp_path: Path, db: Path, heartbeat: float) -> tuple[ServerProcess, Nginx]:
    nginx_binary()  # skip (or fail under TRACE_TEST_REQUIRE_NGINX) before starting anything
    srv = start_server(
        tmp_path / "data",
        db,
        {"TRACE_STREAM_BATCH_SIZE": "500", "TRACE_HEARTBEAT_SECONDS": str(heartbeat)},
    )
    try:
        return srv, Nginx(
            tmp_path / "nginx", int(srv.url.rsplit(":", 1)[1]), read_timeout=READ_TIMEOUT
        )
    except BaseException:
        srv.stop()
        raise


@pytest.fixture
def with_heartbeats(tmp_path: Path, db: Path) -> Iterator[tuple[ServerProcess, Nginx]]:
    srv, nginx = _behind_nginx(tmp_path, db, HEARTBEAT)
    yield srv, nginx
    nginx.stop()
    srv.stop()


@pytest.fixture
def without_heartbeats(tmp_path: Path, db: Path) -> Iterator[tuple[ServerProcess, Nginx]]:
    srv, nginx = _behind_nginx(tmp_path, db, 0)
    yield srv, nginx
    nginx.stop()
    srv.stop()


def _ready_job(base: str, cids: list[str]) -> str:
    """A job whose totals are counted already: nothing but the page query touches the lock."""
    job_id = str(create_job(base, cids)["job_id"])
    deadline = time.monotonic() + 30
    while len(httpx.get(f"{base}/api/trace/job/{job_id}", timeout=10).json()["totals"]) < len(
        DOMAINS
    ):
        assert time.monotonic() < deadline, "totals were not counted"
        time.sleep(0.05)
    return job_id


def _stream_while_stalled(
    db: Path, url: str
) -> tuple[list[tuple[bool, dict[str, Any]]], Exception | None]:
    """Lock the database for STALL seconds and read the stream meanwhile: every line with
    whether the lock was still held when it arrived, and the error that ended the body if any."""
    locker = sqlite3.connect(db, timeout=10, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")  # every reader now waits
    released = threading.Event()

    def release_later() -> None:
        time.sleep(STALL)
        locker.execute("ROLLBACK")
        released.set()

    releaser = threading.Thread(target=release_later, daemon=True)
    releaser.start()
    lines: list[tuple[bool, dict[str, Any]]] = []
    error: Exception | None = None
    try:
        with httpx.stream("GET", url, timeout=30) as r:
            assert r.status_code == 200
            for raw in r.iter_lines():
                if raw:
                    lines.append((not released.is_set(), json.loads(raw)))
    except httpx.TransportError as exc:  # nginx closed the connection mid-body
        error = exc
    releaser.join()
    locker.close()
    return lines, error


def test_the_generated_config_is_the_shipped_one(tmp_path: Path) -> None:
    """Only addresses, paths, the worker count and the read timeout differ from deploy/."""
    shipped = SHIPPED.read_text().splitlines()
    conf = local_config(tmp_path, 8000, 8080, read_timeout=READ_TIMEOUT).splitlines()
    rewritten = ("server trace-", "listen ", "worker_processes", "access_log", "error_log")
    changed = [line.strip() for line in shipped if line not in conf]
    assert changed and all(c.startswith((*rewritten, "proxy_read_timeout")) for c in changed)
    assert f"            proxy_read_timeout {READ_TIMEOUT}s;" in conf
    assert "            proxy_buffering off;" in conf


def test_heartbeats_keep_a_stalled_stream_alive_through_nginx(
    with_heartbeats: tuple[ServerProcess, Nginx], db: Path, demo_cids: list[str]
) -> None:
    srv, nginx = with_heartbeats
    job_id = _ready_job(srv.url, demo_cids)
    arrivals, error = _stream_while_stalled(db, f"{nginx.url}/api/trace/job/{job_id}/stream")
    assert error is None, (error, nginx.log())
    lines = [line for _, line in arrivals]
    assert lines[-1]["type"] == "complete", [line["type"] for line in lines]
    beats_while_stalled = [held for held, line in arrivals if line["type"] == "heartbeat"]
    # Silence longer than nginx's timeout, bridged by heartbeats passed on unbuffered.
    assert sum(beats_while_stalled) >= int(READ_TIMEOUT / HEARTBEAT), lines[:8]
    union = records_of(lines)
    assert union == {d: expected_rows(db, demo_cids, DOMAINS[d]) for d in DOMAINS}
    assert TIMED_OUT not in nginx.log()


def test_without_heartbeats_nginx_cuts_the_stalled_stream(
    without_heartbeats: tuple[ServerProcess, Nginx], db: Path, demo_cids: list[str]
) -> None:
    srv, nginx = without_heartbeats
    job_id = _ready_job(srv.url, demo_cids)
    url = f"{nginx.url}/api/trace/job/{job_id}/stream"
    arrivals, error = _stream_while_stalled(db, url)
    kinds = [line["type"] for _, line in arrivals]
    assert "complete" not in kinds and "records" not in kinds, kinds
    assert all(held for held, _ in arrivals)  # it ended while the database was still stalled
    assert isinstance(error, httpx.RemoteProtocolError), error  # the body ended, unfinished
    assert TIMED_OUT in nginx.log()
    # The database is back: the same request through the same nginx now completes exactly.
    lines = [json.loads(raw) for raw in httpx.get(url, timeout=30).text.splitlines() if raw]
    assert lines[-1]["type"] == "complete"
    assert records_of(lines) == {d: expected_rows(db, demo_cids, DOMAINS[d]) for d in DOMAINS}
