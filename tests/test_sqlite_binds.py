"""The SQLite source runs a statement with its named parameters numbered and bound by
position, in the order SQLite numbered them (`SqliteSource._statement`): the same rows as
binding by name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import apsw

from svc.sources.sqlite import SqliteSource, numbered


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
    text = "SELECT A, ':x', ?1 - ?2 FROM T WHERE B < ?1 AND B >= ?2 ORDER BY B"
    assert source._statements[sql] == (text, ("hi", "lo"))


def test_unnamed_parameters_and_no_parameters(tmp_path: Path) -> None:
    source = SqliteSource(str(_db(tmp_path)))

    async def run() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        try:
            unnamed = await source.fetch("SELECT count(*) FROM T WHERE B < ?1", {"1": 4})
            return unnamed, await source.fetch("SELECT count(*) FROM T", {})
        finally:
            await source.close()

    assert asyncio.run(run()) == ([(4,)], [(10,)])


def test_numbered_leaves_strings_names_and_comments_alone() -> None:
    sql = """SELECT ':a', "x:a", [y:a], `z:a`, :a -- :a\n FROM T /* :a */ WHERE @b = $a"""
    assert numbered(sql, ["a", "b"]) == (
        """SELECT ':a', "x:a", [y:a], `z:a`, ?1 -- :a\n FROM T /* :a */ WHERE ?2 = ?1"""
    )
    assert numbered("SELECT :a, :c", ["a"]) is None  # a name it was not given
    assert numbered("SELECT :a, ?", ["a"]) is None  # an unnamed parameter


def test_a_statement_it_cannot_number_runs_as_written(tmp_path: Path) -> None:
    """A name SQLite reads otherwise than `numbered` (here with a `$` in it): the statement
    runs as written, bound by position all the same."""
    source = SqliteSource(str(_db(tmp_path)))
    sql = "SELECT count(*) FROM T WHERE B < :hi$x"

    async def run() -> list[tuple[object, ...]]:
        try:
            return await source.fetch(sql, {"hi$x": 4})
        finally:
            await source.close()

    assert asyncio.run(run()) == [(4,)]
    assert source._statements[sql] == (sql, ("hi$x",))
