"""A real 3-master Redis Cluster for tests, on free loopback ports.

Three `redis-server --cluster-enabled yes` processes joined by `redis-cli --cluster create`
(no replicas), each in its own directory; `redis_cluster` is one cluster per test module.
Skipped without the binaries, or failed when TRACE_TEST_REQUIRE_REDIS is set, like
`tests.support.redis_server`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.redis_server import REDIS_SERVER
from tests.support.servers import free_port

REDIS_CLI = os.environ.get("TRACE_TEST_REDIS_CLI", "redis-cli")


def _raw(reply: object) -> bytes:
    """A reply as bytes, whether redis-py parsed it or not."""
    if isinstance(reply, dict):
        return b"".join(f"{k}:{v}\n".encode() for k, v in reply.items())
    return reply if isinstance(reply, bytes) else str(reply).encode()


class RedisCluster:
    """Three masters on loopback; `urls[i]` is node i's URL (any one works as a seed)."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.directory = directory
        self.ports = [free_port() for _ in range(masters)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{port}/0" for port in self.ports]

    def start(self, wait: float = 20.0) -> None:
        for port in self.ports:
            node_dir = self.directory / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            with (node_dir / "redis.log").open("ab") as log:
                self.procs.append(
                    subprocess.Popen(
                        [
                            REDIS_SERVER,
                            "--port", str(port),
                            "--bind", "127.0.0.1",
                            "--cluster-enabled", "yes",
                            "--cluster-config-file", str(node_dir / "nodes.conf"),
                            # its own bus port: the default, port + 10000, may not exist
                            "--cluster-port", str(free_port()),
                            "--save", "",
                            "--appendonly", "no",
                            "--dir", str(node_dir),
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        deadline = time.monotonic() + wait
        for port in self.ports:
            self._wait(port, deadline, lambda c: bool(c.ping()))
        subprocess.run(
            [REDIS_CLI, "--cluster", "create"]
            + [f"127.0.0.1:{port}" for port in self.ports]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=wait,
        )
        for port in self.ports:
            self._wait(
                port,
                deadline,
                lambda c: b"cluster_state:ok" in _raw(c.execute_command("CLUSTER INFO")),
            )

    def _wait(self, port: int, deadline: float, ready: object) -> None:
        client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    if ready(client):  # type: ignore[operator]
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis cluster node {port} not ready")
                time.sleep(0.05)
        finally:
            client.close()

    def keys_per_node(self, pattern: str) -> list[int]:
        """How many keys matching `pattern` each node holds."""
        counts = []
        for port in self.ports:
            client = redis.Redis(port=port)
            try:
                counts.append(sum(1 for _ in client.scan_iter(match=pattern, count=1000)))
            finally:
                client.close()
        return counts

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A private 3-master Redis Cluster for this module."""
    missing = [b for b in (REDIS_SERVER, REDIS_CLI) if shutil.which(b) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (Debian packages redis-server, redis-tools)"
        if os.environ.get("TRACE_TEST_REQUIRE_REDIS"):
            pytest.fail(reason + " and TRACE_TEST_REQUIRE_REDIS is set")
        pytest.skip(reason)
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()
