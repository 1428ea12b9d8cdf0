"""Live Oracle: a job's declared aggregations (grouped counts and sums, min/max, distinct),
with and without a filter and `AS OF SCN`, against one direct GROUP BY over the same rows.
The table spans three 1000-CID chunks, so every answer is merged from chunks; it holds a
NUMBER(38,12) column whose sums need all their digits, and a BINARY_DOUBLE with NaN and
infinities. A LONG column in an aggregation is refused as misconfigured.

Needs CREATE TABLE, and EXECUTE on DBMS_FLASHBACK for the AS OF cases."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import oracledb
import pytest

from svc import protocol as p
from svc.sources.oracle_types import output_type_handler
from tests.oracle.live import DSN, LIVE, connect
from tests.support import create_job
from tests.support.problems import assert_problem
from tests.support.servers import ServerProcess, start_server

pytestmark = LIVE

TABLE = "TRACE_LIVE_AGG"
LONG_TABLE = "TRACE_LIVE_LONG"
CIDS = [f"a{i:04d}" for i in range(2300)]  # three chunks
GROUPS = ["red", "green", "blue", None]
SPECIAL = {6: "NaN", 8: "Inf", 9: "-Inf"}  # JSON writes them null; rows 6, 8 pass WHERE

DOMAINS = f"""
[domains.agg]
table = "{TABLE}"
tiebreak = "ID"
columns = ["CONTAINERID", "ID", "GRP", "N", "D", "LOT", "TS"]

[domains.agg.filters]
GRP = "in"
N = {{ op = "range", type = "number" }}
TS = {{ op = "range", type = "timestamp" }}

[[domains.agg.aggregations]]
name = "by_grp"
kind = "count"
by = ["GRP"]

[[domains.agg.aggregations]]
name = "n_by_grp"
kind = "sum"
column = "N"
by = ["GRP"]

[[domains.agg.aggregations]]
name = "n_total"
kind = "sum"
column = "N"

[[domains.agg.aggregations]]
name = "n_range"
kind = "min_max"
column = "N"

[[domains.agg.aggregations]]
name = "d_range"
kind = "min_max"
column = "D"

[[domains.agg.aggregations]]
name = "by_d"
kind = "count"
by = ["D"]
top = 1000

[[domains.agg.aggregations]]
name = "ts_range"
kind = "min_max"
column = "TS"

[[domains.agg.aggregations]]
name = "lots"
kind = "distinct"
column = "LOT"

[domains.long]
table = "{LONG_TABLE}"
tiebreak = "ID"
columns = ["CONTAINERID", "ID", "NOTE"]

