"""The `fetch` command against a real server: full downloads, resumed after a cut file,
SIGKILL and Ctrl-C, in both output formats; exit codes; no file for an unknown job."""

from __future__ import annotations

import functools
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

import svc.client.fetch
from svc.client import Retry, TraceClient
from svc.client.fetch import fetch, ndjson_checkpoint
from svc.client.progress import make_progress
from tests.support import DOMAINS, create_job, records_of, sql_truth
from tests.support.cutproxy import CutProxy
from tests.support.servers import ROOT, ServerProcess, free_port


def _cmd(url: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "svc", "fetch", url, "-o", str(out), *extra]


def _fetch(url: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(url, out, *extra), cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_bytes().splitlines()]


def _records_only(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for rec in _lines(path):
        domain = rec.pop("_domain")
        assert list(rec) == list(DOMAINS[domain].columns)
        out.setdefault(domain, []).append(tuple(rec.values()))
    return out


def _no_repeats(lines: list[dict[str, Any]]) -> None:
    kinds = [(x["type"], x.get("domain")) for x in lines if x["type"] not in ("records",)]
    starts = [k for k in kinds if k[0] == "domain_start"]
    others = [k for k in kinds if k[0] != "domain_start"]
    assert len(others) == len(set(others)), kinds  # no meta/domain_end written twice
    assert all(starts.count(k) <= 2 for k in starts)  # at most once more with a late total
    assert lines[-1]["type"] == "complete"


def test_fetch_downloads_and_resumes_a_cut_file(
    server: ServerProcess, demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    job = create_job(server.url, demo_cids[:300])
    url = f"{server.url}/api/trace/job/{job['job_id']}"
    truth = sql_truth(demo_db, demo_cids[:300], DOMAINS)

    full = tmp_path / "full.ndjson"
    done = _fetch(url, full)
    assert done.returncode == 0, done.stderr
    assert records_of(_lines(full)) == truth
    assert "fetch: history" in done.stderr  # no terminal: plain progress lines
    assert "HTTP Request" not in done.stderr  # httpx's INFO lines are off without -v

    # Cut the file at many places, as a crash would (mid-line too), and fetch again.
    data = full.read_bytes()
    points = [data.index(b'"domain":"materials","batch":2') + 100, data.index(b"domain_end") - 3]
    points += [data.index(b'"type":"aggregation"') + 5, len(data) - 10, 40]
    for cut in points:
        partial = tmp_path / f"partial-{cut}.ndjson"
        partial.write_bytes(data[:cut])
        resumed = _fetch(url, partial)
        assert resumed.returncode == 0, resumed.stderr
        lines = _lines(partial)
        assert records_of(lines) == truth, cut
        _no_repeats(lines)
    again = _fetch(url, partial)
    assert again.returncode == 0 and "already complete" in again.stderr


def test_records_only(
    server: ServerProcess, demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    job = create_job(server.url, demo_cids[:200])
    url = f"{server.url}/api/trace/job/{job['job_id']}"
    out = tmp_path / "records.jsonl"
    done = _fetch(url, out, "--records-only")
    assert done.returncode == 0, done.stderr
    assert _records_only(out) == sql_truth(demo_db, demo_cids[:200], DOMAINS)
    assert json.loads((tmp_path / "records.jsonl.since").read_text())["complete"] is True


@pytest.mark.parametrize("mode", ["ndjson", "records-only"])
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_killed_part_way_then_rerun(
    server: ServerProcess,
    demo_db: Path,
    demo_cids: list[str],
    tmp_path: Path,
    mode: str,
    stop: signal.Signals,
) -> None:
    """Through a throttled proxy (~2 s for the job), stopped once the file has grown."""
    cids = demo_cids[:600]
    job = create_job(server.url, cids)
    extra = ("--records-only",) if mode == "records-only" else ()
    out = tmp_path / "out"
    port = int(server.url.rsplit(":", 1)[1])
    with CutProxy(port, marker=b"/stream", stream_bytes_per_s=800_000) as proxy:
        url = f"{proxy.url}/api/trace/job/{job['job_id']}"
        proc = subprocess.Popen(_cmd(url, out, *extra), cwd=ROOT, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 300_000):
            time.sleep(0.02)
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=30)
        if stop == signal.SIGINT:
            assert proc.returncode == 130, err
            assert "Traceback" not in err and "run the same command again" in err
        else:
            assert proc.returncode == -signal.SIGKILL
        size = out.stat().st_size
        rerun = _fetch(url, out, *extra)
        assert rerun.returncode == 0, rerun.stderr
    assert out.stat().st_size > size
    truth = sql_truth(demo_db, cids, DOMAINS)
    if mode == "ndjson":
        lines = _lines(out)
        assert records_of(lines) == truth
        _no_repeats(lines)
    else:
        assert _records_only(out) == truth


def test_an_unknown_job_leaves_no_file(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "none.ndjson"
    failed = _fetch(f"{server.url}/api/trace/job/no-such-job", out)
    assert failed.returncode == 1 and "job_not_found" in failed.stderr
    assert not out.exists()
    assert _fetch(f"{server.url}/not/a/job/url", out).returncode == 1


def test_retries_exhausted_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quick = functools.partial(TraceClient, retries=Retry(attempts=2, base=0.001))
    monkeypatch.setattr(svc.client.fetch, "TraceClient", quick)
    with respx.mock() as router:
        router.get("http://down.test/api/trace/job/j").mock(return_value=httpx.Response(503))
        code = fetch("http://down.test/api/trace/job/j", tmp_path / "f", progress_out=io.StringIO())
    assert code == 2 and not (tmp_path / "f").exists()


def test_checkpoint_reads_only_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "f.ndjson"
    records = [{"type": "records", "domain": "history", "batch": b, "data": [[b]] * 3,
                "since": f"s{b}"} for b in range(1, 2001)]  # fmt: skip
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + b'{"type":"dom')
    check = ndjson_checkpoint(path)
    assert (check.since, check.domain, check.held) == ("s2000", "history", 6000)
    assert path.read_bytes().endswith(b"}\n")  # the half-written line is gone


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bars_on_a_terminal() -> None:
    out = _Tty()
    with make_progress(out, {"history": 100, "materials": None}, {"history": 40}) as progress:
        progress.advance("history", 10)
        progress.total("materials", 7)
        progress.advance("materials", 7)
    text = out.getvalue()
    assert "history" in text and "50/100" in text and "7/7" in text


def test_another_jobs_file_is_refused_unless_overwrite(
    server: ServerProcess, demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    first, second = (create_job(server.url, cids) for cids in (demo_cids[:50], demo_cids[50:90]))
    url_a, url_b = (f"{server.url}/api/trace/job/{j['job_id']}" for j in (first, second))
    for extra in ((), ("--records-only",)):
        out = tmp_path / f"a{len(extra)}"
        assert _fetch(url_a, out, *extra).returncode == 0
        complete = out.read_bytes()
        for held in (complete, complete[: len(complete) // 2]):  # complete, or cut part-way
            out.write_bytes(held)
            refused = _fetch(url_b, out, *extra)
            assert refused.returncode == 1, refused.stderr
            assert f"job {first['job_id']}'s download" in refused.stderr, refused.stderr
            assert "already complete" not in refused.stderr and "%" not in refused.stderr
            assert out.read_bytes() == held  # untouched
        unknown = _fetch(f"{server.url}/api/trace/job/no-such-job", out, *extra, "--overwrite")
        assert unknown.returncode == 1 and out.read_bytes() == held  # kept: nothing replaces it
        replaced = _fetch(url_b, out, *extra, "--overwrite")
        assert replaced.returncode == 0, replaced.stderr
        truth = sql_truth(demo_db, demo_cids[50:90], DOMAINS)
        assert (_records_only(out) if extra else records_of(_lines(out))) == truth
    stranger = tmp_path / "notes.txt"
    stranger.write_text("not a download\n")
    refused = _fetch(url_a, stranger)
    assert refused.returncode == 1 and "meta line" in refused.stderr, refused.stderr
    assert stranger.read_text() == "not a download\n"


def test_nothing_listening_fails_at_once_saying_what(tmp_path: Path) -> None:
    out = tmp_path / "f.ndjson"
    failed = _fetch(f"http://127.0.0.1:{free_port()}/api/trace/job/j", out)
    assert failed.returncode == 1, failed.stderr
    said = failed.stderr.strip().splitlines()
    assert len(said) == 1 and "cannot connect to http://127.0.0.1:" in said[0], said
    assert "nothing was downloaded" in said[0] and not out.exists()
