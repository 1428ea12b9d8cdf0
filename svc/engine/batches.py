"""A domain's records a batch at a time: what one records line (or one file append) holds.

One interface (`Batches`), three producers:

- `RowBatches`: the reader's pages of rows (`svc.engine.reader.RowPage`), shaped into objects
  or arrays and encoded by msgspec. Every source can do this. A stream's (given the
  process's budget of pages read ahead) asks for its next page as soon as it hands out a
  batch, so the database reads it while the batch is encoded and sent; REST pages, the CSV
  download and the export writer read a page when asked for.
- `FileRowBatches`: the same pages, the rows left as read, for the writers of CSV and export
  files (they encode rows themselves).
- `JsonBatches` (`svc.engine.json_batches`): the database builds the records' JSON itself, a
  range of CIDs at a time, read ahead on several threads. Only where the source
  `builds_json` (SQLite).

All give batches of exactly `limit` records but the last, in keyset order, each with the
key of its last record, so a `since` token from any resumes the others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from svc import protocol as p
from svc.core.sql.plan import Key
from svc.engine.reader import DomainReader, RowPage
from svc.sources import Row


@dataclass(frozen=True)
class Batch:
    """The records of one records line (or of one append to a file)."""

    data: list[Any]  # `protocol.Records.data` (Structs, tuples or Raw JSON), or a file's rows
    last: Key | None  # key of the last record, or the key the batch started after
    more: bool  # records may follow (an empty batch with more=False ends the domain)


class Batches(Protocol):
    async def next(self) -> Batch:
        """The next batch; after one with `more` False, no other is asked for."""

    @property
    def passed(self) -> Key | None:
        """While `next` has found no record yet: a position after what it passed (records
        that matched nothing, empty chunks), a bookmark (`Key.rid` None); else None."""

    def shed(self) -> None:
        """Drop what was read ahead (the client has stopped reading); nothing is lost: the
        next batch is the one that would have followed."""

    def close(self) -> None:
        """Stop any read under way (the stream ended or its client left)."""


class Budget(Protocol):
    """Pages the process's streams may have read ahead of their clients, in all
    (`svc.engine.json_batches.ReadAhead`)."""

    def take(self) -> bool: ...

    def give(self) -> None: ...


def _retrieve(done: asyncio.Future[RowPage]) -> None:
    if not done.cancelled():
        done.exception()


class RowBatches:
    """One page of rows at a time, after `after` (or from an offset: `from_offset`).

    With a `budget`, the next page is asked for as soon as a batch is handed out (one page
    ahead, if the budget has one to give), so the database reads it while the batch is
    encoded and sent; `shed` drops it. Without, a page is read when asked for."""

    def __init__(
        self,
        reader: DomainReader,
        after: Key | None,
        limit: int,
        arrays: bool,
        *,
        budget: Budget | None = None,
    ) -> None:
        self.reader, self.after, self.limit, self.arrays = reader, after, limit, arrays
        self.budget = budget
        self._offset: tuple[int, list[int]] | None = None
        self._ahead: asyncio.Future[RowPage] | None = None  # the next page, asked for

    def from_offset(self, offset: int, chunk_records: list[int]) -> None:
        """Read the first page from the `offset`-th record (0-based) instead, given each
        chunk's records (`DomainReader.read_at`)."""
        self._offset = (offset, chunk_records)

    async def next(self) -> Batch:
        if self._offset is not None:
            (offset, chunk_records), self._offset = self._offset, None
            page = await self.reader.read_at(offset, self.limit, chunk_records)
        elif self._ahead is not None:  # out of shed()'s reach: this call waits for it
            ahead, self._ahead = self._ahead, None
            self._give()
            page = await ahead
        else:
            page = await self.reader.read(self.after, self.limit)
        self.after = page.last
        if page.more and self.budget is not None and self.budget.take():
            self._ahead = asyncio.ensure_future(self.reader.read(page.last, self.limit))
            self._ahead.add_done_callback(_retrieve)  # one shed may have failed first
        return Batch(self._records(page), page.last, page.more)

    def _give(self) -> None:
        assert self.budget is not None
        self.budget.give()

    def _records(self, page: RowPage) -> list[Any]:
        return p.shape_records(page.rows, self.reader.domain.columns, self.arrays)

    @property
    def passed(self) -> Key | None:
        return self.reader.passed

    def shed(self) -> None:
        """Drop the page read ahead: the next batch reads it again from `after`."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.cancel()
            self._give()

    def close(self) -> None:
        self.shed()


class FileRowBatches(RowBatches):
    """`RowBatches` whose data are the rows as read (the selected columns, then the
    tie-break): what the CSV download and the export writers encode."""

    def __init__(self, reader: DomainReader, after: Key | None, limit: int) -> None:
        super().__init__(reader, after, limit, arrays=True)  # `arrays` unused: rows as read

    def _records(self, page: RowPage) -> list[Row]:
        return page.rows
