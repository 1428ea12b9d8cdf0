"""A domain's records a batch at a time: what one records line (or one file append) holds.

One interface (`Batches`), three producers:

- `RowBatches`: the reader's pages of rows (`svc.engine.reader.RowPage`), shaped into objects
  or arrays and encoded by msgspec. Every source can do this.
- `FileRowBatches`: the same pages, the rows left as read, for the writers of CSV and export
  files (they encode rows themselves).
- `JsonBatches` (`svc.engine.json_batches`): the database builds the records' JSON itself, a
  range of CIDs at a time, read ahead on several threads. Only where the source
  `builds_json` (SQLite).

All give batches of exactly `limit` records but the last, in keyset order, each with the
key of its last record, so a `since` token from any resumes the others.
"""

from __future__ import annotations

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


class RowBatches:
    """One page of rows at a time, read when asked for (no read-ahead), after `after` (or
    from an offset: `from_offset`)."""

    def __init__(self, reader: DomainReader, after: Key | None, limit: int, arrays: bool) -> None:
        self.reader, self.after, self.limit, self.arrays = reader, after, limit, arrays
        self._offset: tuple[int, list[int]] | None = None

    def from_offset(self, offset: int, chunk_records: list[int]) -> None:
        """Read the first page from the `offset`-th record (0-based) instead, given each
        chunk's records (`DomainReader.read_at`)."""
        self._offset = (offset, chunk_records)

    async def next(self) -> Batch:
        if self._offset is not None:
            (offset, chunk_records), self._offset = self._offset, None
            page = await self.reader.read_at(offset, self.limit, chunk_records)
        else:
            page = await self.reader.read(self.after, self.limit)
        self.after = page.last
        return Batch(self._records(page), page.last, page.more)

    def _records(self, page: RowPage) -> list[Any]:
        return p.shape_records(page.rows, self.reader.domain.columns, self.arrays)

    @property
    def passed(self) -> Key | None:
        return self.reader.passed

    def shed(self) -> None:
        pass  # nothing is read ahead

    def close(self) -> None:
        pass


class FileRowBatches(RowBatches):
    """`RowBatches` whose data are the rows as read (the selected columns, then the
    tie-break): what the CSV download and the export writers encode."""

    def __init__(self, reader: DomainReader, after: Key | None, limit: int) -> None:
        super().__init__(reader, after, limit, arrays=True)  # `arrays` unused: rows as read

    def _records(self, page: RowPage) -> list[Row]:
        return page.rows
