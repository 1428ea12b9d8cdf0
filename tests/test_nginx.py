"""Through a real nginx (the shipped deploy/nginx.conf, tests/support/nginx.py) with a short
`proxy_read_timeout`: a stream whose database stalls part-way for longer than that timeout
survives because of the heartbeats, and completes exactly; with heartbeats off nginx cuts it
(the client sees the body end without `complete`), and a resume with the last `since`
completes it once the database is back.

The stall is a SQLite `BEGIN EXCLUSIVE` taken when the first records line arrives (as in
tests/test_faults.py): the next page query waits on the lock (busy timeout 5 s), then runs.
The job's stream (~25 MB) is far larger than what the socket buffers can hold, so the server
cannot have finished before the lock. Heartbeats every 1 s, nginx's timeout 3 s, the lock
held 4 s.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    DOMAINS,
    all_cids,
    create_job,
    iter_lines,
    records_of,
    records_union,
    sql_truth,
)
from tests.support.nginx import SHIPPED, Nginx, local_config, nginx_binary
from tests.support.servers import ServerProcess, start_server

READ_TIMEOUT = 3  # nginx's proxy_read_timeout here (deploy/nginx.conf ships 60 s)
HEARTBEAT = 1.0
STALL = 4.0  # > READ_TIMEOUT, < the SQLite source's busy timeout (5 s)
TIMED_OUT = "upstream timed out"  # nginx's error log line for a proxy_read_timeout


@pytest.fixture
def db(medium_demo_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.sqlite3"
    shutil.copy(medium_demo_db, path)  # this test locks it
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
    """A job whose totals are counted already: only page queries meet the lock."""
    job_id = str(create_job(base, cids)["job_id"])
    deadline = time.monotonic() + 30
    while len(httpx.get(f"{base}/api/trace/job/{job_id}", timeout=10).json()["totals"]) < len(
        DOMAINS
    ):
        assert time.monotonic() < deadline, "totals were not counted"
        time.sleep(0.05)
    return job_id


@dataclass
class Stalled:
    """What a client read of a stream during which the database stalled."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    held: list[bool] = field(default_factory=list)  # per line: the lock was held when it came
    error: Exception | None = None  # what ended the body, if not its end
    ended_while_held: bool = False


def _stream_with_a_stall(db: Path, url: str) -> Stalled:
    """Read the stream; lock the database for STALL seconds once the first records arrive."""
    locker = sqlite3.connect(db, timeout=10, isolation_level=None, check_same_thread=False)
    released = threading.Event()
    releaser = None

    def release_later() -> None:
        time.sleep(STALL)
        locker.execute("ROLLBACK")
        released.set()

    got = Stalled()
    try:
        with httpx.stream("GET", url, timeout=30) as r:
            assert r.status_code == 200
            for raw in r.iter_lines():
                if not raw:
                    continue
                got.lines.append(json.loads(raw))
                got.held.append(releaser is not None and not released.is_set())
                if releaser is None and got.lines[-1]["type"] == "records":
                    locker.execute("BEGIN EXCLUSIVE")  # every reader now waits
                    releaser = threading.Thread(target=release_later, daemon=True)
                    releaser.start()
    except httpx.TransportError as exc:  # nginx closed the connection mid-body
        got.error = exc
    got.ended_while_held = releaser is not None and not released.is_set()
    assert releaser is not None, "no records line arrived"
    releaser.join()
    locker.close()
    return got


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
    with_heartbeats: tuple[ServerProcess, Nginx], db: Path
) -> None:
    srv, nginx = with_heartbeats
    cids = all_cids(db)
    job_id = _ready_job(srv.url, cids)
    got = _stream_with_a_stall(db, f"{nginx.url}/api/trace/job/{job_id}/stream")
    assert got.error is None, (got.error, nginx.log())
    kinds = [line["type"] for line in got.lines]
    assert kinds[-1] == "complete" and not got.ended_while_held, kinds[-3:]
    # Silence longer than nginx's timeout, bridged by heartbeats passed on unbuffered.
    beats = [held for held, kind in zip(got.held, kinds, strict=True) if kind == "heartbeat"]
    assert sum(beats) >= 2, beats
    assert kinds.index("heartbeat") > kinds.index("records")  # part-way, not before the start
    assert records_of(got.lines) == sql_truth(db, cids, DOMAINS)
    assert TIMED_OUT not in nginx.log()


def test_without_heartbeats_nginx_cuts_the_stalled_stream(
    without_heartbeats: tuple[ServerProcess, Nginx], db: Path
) -> None:
    srv, nginx = without_heartbeats
    cids = all_cids(db)
    job_id = _ready_job(srv.url, cids)
    url = f"{nginx.url}/api/trace/job/{job_id}/stream"
    got = _stream_with_a_stall(db, url)
    kinds = [line["type"] for line in got.lines]
    assert "complete" not in kinds and "heartbeat" not in kinds, kinds[-3:]
    assert got.ended_while_held  # cut while the database was still stalled
    assert isinstance(got.error, httpx.RemoteProtocolError), got.error  # a body cut short
    assert TIMED_OUT in nginx.log()
    # The database is back: a resume with the last token, through the same nginx, completes.
    since = [line["since"] for line in got.lines if line["type"] == "records"][-1]
    rest = list(iter_lines(nginx.url, job_id, since))
    assert rest[-1]["type"] == "complete"
    assert records_union(got.lines, rest) == sql_truth(db, cids, DOMAINS)
