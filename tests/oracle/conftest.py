"""Fixtures of the live Oracle suite (skipped unless TRACE_TEST_ORACLE_DSN is set)."""

from __future__ import annotations

from typing import Any

import pytest

from svc.sources.demo import load_demo_oracle
from svc.sources.migrate import migrate_oracle
from tests.oracle.live import DEMO_CIDS, DSN, JOB_CIDS, connect, truth
from tests.support import DOMAINS


@pytest.fixture(scope="session")
def job_cids() -> list[str]:
    """The smallest JOB_CIDS demo CIDs, loading the demo tables first if needed."""
    migrate_oracle(DSN)
    with connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM MES_CONTAINER_HISTORY WHERE CONTAINERID LIKE 'zz%'")
        cur.execute("DELETE FROM MES_CONTAINER_MATERIALS WHERE CONTAINERID LIKE 'zz%'")
        conn.commit()
        cur.execute("SELECT COUNT(*) FROM TRACE_DEMO_CONTAINERS")
        row = cur.fetchone()
        if row is None or row[0] < JOB_CIDS:
            load_demo_oracle(DSN, cids=DEMO_CIDS, seed=7)
        cur.execute(
            "SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS ORDER BY CONTAINERID"
            " FETCH FIRST :n ROWS ONLY",
            {"n": JOB_CIDS},
        )
        return [r[0] for r in cur.fetchall()]


@pytest.fixture(scope="session")
def truths(job_cids: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    with connect() as conn:
        return {name: truth(conn, DOMAINS[name], job_cids) for name in ("history", "materials")}


@pytest.fixture(scope="module")
def server_db() -> None:
    """No SQLite file: the `server` fixture's service reads the live Oracle (server_env)."""
    return None


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """The live suite's service environment; a module extends it by overriding this fixture."""
    return {"TRACE_DB_URL": DSN}
