"""A real Redis for tests: a private `redis-server` on a free loopback port, or an external one.

A pytest plugin (registered in conftest.py), so every test may ask for its fixtures.

`redis_url` is `TRACE_TEST_REDIS_URL` when set, otherwise a private server of the
module. `private_redis` is always a private server (it is stopped, paused and restarted
by the outage tests). Without a `redis-server` binary (TRACE_TEST_REDIS_SERVER names
another path) the tests that need one are skipped, or fail if TRACE_TEST_REQUIRE_REDIS
is set. Each test gets its own key prefix (`redis_prefix`), so tests never see each
other's keys, even on a shared external server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.servers import free_port

REDIS_SERVER = os.environ.get("TRACE_TEST_REDIS_SERVER", "redis-server")


class RedisServer:
    """One `redis-server` process: no persistence, loopback only, in its own directory."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, wait: float = 10.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + wait
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited early:\n{self.log()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGKILL: an abrupt outage, and fast)."""
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        """Start again on the same port, empty (persistence is off)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the process: connections are accepted by the kernel but never answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_private_redis(directory: Path) -> RedisServer:
    if shutil.which(REDIS_SERVER) is None:
        reason = f"{REDIS_SERVER} is not installed (Debian package redis-server)"
        if os.environ.get("TRACE_TEST_REQUIRE_REDIS"):
            pytest.fail(reason + " and TRACE_TEST_REQUIRE_REDIS is set")
        pytest.skip(reason)
    server = RedisServer(directory)
    server.start()
    return server


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for this module, free to be stopped and restarted."""
    server = start_private_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TRACE_TEST_REDIS_URL, or the URL of a private redis-server for this module."""
    external = os.environ.get("TRACE_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = start_private_redis(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own."""
    return f"test-{uuid.uuid4().hex[:12]}:"
