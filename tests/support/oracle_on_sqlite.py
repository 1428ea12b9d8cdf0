"""The Oracle dialect's SQL text run on SQLite (only the row-limit clause rewritten), and a
reader's walk over all its pages: Oracle's statements checked without an Oracle server."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import apsw

from svc.core.filters import canonical_timestamp
from svc.core.sql.dialects import ORACLE
from svc.core.sql.plan import Key
from svc.engine.reader import DomainReader
from svc.sources import Lane, Row, Source

ORACLE_LIMIT = "FETCH FIRST :limit ROWS ONLY"


def _to_timestamp(text: str, mask: str) -> str:
    """Oracle's TO_TIMESTAMP for the one mask the filters use, giving the SQLite demo's form
    (ISO text), so the comparison is the one Oracle makes between DATE and TIMESTAMP."""
    assert mask == "YYYYMMDDHH24MISSFF6", mask
    assert re.fullmatch(r"\d{20}", text), text
    return canonical_timestamp(dt.datetime.strptime(text, "%Y%m%d%H%M%S%f").isoformat())


class OracleTextOnSqlite(Source):
    """Runs the Oracle dialect's SQL on SQLite, rewriting only the row-limit (and offset)
    clause."""

    dialect = ORACLE

    def __init__(self, path: Path) -> None:
        # The SQLite source's engine (APSW's SQLite): sums agree to the last bit.
        self.conn = apsw.Connection(str(path))
        self.conn.create_scalar_function(
            "TO_TIMESTAMP", cast(Any, _to_timestamp), 2, deterministic=True
        )
        self.seen: list[tuple[str, frozenset[str]]] = []

    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        self.seen.append((sql, frozenset(binds)))
        assert sql.count(ORACLE_LIMIT) == (1 if "limit" in binds else 0)
        sql = sql.replace(f"OFFSET :skip ROWS {ORACLE_LIMIT}", "LIMIT :limit OFFSET :skip")
        return self.conn.execute(sql.replace(ORACLE_LIMIT, "LIMIT :limit"), dict(binds)).fetchall()

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        self.conn.close()


async def walk(reader: DomainReader, limits: list[int], after: Key | None = None) -> list[Row]:
    """Every row of a domain, page by page with the limits in turn, from `after` on."""
    rows: list[Row] = []
    for n in range(1_000_000):
        batch = await reader.read(after, limits[n % len(limits)])
        rows.extend(batch.rows)
        after = batch.last
        if not batch.more:
            return rows
    raise AssertionError("the walk did not end")
