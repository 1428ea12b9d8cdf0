"""Live Oracle, TRACE_ORACLE_SNAPSHOT=scn: a job reads AS OF the SCN of its creation.

Needs EXECUTE on SYS.DBMS_FLASHBACK (and FLASHBACK on tables of another schema).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oracle.live import LIVE, connect
from tests.support import create_job, iter_lines, last_since, records_of
from tests.support.servers import ServerProcess

pytestmark = LIVE

SCRATCH = "TRACE_LIVE_SCRATCH"


@pytest.fixture(scope="module")
def scratch_domains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A domain over a scratch table that a test may truncate (the demo tables stay)."""
    with connect() as conn, conn.cursor() as cur:
        cur.execute(
            "BEGIN EXECUTE IMMEDIATE 'DROP TABLE " + SCRATCH + " PURGE';"
            " EXCEPTION WHEN OTHERS THEN NULL; END;"
        )
        cur.execute(f"CREATE TABLE {SCRATCH} (CONTAINERID VARCHAR2(40) NOT NULL, V NUMBER)")
        cur.execute(f"CREATE INDEX {SCRATCH}_CID ON {SCRATCH} (CONTAINERID)")
        cur.executemany(
            f"INSERT INTO {SCRATCH} VALUES (:1, :2)",
            [(f"s{i % 40:03d}", i) for i in range(400)],
        )
        conn.commit()
    # Oracle maps SCNs to DDL times coarsely: reads AS OF an SCN within seconds of the
    # CREATE TABLE can fail with ORA-01466. Let the table age before any job is created.
    time.sleep(5)
    path = tmp_path_factory.mktemp("domains") / "domains.toml"
    path.write_text(
        "[domains.history]\n"
        'table = "MES_CONTAINER_HISTORY"\n'
        'columns = ["CONTAINERID", "TXNDATE", "EVENTNAME", "COMMENTS"]\n'
        "[domains.scratch]\n"
        f'table = "{SCRATCH}"\n'
        'columns = ["CONTAINERID", "V"]\n'
    )
    yield path
    with connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE {SCRATCH} PURGE")


@pytest.fixture(scope="module")
def server_env(server_env: dict[str, str], scratch_domains: Path) -> dict[str, str]:
    return {
        **server_env,
        "TRACE_STREAM_BATCH_SIZE": "100",
        "TRACE_ORACLE_SNAPSHOT": "scn",
        "TRACE_DOMAINS": str(scratch_domains),
    }


def _insert_history(cids: list[str], marker: str) -> None:
    when = dt.datetime(2030, 1, 1)
    with connect() as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO MES_CONTAINER_HISTORY (CONTAINERID, TXNDATE, EVENTNAME, COMMENTS)"
            " VALUES (:1, :2, 'LiveTest', :3)",
            [(cid, when, marker) for cid in cids for _ in range(3)],
        )
        conn.commit()


def _delete_history(marker: str) -> None:
    with connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM MES_CONTAINER_HISTORY WHERE COMMENTS = :m", {"m": marker})
        conn.commit()


def test_rows_inserted_after_job_creation_are_not_seen(
    server: ServerProcess, job_cids: list[str]
) -> None:
    marker = f"live-snapshot-{uuid.uuid4().hex[:8]}"
    new_cid = f"zz{uuid.uuid4().hex[:14]}"  # sorts after every demo CID
    cids = job_cids[:300] + [new_cid]
    before = create_job(server.url, cids, ["history"])
    try:
        first = _first(server, before["job_id"], 4)
        # Rows for a CID already read, one not read yet, and a CID that had none.
        _insert_history([cids[0], cids[250], new_cid], marker)
        after = create_job(server.url, cids, ["history"])
        rest = list(iter_lines(server.url, before["job_id"], last_since(first)))
        old = records_of(first)["history"] + records_of(rest)["history"]
        fresh = records_of(list(iter_lines(server.url, after["job_id"])))["history"]
    finally:
        _delete_history(marker)
    assert not any(marker in row for row in old)
    assert sum(marker in row for row in fresh) == 9
    assert sorted(map(repr, fresh)) == sorted(map(repr, old + [r for r in fresh if marker in r]))
    total = next(x for x in rest if x["type"] == "domain_start")["total"]
    assert total == len(old)


def test_a_lost_snapshot_is_a_410_problem_or_a_final_error_line(server: ServerProcess) -> None:
    cids = [f"s{i:03d}" for i in range(40)]
    read = create_job(server.url, cids, ["scratch"])
    unread = create_job(server.url, cids, ["scratch"])
    first = _first(server, read["job_id"], 3)  # readable: the totals are now stored too
    assert [x["type"] for x in first] == ["meta", "domain_start", "records"]
    with connect() as conn, conn.cursor() as cur:
        cur.execute(f"TRUNCATE TABLE {SCRATCH}")  # DDL: reads AS OF an older SCN now fail
    # Before the first byte: a problem+json response.
    r = httpx.get(f"{server.url}/api/trace/job/{unread['job_id']}/stream", timeout=60)
    assert r.status_code == 410, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["code"] == "snapshot_too_old" and "ORA-" not in r.text
    page = httpx.get(f"{server.url}/api/trace/job/{unread['job_id']}/result?domain=scratch")
    assert page.status_code == 410 and page.json()["code"] == "snapshot_too_old"
    # After it: a final, non-retryable error line.
    rest = list(iter_lines(server.url, read["job_id"], last_since(first)))
    assert rest[-1]["type"] == "error", rest[-1]
    assert rest[-1]["code"] == "snapshot_too_old" and rest[-1]["retryable"] is False


def _first(server: ServerProcess, job_id: str, n: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for line in iter_lines(server.url, job_id):
        lines.append(line)
        if len(lines) == n:
            break
    return lines
