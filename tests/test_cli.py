"""Commands and defaults: the generated secret, migrate, demo-data, serve on the demo default."""

from __future__ import annotations

import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from svc.config import SETTINGS, Settings
from tests.support import create_job, iter_lines, last_since, records_of
from tests.support.servers import ROOT, start_server


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svc", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_generated_secret_is_private_and_survives_a_restart(
    demo_db: Path, demo_cids: list[str], tmp_path: Path
) -> None:
    env = {"TRACE_SECRET": "", "TRACE_STREAM_BATCH_SIZE": "300"}
    first = start_server(tmp_path, demo_db, env)
    try:
        job = create_job(first.url, demo_cids[:100])
        lines = []
        for line in iter_lines(first.url, job["job_id"]):
            lines.append(line)
            if line["type"] == "records":
                break
    finally:
        first.stop()
    secret = tmp_path / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text()) >= 32
    second = start_server(tmp_path, demo_db, env)
    try:
        rest = list(iter_lines(second.url, job["job_id"], last_since(lines)))
        assert rest[-1]["type"] == "complete"
        full = list(iter_lines(second.url, job["job_id"]))
    finally:
        second.stop()
    union = records_of(lines)
    for domain, rows in records_of(rest).items():
        union.setdefault(domain, []).extend(rows)
    assert union == records_of(full)


def test_serve_without_a_database_builds_and_serves_the_demo(tmp_path: Path) -> None:
    srv = start_server(tmp_path, None, {"TRACE_DEMO_CIDS": "200"}, wait=120)
    try:
        assert (tmp_path / "demo.sqlite3").exists()
        cids = httpx.get(f"{srv.url}/api/demo/cids", params={"n": 5}).json()["container_ids"]
        assert len(cids) == 5
        job = create_job(srv.url, cids)
        lines = list(iter_lines(srv.url, job["job_id"]))
        assert lines[-1]["type"] == "complete" and lines[-1]["total_records"] > 0
        assert httpx.get(f"{srv.url}/readyz").status_code == 200
        page = httpx.get(f"{srv.url}/")
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        srv.stop()


def test_demo_data_then_migrate_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "d.sqlite3"
    built = _run("demo-data", "--cids", "50", "--db", str(db))
    assert built.returncode == 0, built.stderr
    again = _run("migrate", "--db-url", f"sqlite:///{db}")
    assert again.returncode == 0 and "up to date" in again.stdout
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT NAME FROM TRACE_SCHEMA_MIGRATIONS ORDER BY 1")]
    assert names == sorted(p.name for p in (ROOT / "migrations/sqlite").glob("*.sql"))


def test_bad_settings_fail_at_start_with_a_clear_message(tmp_path: Path) -> None:
    out = _run("serve", "--batch-size", "zero", "--data-dir", str(tmp_path))
    assert out.returncode != 0 and "--batch-size" in out.stderr


def test_help_shows_each_default_from_settings() -> None:
    out = _run("serve", "--help")
    flat = " ".join(out.stdout.split())
    for s in SETTINGS:
        if s.default not in (None, []):
            assert f"(default {s.doc.rsplit('(default ', 1)[1]}" in flat, s.env
    assert "(default 5000)" in flat and "(default 8000)" in flat  # batch size, port


def test_unknown_setting_names_are_refused() -> None:
    with pytest.raises(ValueError, match="no such setting: batch_sise"):
        Settings.from_env({}, batch_sise=10)
    assert Settings.from_env({"TRACE_STREAM_BATCH_SIZE": "7"}).batch_size == 7


def test_demo_data_cli_rejects_unknown_urls(tmp_path: Path) -> None:
    from svc.cli import main

    with pytest.raises(SystemExit):
        main(["demo-data", "--cids", "10", "--db-url", "mysql://x"])
    assert main(["demo-data", "--cids", "10", "--db-url", f"sqlite:///{tmp_path / 'd.db'}"]) == 0
    assert (tmp_path / "d.db").exists()


def _demo_size(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM TRACE_DEMO_CONTAINERS").fetchone()[0])


def test_stops_exit_zero_quietly_and_a_changed_demo_size_rebuilds_the_demo(
    tmp_path: Path,
) -> None:
    for sig, cids in ((signal.SIGTERM, 120), (signal.SIGINT, 80)):
        srv = start_server(tmp_path, None, {"TRACE_DEMO_CIDS": str(cids)}, wait=120)
        assert _demo_size(tmp_path / "demo.sqlite3") == cids  # the second start rebuilt it
        assert srv.stop(sig) == 0
        log = srv.log()
        assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
        assert log.count(f"stopped on {signal.Signals(sig).name}") == 1, log
    # Without TRACE_DEMO_CIDS, an existing demo database is kept, whatever its size.
    srv = start_server(tmp_path, None, wait=120)
    srv.stop()
    assert _demo_size(tmp_path / "demo.sqlite3") == 80
    assert not list(tmp_path.glob("*.building-*"))


def test_an_interrupted_demo_build_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import svc.sources.demo as demo

    def interrupted(*args: object, **kwargs: object) -> list[str]:
        raise KeyboardInterrupt  # as Ctrl-C during the build

    monkeypatch.setattr(demo, "migrate_sqlite", interrupted)
    with pytest.raises(KeyboardInterrupt):
        demo.build_demo_database(tmp_path / "demo.sqlite3", cids=20)
    assert list(tmp_path.iterdir()) == []
