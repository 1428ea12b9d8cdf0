"""`pip install` of the repository gives the client alone: no server dependencies, and the
server's commands answer with the extra to install."""

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
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "node_modules")
    for tree in ("svc", "migrations", "frontend"):
        shutil.copytree(ROOT / tree, src / tree, ignore=skip)
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
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (["serve"], ["demo-data", "--cids", "10"], ["migrate"]):
        done = subprocess.run(
            [env_dir / "bin" / "trace-svc", *command],
            cwd=empty,
            capture_output=True,
            text=True,
            timeout=60,
        )
        said = done.stderr.strip().splitlines()
        assert done.returncode == 2, (command, done.stderr)
        assert 1 <= len(said) <= 3 and "Traceback" not in done.stderr, (command, said)
        assert "[server]" in said[0], said
        assert list(empty.iterdir()) == [], f"{command} left {list(empty.iterdir())}"
