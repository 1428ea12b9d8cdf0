"""A rolling restart through the shipped nginx config gives a client no error at all.

Two replicas share one Redis behind a real nginx running deploy/nginx.conf (only addresses
and paths rewritten: tests/support/nginx.py). A poller reads a job through nginx every
20 ms while replica A is stopped and started again, then, 1 s after A is ready, replica B
is. Every answer must be a 200: a replica that is down or draining is skipped for that
one request and never ejected (max_fails=0), so the other one is always in rotation.
With the former `max_fails=1 fail_timeout=5s`, B went down while A was still ejected and
nginx answered 502 for about 2 s.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.support import all_cids, create_job
from tests.support.nginx import Nginx, nginx_binary
from tests.support.servers import ServerProcess, free_port, start_server

POLL = 0.02  # seconds between requests


class Poller(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answers: Counter[int | str] = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                try:
                    self.answers[client.get(self.url).status_code] += 1
                except httpx.HTTPError as exc:
                    self.answers[type(exc).__name__] += 1
                time.sleep(POLL)


def _restart(
    server: ServerProcess, data_dir: Path, port: int, db: Path, env: dict[str, str]
) -> ServerProcess:
    server.stop()  # SIGTERM: the replica drains, then exits
    again = start_server(data_dir, db, env, port=port)
    deadline = time.monotonic() + 30
    while httpx.get(f"{again.url}/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the restarted replica never got ready"
        time.sleep(0.05)
    return again


def test_rolling_restart_through_nginx_gives_no_error(
    small_demo_db: Path, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    nginx_binary()
    env = {"TRACE_REDIS_URL": redis_url, "TRACE_REDIS_PREFIX": redis_prefix}
    a_port, b_port = free_port(), free_port()
    a = start_server(tmp_path / "a", small_demo_db, env, port=a_port)
    b = start_server(tmp_path / "b", small_demo_db, env, port=b_port)
    nginx = Nginx(tmp_path / "nginx", (a_port, b_port))
    poller: Poller | None = None
    try:
        job = create_job(nginx.url, all_cids(small_demo_db)[:50])
        poller = Poller(f"{nginx.url}/api/trace/job/{job['job_id']}")
        poller.start()
        time.sleep(0.5)
        a = _restart(a, tmp_path / "a", a_port, small_demo_db, env)
        time.sleep(1.0)
        b = _restart(b, tmp_path / "b", b_port, small_demo_db, env)
        time.sleep(0.5)
        poller.stopping.set()
        poller.join(15)
        answers = dict(poller.answers)
        assert answers.get(200, 0) > 50, answers
        assert set(answers) == {200}, f"{answers}\n{nginx.log()[-2000:]}"
    finally:
        if poller is not None:
            poller.stopping.set()
        nginx.stop()
        a.stop()
        b.stop()
