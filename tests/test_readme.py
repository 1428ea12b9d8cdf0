"""README.md's examples work as pasted: every `sh` block, in order, in one bash session, and
every `python` block on its own, against a server on loopback (`console` blocks are shown,
not run). The files they write are covered by .gitignore."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ROOT, ServerProcess, start_server

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```(sh|python)\n(.*?)^```$", README, re.M | re.S)
QUICK_START_URL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("data")
    srv = start_server(data, None, {"TRACE_DEMO_CIDS": "1000"}, wait=120)
    yield srv
    srv.stop()


def _workdir(tmp_path: Path) -> Path:
    """An empty directory with `.venv` as in a checkout after `make serve`."""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return work


def _ignored(name: str) -> bool:
    patterns = [p.strip().lstrip("/") for p in (ROOT / ".gitignore").read_text().splitlines()]
    return any(fnmatch.fnmatch(name, p.rstrip("/")) for p in patterns if p and p[0] != "#")


def test_the_readme_has_runnable_blocks_of_both_kinds() -> None:
    kinds = [kind for kind, _ in BLOCKS]
    assert kinds.count("sh") >= 3 and kinds.count("python") >= 2, kinds
    assert all(QUICK_START_URL in body for kind, body in BLOCKS if kind == "python")


def test_the_shell_blocks_run_in_order(demo: ServerProcess, tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    script = "set -eu\n" + "\n".join(body for kind, body in BLOCKS if kind == "sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    done = subprocess.run(
        ["bash", "-c", script.replace(QUICK_START_URL, demo.url)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert '{"type":"meta"' in out and '"resumed":true' in out and '"type":"complete"' in out
    assert " records" in done.stderr  # the page loop's counts
    assert (work / "job.ndjson").read_bytes().splitlines()[-1].startswith(b'{"type":"complete"')
    assert (work / "job.jsonl.since").exists()
    assert (work / "history.csv").read_text().startswith("CONTAINERID,")
    with zipfile.ZipFile(work / "job.zip") as archive:
        assert "history.csv" in archive.namelist()
    written = sorted(p.name for p in work.iterdir() if p.name != ".venv")
    assert written and [n for n in written if not _ignored(n)] == [], written


@pytest.mark.parametrize("index", [i for i, (kind, _) in enumerate(BLOCKS) if kind == "python"])
def test_each_python_block_runs_as_pasted(demo: ServerProcess, tmp_path: Path, index: int) -> None:
    code = BLOCKS[index][1].replace(QUICK_START_URL, demo.url)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=_workdir(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "a block that prints nothing shows nothing"