[[domains.long.aggregations]]
name = "notes"
kind = "distinct"
column = "NOTE"
"""

WHERE = {"agg": {"GRP": ["red", "blue"], "N": {"from": -5000.5, "to": 1e20}}}
PREDICATE = "GRP IN ('red', 'blue') AND N >= -5000.5 AND N < 1e20"


def _row(i: int) -> dict[str, Any]:
    big = 12345678901234567890 if i % 11 == 0 else 0  # 20 integer digits, 12 decimals
    n = f"{(i * 7919) % 100003 + big}.{(i * 104729) % 10**12:012d}"  # text: every digit
    return {
        "cid": CIDS[i % len(CIDS)],
        "id": i,
        "grp": GROUPS[i % 4],
        "n": ("-" if i % 5 == 0 else "") + n,
        "d": SPECIAL.get(i % 50, str((i % 40) / 7)),
        "lot": f"L{i % 977}",
        "ts": f"2025-01-{1 + i % 28:02d} {i % 24:02d}:00:00.{i * 7919 % 10**9:09d}",
    }


def _drop(cur: oracledb.Cursor, table: str) -> None:
    cur.execute(
        f"BEGIN EXECUTE IMMEDIATE 'DROP TABLE {table} PURGE'; EXCEPTION WHEN OTHERS THEN NULL; END;"
    )


INSERT = (
    f"INSERT INTO {TABLE} (CONTAINERID, ID, GRP, N, D, LOT, TS) VALUES (:cid, :id, :grp,"
    " TO_NUMBER(:n), CASE :d WHEN 'NaN' THEN BINARY_DOUBLE_NAN"
    " WHEN 'Inf' THEN BINARY_DOUBLE_INFINITY WHEN '-Inf' THEN -BINARY_DOUBLE_INFINITY"
    " ELSE TO_BINARY_DOUBLE(:d) END, :lot, TO_TIMESTAMP(:ts, 'YYYY-MM-DD HH24:MI:SS.FF9'))"
)


@pytest.fixture(scope="module")
def domains_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with connect() as conn, conn.cursor() as cur:
        for table in (TABLE, LONG_TABLE):
            _drop(cur, table)
        cur.execute(
            f"CREATE TABLE {TABLE} (CONTAINERID VARCHAR2(40) NOT NULL, ID NUMBER(10) NOT NULL,"
            " GRP VARCHAR2(10), N NUMBER(38,12), D BINARY_DOUBLE, LOT VARCHAR2(10),"
            f" TS TIMESTAMP(9), CONSTRAINT {TABLE}_PK PRIMARY KEY (ID))"
        )
        cur.execute(f"CREATE INDEX {TABLE}_CID ON {TABLE} (CONTAINERID, ID)")
        cur.executemany(INSERT, [_row(i) for i in range(3 * len(CIDS))])
        cur.execute(
            f"CREATE TABLE {LONG_TABLE} (CONTAINERID VARCHAR2(40) NOT NULL,"
            " ID NUMBER(10) NOT NULL, NOTE LONG)"
        )
        cur.executemany(
            f"INSERT INTO {LONG_TABLE} VALUES (:1, :2, :3)",
            [(CIDS[i], i, f"note {i % 3}") for i in range(30)],
        )
        conn.commit()
    time.sleep(5)  # AS OF an SCN within seconds of a CREATE TABLE can fail with ORA-01466
    path = tmp_path_factory.mktemp("agg-domains") / "domains.toml"
    path.write_text(DOMAINS)
    yield path
    with connect() as conn, conn.cursor() as cur:
        for table in (TABLE, LONG_TABLE):
            _drop(cur, table)


def _server(domains: Path, tmp: Path, snapshot: bool) -> ServerProcess:
    env = {
        "TRACE_DB_URL": DSN,
        "TRACE_DOMAINS": str(domains),
        "TRACE_STREAM_BATCH_SIZE": "500",
        "TRACE_JOB_CREATE_RATE": "0",
    }
    if snapshot:
        env["TRACE_ORACLE_SNAPSHOT"] = "scn"
    return start_server(tmp, None, env)


@pytest.fixture(scope="module")
def servers(
    domains_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[bool, ServerProcess]]:
    plain = _server(domains_file, tmp_path_factory.mktemp("agg-plain"), False)
    scn = _server(domains_file, tmp_path_factory.mktemp("agg-scn"), True)
    yield {False: plain, True: scn}
    plain.stop()
    scn.stop()


def _json(value: Any) -> Any:
    """A value as the service sends it (NaN and infinities as null, decimals exact)."""
    return json.loads(p.encode(value), parse_float=Decimal)


def _key(values: list[Any]) -> str:
    """A group key as sortable JSON text (keys mix NULL and text)."""
    return p.encode(values).decode()


def _truth(predicate: str) -> dict[str, Any]:
    """Every aggregation of the `agg` domain, by direct SQL over the whole table."""
    where = f" WHERE {predicate}" if predicate else ""
    with connect() as conn, conn.cursor() as cur:
        cur.outputtypehandler = output_type_handler  # NUMBER as exact Decimal, as the service

        def rows(sql: str) -> list[Any]:
            cur.execute(sql)
            result: list[Any] = cur.fetchall()
            return result

        by_grp = rows(f"SELECT GRP, COUNT(*), SUM(N) FROM {TABLE}{where} GROUP BY GRP")
        (count, total, n_lo, n_hi, d_lo, d_hi, ts_lo, ts_hi, lots) = rows(
            f"SELECT COUNT(*), SUM(N), MIN(N), MAX(N), MIN(D), MAX(D), MIN(TS), MAX(TS),"
            f" COUNT(DISTINCT LOT) FROM {TABLE}{where}"
        )[0]
        by_d = rows(f"SELECT D, COUNT(*) FROM {TABLE}{where} GROUP BY D")
    return {
        "by_grp": sorted((_key([g]), c) for g, c, _ in by_grp),
        "sums": sorted((_key([g]), _json(s)) for g, _, s in by_grp),
        "count": count,
        "total": _json(total),
        "n_range": [_json(n_lo), _json(n_hi)],
        "d_range": [_json(d_lo), _json(d_hi)],
        "by_d": sorted((_key([d]), c) for d, c in by_d),
        "ts_range": [_json(ts_lo), _json(ts_hi)],
        "lots": lots,
    }


def _service(server: ServerProcess, job_id: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/trace/job/{job_id}/aggregation", timeout=120)
    assert r.status_code == 200, r.text
    got: dict[str, Any] = json.loads(r.content, parse_float=Decimal)["aggregations"]["agg"]
    return {
        "by_grp": sorted((_key(g["key"]), g["count"]) for g in got["by_grp"]["groups"]),
        "sums": sorted((_key(g["key"]), g.get("sum")) for g in got["n_by_grp"]["groups"]),
        "count": got["n_total"]["count"],
        "total": got["n_total"]["sum"],
        "n_range": [got["n_range"]["min"], got["n_range"]["max"]],
        "d_range": [got["d_range"]["min"], got["d_range"]["max"]],
        "by_d": sorted((_key(g["key"]), g["count"]) for g in got["by_d"]["groups"]),
        "ts_range": [got["ts_range"]["min"], got["ts_range"]["max"]],
        "lots": got["lots"]["count"],
    }


@pytest.mark.parametrize("snapshot", [False, True], ids=["latest", "as-of-scn"])
@pytest.mark.parametrize("filtered", [False, True], ids=["all-rows", "filtered"])
def test_aggregations_equal_a_direct_group_by(
    servers: dict[bool, ServerProcess], filtered: bool, snapshot: bool
) -> None:
    server = servers[snapshot]
    truth = _truth(PREDICATE if filtered else "")
    job = create_job(server.url, CIDS, ["agg"], WHERE if filtered else None)
    if snapshot:  # rows committed after the job's SCN: not in its aggregations
        with connect() as conn, conn.cursor() as cur:
            cur.executemany(INSERT, [_row(i) | {"id": 10**9 + i} for i in range(0, 600, 3)])
            conn.commit()
    try:
        got = _service(server, job["job_id"])
    finally:
        if snapshot:
            with connect() as conn, conn.cursor() as cur:
                cur.execute(f"DELETE FROM {TABLE} WHERE ID >= 1000000000")
                conn.commit()
    assert got == truth
    # the NUMBER(38,12) sum keeps all its digits, and the NaN rows are one group
    assert len(str(truth["total"]).replace("-", "").replace(".", "")) >= 30
    # NaN, +Inf and -Inf (written null; no NULL D is stored) are one group each, NaN's
    # rows from every chunk together; the filter leaves out -Inf's rows (GRP green)
    assert sum(key == "[null]" for key, _ in got["by_d"]) == (2 if filtered else 3)
    assert truth["d_range"][1] is None  # MAX is NaN: Oracle orders it above +Inf


def test_a_long_column_in_an_aggregation_is_misconfigured(
    servers: dict[bool, ServerProcess],
) -> None:
    server = servers[False]
    job = create_job(server.url, CIDS[:30], ["long"])
    r = httpx.get(f"{server.url}/api/trace/job/{job['job_id']}/aggregation", timeout=120)
    problem = assert_problem(r, 500, "source_misconfigured")  # ORA-00997, not ORA-00932
    assert "LONG" in problem["detail"]
