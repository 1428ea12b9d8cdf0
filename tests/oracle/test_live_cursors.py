"""Live Oracle: cursor sharing and the statement cache. Jobs whose IN lists hold 3, 5 and 7
numbers (padded to 4, 8 and 8 slots with their last value) share one child cursor per
statement text: no BIND_MISMATCH. A service sending far more statement texts than its
statement cache holds keeps at most that many cursors open per session (V$OPEN_CURSOR),
below OPEN_CURSORS, and its streams end without ORA-01000.

Needs SELECT on V$SQL, V$SQL_SHARED_CURSOR, V$OPEN_CURSOR and V$SESSION."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import oracledb
import pytest

from svc.core.domains import load_domains, parse_domains
from svc.core.sql.dialects import ORACLE
from svc.core.sql.pages import page_sql
from svc.core.sql.where import where_shape
from svc.protocol import FilterValue
from svc.sources import oracle as ora
from tests.oracle.live import DSN, LIVE, connect, service_sessions
from tests.support import create_job, iter_lines
from tests.support.servers import ServerProcess, start_server

pytestmark = LIVE

ONE_SESSION = {
    "TRACE_DB_URL": DSN,
    "TRACE_ORACLE_POOL_MIN": "1",
    "TRACE_ORACLE_POOL_MAX": "1",
    "TRACE_JOB_CREATE_RATE": "0",
}


def _children(cur: oracledb.Cursor, sql: str) -> list[tuple[str, int, str]]:
    """(SQL_ID, CHILD_NUMBER, BIND_MISMATCH) of every child cursor of exactly `sql`."""
    cur.setinputsizes(text=oracledb.DB_TYPE_CLOB)
    cur.execute(
        "SELECT s.SQL_ID, s.CHILD_NUMBER, c.BIND_MISMATCH FROM V$SQL s"
        " JOIN V$SQL_SHARED_CURSOR c ON c.SQL_ID = s.SQL_ID AND c.CHILD_ADDRESS = s.CHILD_ADDRESS"
        " WHERE s.PARSING_SCHEMA_NAME = USER AND s.SQL_TEXT = :head"
        " AND DBMS_LOB.COMPARE(s.SQL_FULLTEXT, :text) = 0",
        {"head": sql[:1000], "text": sql},
    )
    return [(r[0], int(r[1]), r[2]) for r in cur.fetchall()]


@pytest.fixture(scope="module")
def one_session(
    job_cids: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("cursors"), None, ONE_SESSION)
    yield srv
    srv.stop()


def test_in_lists_of_3_5_and_7_numbers_share_one_cursor(
    one_session: ServerProcess, job_cids: list[str]
) -> None:
    with connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT QTY FROM MES_CONTAINER_HISTORY WHERE QTY IS NOT NULL"
            " ORDER BY QTY FETCH FIRST 8 ROWS ONLY"
        )
        qtys: list[FilterValue] = [
            int(r[0]) if float(r[0]).is_integer() else float(r[0]) for r in cur.fetchall()
        ]
    assert len(qtys) == 8
    history = load_domains()["history"]
    texts = set()
    # each width twice with a different count of real values: NULL padding would bind
    # NUMBER and VARCHAR2 in different slots of the same text
    for values in (qtys[:3], qtys[:4], qtys[:5], qtys[:7], qtys[1:8], qtys[2:5]):
        where = {"history": {"QTY": values}}
        job = create_job(one_session.url, job_cids[:300], ["history"], where)
        assert list(iter_lines(one_session.url, job["job_id"]))[-1]["type"] == "complete"
        texts.add(page_sql(history, ORACLE, where=where_shape({"QTY": values})))
    assert len(texts) == 2  # 4 and 8 slots
    with connect() as conn, conn.cursor() as cur:
        for sql in texts:
            children = _children(cur, sql)
            assert children, "the page statement is not in V$SQL"
            assert [c for c in children if c[2] == "Y"] == [], children


MANY = 60  # domains over the demo history table: far more statement texts than the cache


def _many_domains() -> str:
    parts = []
    for i in range(MANY):
        parts.append(
            f'[domains.h{i:02d}]\ntable = "MES_CONTAINER_HISTORY"\n'
            'columns = ["CONTAINERID", "EVENTNAME", "QTY"]\n'
            f"[domains.h{i:02d}.filters]\n"
            'EVENTNAME = "in"\n'
            f"[[domains.h{i:02d}.aggregations]]\n"
            'name = "events"\nkind = "count"\nby = ["EVENTNAME"]\n'
        )
    return "\n".join(parts)


@pytest.fixture(scope="module")
def crowded(
    job_cids: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("crowded")
    path: Path = data / "domains.toml"
    path.write_text(_many_domains())
    srv = start_server(data, None, ONE_SESSION | {"TRACE_DOMAINS": str(path)})
    yield srv
    srv.stop()


def test_open_cursors_stay_within_the_statement_cache(
    crowded: ServerProcess, job_cids: list[str]
) -> None:
    domains = parse_domains(_many_domains())
    cache = ora.statement_cache_size(domains.values())
    assert cache == ora.MAX_STATEMENT_CACHE  # capped: 60 domains would need more
    names = list(domains)
    for events in (None, ["TrackIn"], ["TrackIn", "TrackOut", "Hold"]):
        # a job's where names at most 32 domains
        where = {n: {"EVENTNAME": events} for n in names[:30]} if events else None
        job = create_job(crowded.url, job_cids[:50], names, where)
        lines = list(iter_lines(crowded.url, job["job_id"]))
        assert lines[-1]["type"] == "complete", lines[-1]  # no ORA-01000 on the way
    with connect() as conn, conn.cursor() as cur:
        sessions = service_sessions(conn)
        assert sessions
        cur.execute(
            "SELECT SID, COUNT(*) FROM V$OPEN_CURSOR WHERE USER_NAME = USER"
            " AND CURSOR_TYPE LIKE 'OPEN%' GROUP BY SID"
        )
        open_by_sid = {int(sid): int(n) for sid, n in cur.fetchall()}
    for sid, _ in sessions:
        # the cached statements, the one in flight and a few of the database's own
        assert open_by_sid.get(sid, 0) <= cache + 10 < 300, open_by_sid
