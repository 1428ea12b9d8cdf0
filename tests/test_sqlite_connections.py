"""The SQLite source's connections (`svc.sources.sqlite`): each lane keeps its own, as many
as it has threads, and a thread hands its connection back before its next query, so a
queue of queries opens no more connections (each would map the file again on the JSON lane,
and RSS counts every mapping); a query whose caller leaves is interrupted, and its
connection serves the next."""

from __future__ import annotations

import asyncio
from pathlib import Path

import apsw
import pytest

from svc.sources import Lane
from svc.sources.sqlite import SqliteSource


class CountingSource(SqliteSource):
    def __init__(self, path: str) -> None:
        super().__init__(path, mmap_mb=16)
        self.opened: list[str] = []

    def _connect(self, lane: Lane) -> apsw.Connection:
        self.opened.append(lane)
        return super()._connect(lane)


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "t.sqlite3"
    conn = apsw.Connection(str(path))
    conn.execute("CREATE TABLE T (A INTEGER)")
    conn.executemany("INSERT INTO T VALUES (?)", [(i,) for i in range(200)])
    conn.close()
    return path


@pytest.mark.parametrize("lane", ["json", "read"])
def test_a_queue_of_queries_opens_one_connection_per_thread(tmp_path: Path, lane: Lane) -> None:
    source = CountingSource(str(_db(tmp_path)))

    async def run() -> list[list[tuple[object, ...]]]:
        try:
            queries = [
                source.fetch("SELECT count(*) + :n FROM T, T", {"n": n}, lane=lane)
                for n in range(40)
            ]
            return await asyncio.gather(*queries)
        finally:
            await source.close()

    results = asyncio.run(run())
    assert results == [[(40_000 + n,)] for n in range(40)]
    threads = 2 if lane == "json" else 1
    assert set(source.opened) == {lane} and len(source.opened) <= threads, source.opened
    assert source.in_use == 0


def test_a_query_whose_caller_leaves_is_interrupted_and_its_connection_kept(
    tmp_path: Path,
) -> None:
    source = CountingSource(str(_db(tmp_path)))
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"

    async def run() -> list[tuple[object, ...]]:
        try:
            task = asyncio.ensure_future(source.fetch(endless, {}, lane="json"))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(500):  # the interrupted thread hands its connection back
                if source._idle["json"].qsize():
                    break
                await asyncio.sleep(0.01)
            return await asyncio.wait_for(source.fetch("SELECT 7", {}, lane="json"), 5)
        finally:
            await source.close()

    assert asyncio.run(run()) == [(7,)]
    assert source.opened == ["json"]  # the interrupted query's connection served the next
