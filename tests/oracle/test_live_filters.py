"""Live Oracle: a filtered job (in-lists, a DATE window through TO_TIMESTAMP, a NUMBER
range) streamed, cut, resumed and paged equals a direct query with the filter written by
hand. Not run here: it needs TRACE_TEST_ORACLE_DSN."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.oracle.live import LIVE, as_json, connect
from tests.support import DOMAINS, create_job, iter_lines, last_since, records_of, records_union
from tests.support.servers import ServerProcess

pytestmark = LIVE

WHERE = {
    "history": {
        "EVENTNAME": ["TrackIn", "TrackOut", "Hold", "Release"],
        "TXNDATE": {"from": "2025-01-20", "to": "2025-03-15T12:00:00.5Z"},
    },
    "materials": {"QTYCONSUMED": {"from": 10, "to": 250.5}},
}
PREDICATES = {
    "history": "EVENTNAME IN ('TrackIn', 'TrackOut', 'Hold', 'Release')"
    " AND TXNDATE >= TIMESTAMP '2025-01-20 00:00:00'"
    " AND TXNDATE < TIMESTAMP '2025-03-15 12:00:00.5'",
    "materials": "QTYCONSUMED >= 10 AND QTYCONSUMED < 250.5",
}


@pytest.fixture(scope="module")
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    return {**server_env, "TRACE_STREAM_BATCH_SIZE": "300"}


@pytest.fixture(scope="module")
def filtered_truths(job_cids: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with connect() as conn, conn.cursor() as cur:
        for name, predicate in PREDICATES.items():
            d = DOMAINS[name]
            cur.arraysize = 10_000
            cur.execute(
                f"SELECT {', '.join(d.select)} FROM {d.table} WHERE {d.key} BETWEEN :lo AND :hi"
                f" AND {predicate} ORDER BY {d.key}, ROWID",
                {"lo": job_cids[0], "hi": job_cids[-1]},
            )
            out[name] = [as_json(r) for r in cur.fetchall()]
    return out


def test_a_filtered_job_is_exactly_the_filtered_query(
    server: ServerProcess, job_cids: list[str], filtered_truths: dict[str, list[Any]]
) -> None:
    job = create_job(server.url, job_cids, ["history", "materials"], WHERE)
    lines = list(iter_lines(server.url, job["job_id"]))
    assert records_of(lines) == filtered_truths
    assert all(len(rows) > 600 for rows in filtered_truths.values())
    first = list(iter_lines(server.url, job["job_id"]))[:5]
    rest = list(iter_lines(server.url, job["job_id"], last_since(first)))
    assert records_union(first, rest) == filtered_truths
    rows = filtered_truths["history"]
    page = httpx.get(
        f"{server.url}/api/trace/job/{job['job_id']}/result",
        params={"domain": "history", "offset": len(rows) // 2, "limit": 100},
        timeout=30,
    ).json()
    assert page["total"] == len(rows)
    assert [tuple(r.values()) for r in page["data"]] == rows[len(rows) // 2 :][:100]
