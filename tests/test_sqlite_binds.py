"""The SQLite source binds a statement's named parameters by position, in the order SQLite
numbered them (`SqliteSource._bind_names`): same rows as binding by name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import apsw

from svc.sources.sqlite import SqliteSource


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "t.sqlite3"
    conn = apsw.Connection(str(path))
    conn.execute("CREATE TABLE T (A TEXT, B INTEGER)")
    conn.executemany("INSERT INTO T VALUES (?, ?)", [(f"a{i}", i) for i in range(10)])
    conn.close()
    return path


def test_named_parameters_bind_by_position_in_sqlites_order(tmp_path: Path) -> None:
    source = SqliteSource(str(_db(tmp_path)))
    # :hi first in the text, :lo twice, the dict in another order, a ':x' in a literal
    sql = "SELECT A, ':x', :hi - :lo FROM T WHERE B < :hi AND B >= :lo ORDER BY B"

    async def run() -> list[list[tuple[object, ...]]]:
        try:
            return [await source.fetch(sql, {"lo": lo, "hi": 5}) for lo in (2, 3)]
        finally:
            await source.close()

    first, second = asyncio.run(run())
    assert first == [(f"a{i}", ":x", 3) for i in range(2, 5)]
    assert second == [(f"a{i}", ":x", 2) for i in range(3, 5)]  # the names, learnt once
    assert source._names[sql] == ("hi", "lo")


def test_unnamed_parameters_and_no_parameters(tmp_path: Path) -> None:
    source = SqliteSource(str(_db(tmp_path)))

    async def run() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        try:
            unnamed = await source.fetch("SELECT count(*) FROM T WHERE B < ?1", {"1": 4})
            return unnamed, await source.fetch("SELECT count(*) FROM T", {})
        finally:
            await source.close()

    assert asyncio.run(run()) == ([(4,)], [(10,)])
