"""Helpers of the live Oracle suite: the DSN, connections, ground truth and sessions.

The suite runs only when TRACE_TEST_ORACLE_DSN is set (oracle://user:pw@host:port/service).
The user needs, besides its own tables (``compose.yaml``'s init script grants all of it):

- EXECUTE on SYS.DBMS_FLASHBACK (snapshot mode);
- SELECT on SYS.V_$SQL, SYS.V_$SQL_PLAN, SYS.V_$SQL_PLAN_STATISTICS_ALL (the plan checks,
  DBMS_XPLAN.DISPLAY_CURSOR), SYS.V_$SQL_SHARED_CURSOR and SYS.V_$OPEN_CURSOR (cursor
  sharing and the statement cache) and SYS.V_$SESSION (finding the service's sessions);
- CREATE TABLE (a partitioned one too), CREATE VIEW and CREATE SYNONYM;
- ALTER SYSTEM, to kill the service's sessions mid-stream: a test-database-only grant.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import oracledb
import pytest

from svc.core.domains import Domain
from svc.sources.oracle import MODULE, SESSION_SETUP, parse_url
from svc.sources.oracle_types import output_type_handler

DSN = os.environ.get("TRACE_TEST_ORACLE_DSN", "")

LIVE = [
    pytest.mark.oracle,
    pytest.mark.skipif(
        not DSN,
        reason="live Oracle suite: set TRACE_TEST_ORACLE_DSN=oracle://user:pw@host:port/service "
        "(docs/oracle.md: `docker compose up oracle`)",
    ),
]

JOB_CIDS = 2200  # three 1000-CID chunks: batches cross chunk boundaries
DEMO_CIDS = 3000  # loaded when the database holds fewer demo containers than the job needs


@contextmanager
def connect() -> Iterator[oracledb.Connection]:
    """A plain connection with the service's session settings (binary collation)."""
    conn = oracledb.connect(**parse_url(DSN).connect_params())
    try:
        with conn.cursor() as cur:
            cur.execute(SESSION_SETUP)
        yield conn
    finally:
        conn.close()


def as_json(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row as the service sends it: through the same JSON encoder."""
    return tuple(json.loads(msgspec.json.encode(list(row))))


def truth(conn: oracledb.Connection, domain: Domain, cids: list[str]) -> list[tuple[Any, ...]]:
    """Ground truth for a job of the smallest demo CIDs: one direct ORDER BY query."""
    assert cids == sorted(cids)
    with conn.cursor() as cur:
        cur.arraysize = 10_000
        cur.outputtypehandler = output_type_handler  # the service's own value rules
        cur.execute(
            f"SELECT {', '.join(domain.select)} FROM {domain.table}"
            f" WHERE {domain.key} BETWEEN :lo AND :hi ORDER BY {domain.key}, ROWID",
            {"lo": cids[0], "hi": cids[-1]},
        )
        return [as_json(r) for r in cur.fetchall()]


def service_sessions(conn: oracledb.Connection) -> set[tuple[int, int]]:
    """(SID, SERIAL#) of every session of the service (MODULE trace-svc) of this user."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT SID, SERIAL# FROM V$SESSION WHERE MODULE = :m AND USERNAME = USER"
            " AND SID <> SYS_CONTEXT('USERENV', 'SID')",
            {"m": MODULE},
        )
        return {(int(sid), int(serial)) for sid, serial in cur.fetchall()}


def kill(conn: oracledb.Connection, sessions: set[tuple[int, int]]) -> None:
    with conn.cursor() as cur:
        for sid, serial in sorted(sessions):
            try:
                cur.execute(f"ALTER SYSTEM KILL SESSION '{sid},{serial}' IMMEDIATE")
            except oracledb.DatabaseError as exc:
                if "ORA-00030" not in str(exc):  # already gone
                    raise
