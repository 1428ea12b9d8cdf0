"""Real servers for tests: the service as a uvicorn subprocess on a loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
TEST_SECRET = "test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(
    data_dir: Path,
    db_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    port: int | None = None,
    args: tuple[str, ...] = (),
    wait: float = 30.0,
    cwd: Path = ROOT,
) -> ServerProcess:
    """Start `python -m svc serve` and wait until /healthz answers. `cwd`: the checkout
    whose `svc` runs (`-m` imports from the working directory first; benches compare two)."""
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    full_env.update(
        {
            "TRACE_DATA_DIR": str(data_dir),
            "TRACE_SECRET": TEST_SECRET,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if db_path is not None:
        full_env["TRACE_DB_URL"] = f"sqlite:///{db_path}"
    full_env.update(env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "svc", "serve", "--port", str(port), *args],
            cwd=cwd,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", proc, log_path, full_env)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")


def build_demo_db(path: Path, cids: int, seed: int = 42) -> Path:
    """Build a demo database with the real command line (`python -m svc demo-data`)."""
    subprocess.run(
        [sys.executable, "-m", "svc", "demo-data", "--cids", str(cids), "--seed", str(seed)]
        + ["--db", str(path)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("TRACE_")},
        check=True,
        capture_output=True,
    )
    return path
