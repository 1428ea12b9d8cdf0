"""`pip install` of the repository gives the client alone: no server dependencies."""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

from tests.support.servers import ROOT

CHECK = """
import importlib.util, sys
import svc.client, svc.client.fetch
from svc.client import TraceClient, AsyncTraceClient
server = ("starlette", "uvicorn", "redis", "oracledb")
assert not [m for m in server if importlib.util.find_spec(m)], "server deps installed"
assert not [m for m in server if m in sys.modules]
print("client-only ok")
"""


def test_the_base_install_is_the_client_without_server_dependencies(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "svc", src / "svc", ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    done = subprocess.run(
        [python, "-c", CHECK], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "client-only ok" in done.stdout
    help_text = subprocess.run(
        [env_dir / "bin" / "trace-svc", "fetch", "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0 and "--records-only" in help_text.stdout, help_text.stderr
