"""Live Oracle: how timestamp filters compare. The mask `TO_TIMESTAMP` reads every digit the
service binds; the 1582 gap is why filters before 1582-10-15 are refused; a service whose
host is not on UTC (TZ=Europe/Berlin) still compares TIMESTAMP WITH LOCAL TIME ZONE in
UTC; and the comparison of a DATE partition key with `TO_TIMESTAMP(...)` still prunes.

Needs CREATE TABLE (a partitioned one: Oracle Free and Enterprise Edition have
partitioning) and SELECT on V$SQL, V$SQL_PLAN (DBMS_XPLAN.DISPLAY_CURSOR)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import oracledb
import pytest

from svc.core.domains import Domain, parse_domains
from svc.core.sql.dialects import ORACLE
from svc.core.sql.pages import page_sql
from svc.core.sql.plan import Plan
from svc.core.sql.where import filter_binds, where_shape
from svc.protocol import Range
from tests.oracle.live import DSN, LIVE, connect
from tests.oracle.plans import plan_of
from tests.support import create_job, iter_lines, records_of
from tests.support.problems import assert_problem
from tests.support.servers import ServerProcess, start_server

pytestmark = LIVE

MASK = "'YYYYMMDDHH24MISSFF6'"
TZ_TABLE = "TRACE_LIVE_TZ"
PART_TABLE = "TRACE_LIVE_PART"


def _drop(cur: oracledb.Cursor, table: str) -> None:
    cur.execute(
        f"BEGIN EXECUTE IMMEDIATE 'DROP TABLE {table} PURGE'; EXCEPTION WHEN OTHERS THEN NULL; END;"
    )


# --- TO_TIMESTAMP: fractions and the 1582 gap --------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2025-01-31T08:00:00.000001",
        "2025-01-31T08:00:00.123456",
        "2025-01-31T23:59:59.999999",
        "1582-10-15T00:00:00",
        "9999-12-31T23:59:59.999999",
    ],
)
def test_to_timestamp_reads_every_digit_the_service_binds(value: str) -> None:
    digits = filter_binds(_tz_domain(), ORACLE, {"LTZ": Range(value)})["f0_lo"]
    literal = dt.datetime.fromisoformat(value).strftime("%Y-%m-%dT%H%M%S.%f") + "000"
    with connect() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT TO_TIMESTAMP(:v, {MASK}), CASE WHEN TO_TIMESTAMP(:v, {MASK})"
            " = TO_TIMESTAMP(:iso, 'YYYY-MM-DD\"T\"HH24MISS.FF9') THEN 1 ELSE 0 END FROM DUAL",
            {"v": digits, "iso": literal},
        )
        got, same = cur.fetchone() or (None, 0)
    assert got == dt.datetime.fromisoformat(value) and same == 1


def test_the_1582_gap_moves_dates_so_filters_refuse_them(server: ServerProcess) -> None:
    with connect() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT TO_TIMESTAMP('15821010120000000000', {MASK}) FROM DUAL")
        (in_gap,) = cur.fetchone() or (None,)
        cur.execute(
            f"SELECT TO_TIMESTAMP('15821015000000000000', {MASK})"
            f" - TO_TIMESTAMP('15821004000000000000', {MASK}) FROM DUAL"
        )
        (gap,) = cur.fetchone() or (None,)
    assert in_gap != dt.datetime(1582, 10, 10, 12)  # Oracle does not keep the day it was given
    assert gap == dt.timedelta(days=1)  # October 4 is followed by October 15: Julian before
    r = httpx.post(
        f"{server.url}/api/trace/job",
        json={"container_ids": ["x"], "where": {"history": {"TXNDATE": {"from": "1582-10-10"}}}},
    )
    assert_problem(r, 400, "invalid_filter")


# --- a service on a host in Europe/Berlin ------------------------------------------------

# Instants around Berlin's switch to summer time (2025-03-30 01:00 UTC), every 20 minutes.
BASE = dt.datetime(2025, 3, 29, 22, 0)
INSTANTS = [BASE + dt.timedelta(minutes=20 * i) for i in range(18)]
TZ_DOMAINS = f"""
[domains.tz]
table = "{TZ_TABLE}"
tiebreak = "ID"
columns = ["CONTAINERID", "ID"]

[domains.tz.filters]
LTZ = {{ op = "range", type = "timestamp" }}

