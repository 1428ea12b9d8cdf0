"""Live Oracle: a session killed mid-stream is a retryable error line; resuming is exact.

Needs ALTER SYSTEM (ALTER SYSTEM KILL SESSION) and SELECT on V_$SESSION: grant them on a
test database only (compose.yaml's init script does).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from svc.config import Settings
from svc.core.sql.dialects import ORACLE
from svc.core.sql.pages import page_sql
from svc.core.sql.plan import Plan
from svc.errors import SnapshotTooOld
from svc.sources.oracle import OracleSource
from tests.oracle.live import DSN, LIVE, connect, kill, service_sessions
from tests.support import DOMAINS, create_job, iter_lines, records_union
from tests.support.servers import ServerProcess

pytestmark = LIVE


@pytest.fixture(scope="module")
def others() -> set[tuple[int, int]]:
    """Service sessions that are not the test server's (compose replicas...): spared."""
    with connect() as admin:
        return service_sessions(admin)


@pytest.fixture(scope="module")
def server_env(server_env: dict[str, str], others: set[tuple[int, int]]) -> dict[str, str]:
    # One pooled session and small batches: the stream is mid-way for many round trips. The
    # other sessions are listed (`others`) before this server opens its own.
    return {
        **server_env,
        "TRACE_STREAM_BATCH_SIZE": "20",
        "TRACE_ORACLE_POOL_MIN": "1",
        "TRACE_ORACLE_POOL_MAX": "1",
    }


def test_killed_session_mid_stream(
    server: ServerProcess,
    others: set[tuple[int, int]],
    job_cids: list[str],
    truths: dict[str, list[Any]],
) -> None:
    job = create_job(server.url, job_cids, ["history", "materials"])
    with connect() as admin:
        lines: list[dict[str, Any]] = []
        killed: set[tuple[int, int]] = set()
        url = f"{server.url}/api/trace/job/{job['job_id']}/stream"
        with httpx.stream("GET", url, timeout=120) as r:
            assert r.status_code == 200
            for raw in r.iter_lines():
                if not raw:
                    continue
                lines.append(json.loads(raw))
                if lines[-1]["type"] == "records" and not killed:
                    killed = service_sessions(admin) - others
                    assert killed, "no session of the test server found in V$SESSION"
                    kill(admin, killed)
    error = lines[-1]
    assert error["type"] == "error", f"the stream ended with {error['type']!r} before the kill"
    assert error["code"] == "source_unavailable" and error["retryable"] is True
    assert error["since"], "the error line carries the last good token"
    assert "ORA-" not in json.dumps(error) and "DPY-" not in json.dumps(error)
    # The pool replaced the dead session: the same token resumes, exactly once.
    rest = list(iter_lines(server.url, job["job_id"], error["since"]))
    assert rest[0]["resumed"] is True and rest[-1]["type"] == "complete"
    assert records_union(lines[:-1], rest) == truths


def test_a_killed_idle_session_fails_one_request_then_recovers(
    server: ServerProcess, others: set[tuple[int, int]], job_cids: list[str]
) -> None:
    job = create_job(server.url, job_cids[:50], ["history"])
    page = f"{server.url}/api/trace/job/{job['job_id']}/result?domain=history&limit=10"
    assert httpx.get(page, timeout=60).status_code == 200  # the pool holds one live session
    with connect() as admin:
        mine = service_sessions(admin) - others
        assert len(mine) == 1  # TRACE_ORACLE_POOL_MAX=1
        kill(admin, mine)
    statuses = [httpx.get(page, timeout=60) for _ in range(3)]
    failed = [r for r in statuses if r.status_code != 200]
    for r in failed:
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "source_unavailable" and "Retry-After" in r.headers
    assert statuses[-1].status_code == 200


def _source() -> OracleSource:
    return OracleSource.from_settings(Settings(db_url=DSN, oracle_pool_min=1, oracle_pool_max=1))


def test_an_unreadable_snapshot_is_snapshot_too_old() -> None:
    """AS OF an SCN older than the tables: ORA-08181/-01466/-08180 become SnapshotTooOld."""
    history = DOMAINS["history"]
    plan = Plan(["0"])

    async def run() -> BaseException:
        source = OracleSource.from_settings(
            Settings(db_url=DSN, oracle_pool_min=1, oracle_pool_max=1)
        )
        try:
            await source.fetch(
                page_sql(history, ORACLE, snapshot=True), plan.page_binds(0, None, 10, scn=1)
            )
        except Exception as exc:
            return exc
        finally:
            await source.close()
        raise AssertionError("a query AS OF SCN 1 succeeded")

    exc = asyncio.run(run())
    assert isinstance(exc, SnapshotTooOld), repr(exc)
    assert exc.retryable is False


def test_the_service_pool_sets_binary_collation_and_its_module() -> None:
    async def run() -> list[Any]:
        source = OracleSource.from_settings(
            Settings(db_url=DSN, oracle_pool_min=1, oracle_pool_max=1)
        )
        try:
            return await source.fetch(
                "SELECT SYS_CONTEXT('USERENV', 'NLS_SORT'), SYS_CONTEXT('USERENV', 'MODULE'),"
                " (SELECT VALUE FROM NLS_SESSION_PARAMETERS WHERE PARAMETER = 'NLS_COMP')"
                " FROM DUAL",
                {},
            )
        finally:
            await source.close()

    assert asyncio.run(run()) == [("BINARY", "trace-svc", "BINARY")]
