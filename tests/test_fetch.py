"""The `fetch` command against a real server: a full download, and a resumed one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.servers import ROOT, ServerProcess
from tests.support import DOMAINS, create_job, expected_rows, records_of


def _fetch(url: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svc", "fetch", url, "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_bytes().splitlines()]


def test_fetch_downloads_and_resumes_a_cut_file(
    server: ServerProcess, demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    job = create_job(server.url, demo_cids[:300])
    url = f"{server.url}/api/trace/job/{job['job_id']}"
    truth = {d: expected_rows(demo_db, demo_cids[:300], DOMAINS[d]) for d in DOMAINS}

    full = tmp_path / "full.ndjson"
    done = _fetch(url, full)
    assert done.returncode == 0, done.stderr
    assert records_of(_lines(full)) == truth

    # Cut the file mid-line inside the second domain, as a crash would, and fetch again.
    data = full.read_bytes()
    cut = data.index(b'"domain":"materials","batch":2') + 100
    partial = tmp_path / "partial.ndjson"
    partial.write_bytes(data[:cut])
    resumed = _fetch(url, partial)
    assert resumed.returncode == 0, resumed.stderr
    lines = _lines(partial)
    assert records_of(lines) == truth
    kinds = [(x["type"], x.get("domain")) for x in lines if x["type"] != "records"]
    assert len(kinds) == len(set(kinds)), kinds  # no meta/domain line written twice
    assert lines[-1]["type"] == "complete"
    assert _fetch(url, partial).returncode == 0  # already complete: nothing to do