[domains.tzout]
table = "{TZ_TABLE}"
tiebreak = "ID"
columns = ["CONTAINERID", "ID", "LTZ"]
timestamptz = ["LTZ"]
"""


def _tz_domain() -> Domain:
    return parse_domains(TZ_DOMAINS)["tz"]


@pytest.fixture(scope="module")
def berlin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with connect() as conn, conn.cursor() as cur:
        _drop(cur, TZ_TABLE)
        cur.execute(
            f"CREATE TABLE {TZ_TABLE} (CONTAINERID VARCHAR2(40) NOT NULL, ID NUMBER(10) NOT NULL,"
            " LTZ TIMESTAMP WITH LOCAL TIME ZONE)"
        )
        cur.executemany(
            f"INSERT INTO {TZ_TABLE} VALUES (:cid, :id,"
            f" FROM_TZ(TO_TIMESTAMP(:utc, {MASK}), '+00:00'))",
            [
                {"cid": f"z{i % 3}", "id": i, "utc": t.strftime("%Y%m%d%H%M%S%f")}
                for i, t in enumerate(INSTANTS)
            ],
        )
        conn.commit()
    data = tmp_path_factory.mktemp("berlin")
    (data / "domains.toml").write_text(TZ_DOMAINS)
    srv = start_server(
        data,
        None,
        {"TRACE_DB_URL": DSN, "TRACE_DOMAINS": str(data / "domains.toml"), "TZ": "Europe/Berlin"},
    )
    yield srv.url
    srv.stop()
    with connect() as conn, conn.cursor() as cur:
        _drop(cur, TZ_TABLE)


@pytest.mark.parametrize(
    ("lo", "hi"), [(2, 7), (4, 12), (0, 18)], ids=["before-switch", "across-switch", "all"]
)
def test_a_berlin_host_filters_local_time_zone_columns_in_utc(
    berlin: str, lo: int, hi: int
) -> None:
    where = {"LTZ": {"from": INSTANTS[lo].isoformat() + "Z", "to": _end(hi)}}
    job = create_job(berlin, ["z0", "z1", "z2"], ["tz"], {"tz": where})
    ids = sorted(r[1] for r in records_of(list(iter_lines(berlin, job["job_id"])))["tz"])
    assert ids == list(range(lo, hi))  # a session in Berlin's offset would shift by 1-2 hours


def _end(hi: int) -> str:
    return (INSTANTS[hi] if hi < len(INSTANTS) else BASE + dt.timedelta(days=1)).isoformat()


# --- partition pruning under the TO_TIMESTAMP comparison ----------------------------------

PART_DOMAIN = f"""
[domains.part]
table = "{PART_TABLE}"
tiebreak = "ID"
columns = ["CONTAINERID", "ID", "TXNDATE"]

[domains.part.filters]
TXNDATE = {{ op = "range", type = "timestamp" }}
"""


@pytest.fixture(scope="module")
def partitioned() -> Iterator[None]:
    with connect() as conn, conn.cursor() as cur:
        _drop(cur, PART_TABLE)
        cur.execute(
            f"CREATE TABLE {PART_TABLE} (CONTAINERID VARCHAR2(40) NOT NULL,"
            " ID NUMBER(10) NOT NULL, TXNDATE DATE NOT NULL)"
            " PARTITION BY RANGE (TXNDATE) INTERVAL (NUMTOYMINTERVAL(1, 'MONTH'))"
            " (PARTITION P0 VALUES LESS THAN (DATE '2025-01-01'))"
        )
        cur.execute(f"CREATE INDEX {PART_TABLE}_CID ON {PART_TABLE} (CONTAINERID, ID) LOCAL")
        cur.executemany(
            f"INSERT INTO {PART_TABLE} VALUES (:1, :2, :3)",
            [(f"p{i % 50:02d}", i, dt.datetime(2025, 1 + i % 12, 1 + i % 28)) for i in range(2400)],
        )
        conn.commit()
        cur.execute("BEGIN DBMS_STATS.GATHER_TABLE_STATS(USER, :t); END;", {"t": PART_TABLE})
    yield
    with connect() as conn, conn.cursor() as cur:
        _drop(cur, PART_TABLE)


def test_a_date_window_prunes_partitions(partitioned: None) -> None:
    """DATE column >= TO_TIMESTAMP(:b): Oracle may widen the column (INTERNAL_FUNCTION),
    which would read every partition; the plan must show pruning by the bound keys."""
    domain = parse_domains(PART_DOMAIN)["part"]
    where = {"TXNDATE": Range("2025-03-01T00:00:00", "2025-04-01T00:00:00")}
    sql = page_sql(domain, ORACLE, where=where_shape(where))
    cids = [f"p{i:02d}" for i in range(50)]
    binds = Plan(cids).page_binds(0, None, 500) | filter_binds(domain, ORACLE, where)
    with connect() as conn, conn.cursor() as cur:
        cur.execute(sql, binds)
        rows = cur.fetchall()
        plan = plan_of(cur, sql)
    assert rows and all(dt.datetime(2025, 3, 1) <= r[2] < dt.datetime(2025, 4, 1) for r in rows)
    assert "PARTITION RANGE ALL" not in plan, plan
    assert "PARTITION RANGE" in plan and "KEY" in plan, plan


def test_a_berlin_host_sends_local_time_zone_columns_in_utc(berlin: str) -> None:
    """Listed under timestamptz, a TIMESTAMP WITH LOCAL TIME ZONE is read with
    SYS_EXTRACT_UTC and sent with Z: the instant stored, whatever the host's zone."""
    job = create_job(berlin, ["z0", "z1", "z2"], ["tzout"])
    records = records_of(list(iter_lines(berlin, job["job_id"])))["tzout"]
    got = {r[1]: r[2] for r in records}
    assert got == {i: t.isoformat() + "Z" for i, t in enumerate(INSTANTS)}
