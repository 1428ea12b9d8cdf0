"""A real nginx for tests: the shipped deploy/nginx.conf, pointed at loopback, run privately.

`local_config` rewrites only what must differ on a test machine (the upstream addresses, the
listen address, the log and temporary file paths, one worker) and, if asked, the
`proxy_read_timeout`; every other directive of the shipped `location` (HTTP/1.1 upstream,
`proxy_buffering off`, the retry rules) is the one that is tested. A rewrite that no longer
matches the shipped file fails, so the test cannot drift away from it.

Without an `nginx` binary (Debian package nginx-light; TRACE_TEST_NGINX names another path)
the tests that need one are skipped, or fail if TRACE_TEST_REQUIRE_NGINX is set (CI).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ROOT, free_port

SHIPPED = ROOT / "deploy/nginx.conf"


def nginx_binary() -> str:
    name = os.environ.get("TRACE_TEST_NGINX", "nginx")
    # Debian installs it in /usr/sbin, which a non-root PATH may not hold.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        reason = f"{name} is not installed (Debian package nginx-light, or scripts/setup --dev)"
        if os.environ.get("TRACE_TEST_REQUIRE_NGINX"):
            pytest.fail(reason + " and TRACE_TEST_REQUIRE_NGINX is set")
        pytest.skip(reason)
    return found


def _sub(pattern: str, repl: str, text: str, count: int = 1) -> str:
    new, n = re.subn(pattern, repl, text)
    assert n == count, f"deploy/nginx.conf changed: {pattern!r} matched {n} times, not {count}"
    return new


def local_config(
    prefix: Path,
    upstream_port: int | tuple[int, int],
    listen_port: int,
    *,
    read_timeout: float | None = None,
) -> str:
    """deploy/nginx.conf for a private nginx in `prefix` in front of 127.0.0.1:upstream_port
    (both upstreams; or a pair of ports, one for each)."""
    text = SHIPPED.read_text()
    a, b = upstream_port if isinstance(upstream_port, tuple) else (upstream_port, upstream_port)
    text = _sub(r"server trace-a:8000", f"server 127.0.0.1:{a}", text)
    text = _sub(r"server trace-b:8000", f"server 127.0.0.1:{b}", text)
    text = _sub(r"listen 80;", f"listen 127.0.0.1:{listen_port};", text)
    text = _sub(r"worker_processes auto;", "worker_processes 1;", text)
    text = _sub(r"access_log /dev/stdout;", f"access_log {prefix}/access.log;", text)
    text = _sub(r"error_log /dev/stderr warn;", f"error_log {prefix}/error.log warn;", text)
    if read_timeout is not None:
        text = _sub(r"proxy_read_timeout \d+s;", f"proxy_read_timeout {read_timeout}s;", text)
    temp = "".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = _sub(r"http \{\n", "http {\n" + temp, text)
    # As root the workers would switch to `nobody`, who cannot enter pytest's 0700 tmp dirs.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"daemon off;\npid {prefix}/nginx.pid;\n{user}{text}"


class Nginx:
    """One nginx master (and its worker) in `prefix`, listening on a free loopback port."""

    def __init__(
        self,
        prefix: Path,
        upstream_port: int | tuple[int, int],
        *,
        read_timeout: float | None = None,
    ) -> None:
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prefix.mkdir(parents=True, exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(local_config(prefix, upstream_port, self.port, read_timeout=read_timeout))
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", str(self.error_log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_serving()

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    def log(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def _wait_until_serving(self, wait: float = 15.0) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except (OSError, httpx.HTTPError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not serve within {wait} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
