"""The built wheel is the service: installed with `[server]` into a fresh venv, `trace-svc
serve` in an empty directory builds the demo, serves the front end and streams a job."""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import subprocess
import sys
import time
import venv
from pathlib import Path

import httpx

from tests.support.servers import ROOT, free_port

_SOURCES = ("pyproject.toml", "setup.py", "README.md")
_TREES = ("svc", "migrations", "frontend")


def _build_wheel(tmp: Path) -> Path:
    """Build from a copy of the sources, so the checkout gets no build/ folder."""
    src = tmp / "src"
    src.mkdir()
    for name in _SOURCES:
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "node_modules")
    for name in _TREES:
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, src],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("trace_stream-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A new venv holding the wheel; the `[server]` extra's packages come from this
    interpreter's site-packages (offline and quick), and pip checks they satisfy it."""
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Only a path: .pth files in that folder (the checkout's editable install) stay unread.
    Path(purelib, "server-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-index", f"{wheel}[server]"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return env_dir


def test_the_wheel_serves_the_demo_from_an_empty_directory(tmp_path: Path) -> None:
    env_dir = _fresh_venv(tmp_path, _build_wheel(tmp_path))
    where = subprocess.run(
        [env_dir / "bin" / "python", "-c", "import svc; print(svc.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(env_dir)), where  # the wheel's copy, not the checkout's

    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    env |= {"TRACE_DEMO_CIDS": "300", "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [env_dir / "bin" / "trace-svc", "serve", "--port", str(port)],
            cwd=empty,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert httpx.get(base + "/consumer.js").status_code == 200  # the page's modules too
        cids = httpx.get(base + "/api/demo/cids", params={"n": 50}).json()
        job = httpx.post(base + "/api/trace/job", json=cids).json()["job_id"]
        lines = httpx.get(f"{base}/api/trace/job/{job}/stream", timeout=60).text.splitlines()
        kinds = [json.loads(line)["type"] for line in lines]
        assert kinds[0] == "meta" and kinds[-1] == "complete" and "records" in kinds
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    log = log_path.read_text()
    assert code == 0 and "Traceback" not in log, log
    assert sorted(p.name for p in (empty / ".trace-data").iterdir() if ".building" in p.name) == []
