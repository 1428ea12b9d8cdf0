"""SIGTERM: readiness turns 503, streams end with a `reconnect` line, another server resumes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx

from tests.support import create_job, iter_lines, records_union, sql_truth
from tests.support.servers import start_server


def test_sigterm_drains_streams_with_a_resumable_reconnect_line(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    env = {"TRACE_STREAM_BATCH_SIZE": "100"}
    first = start_server(tmp_path, demo_db, env)
    job = create_job(first.url, demo_cids, ["history", "materials"])
    lines = []
    try:
        url = f"{first.url}/api/trace/job/{job['job_id']}/stream"
        with httpx.stream("GET", url, timeout=30) as r:
            it = r.iter_lines()
            for _ in range(3):  # meta, domain_start, a records line; then stop reading
                lines.append(json.loads(next(it)))
            first.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            unready = None
            while time.monotonic() < deadline:  # readiness turns 503 while it drains
                ready = httpx.get(first.url + "/readyz", timeout=1)
                if ready.status_code == 503:
                    unready = ready
                    break
                time.sleep(0.02)
            assert unready is not None, "readiness never answered 503 while draining"
            assert unready.json()["code"] == "draining"
            assert unready.headers["retry-after"] == "1"
            refused = httpx.get(f"{first.url}/api/trace/job/{job['job_id']}/stream", timeout=5)
            assert refused.status_code == 503 and refused.json()["code"] == "draining"
            lines.extend(json.loads(x) for x in it if x)
        assert first.proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        first.stop()
    last = lines[-1]
    assert last["type"] == "reconnect" and last["reason"] == "draining", last
    assert last["since"] == [x for x in lines if x["type"] == "records"][-1]["since"]

    second = start_server(tmp_path, demo_db, env)  # same data dir: the job survived the restart
    try:
        rest = list(iter_lines(second.url, job["job_id"], last["since"]))
    finally:
        second.stop()
    assert rest[-1]["type"] == "complete"
    union = records_union(lines, rest)
    assert union == sql_truth(demo_db, demo_cids, union)
    assert set(union) == {"history", "materials"}
