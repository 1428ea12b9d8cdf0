"""A domain's records as a stream sends them: batches ready to encode into records lines.

Two ways to fill them, one interface (`Batches`):

- `RowBatches`: the reader's pages of rows (`svc.engine.reader`), shaped by the service into
  objects or arrays and encoded by msgspec. Every source can do this.
- `JsonBatches` (`svc.engine.json_batches`): the database builds the records' JSON itself, a
  range of CIDs at a time, read ahead on several threads. Only where the source
  `builds_json` (SQLite).

Both give batches of exactly `limit` records but the last, in keyset order, each with the
key of its last record, so a `since` token from either resumes the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from svc import protocol as p
from svc.core.sql.plan import Key
from svc.engine.reader import DomainReader


@dataclass(frozen=True)
class ReadyBatch:
    data: list[Any]  # records ready for `protocol.Records.data`: Structs, tuples or Raw JSON
    last: Key | None  # key of the last record, or the key the batch started after
    more: bool  # records may follow (an empty batch with more=False ends the domain)


class Batches(Protocol):
    async def next(self) -> ReadyBatch:
        """The next batch; after one with `more` False, no other is asked for."""

    def shed(self) -> None:
        """Drop what was read ahead (the client has stopped reading); nothing is lost: the
        next batch is the one that would have followed."""

    def close(self) -> None:
        """Stop any read under way (the stream ended or its client left)."""


class RowBatches:
    """One page of rows at a time, read when asked for (no read-ahead)."""

    def __init__(self, reader: DomainReader, after: Key | None, limit: int, arrays: bool) -> None:
        self.reader, self.after, self.limit, self.arrays = reader, after, limit, arrays

    async def next(self) -> ReadyBatch:
        page = await self.reader.read(self.after, self.limit)
        self.after = page.last
        data = p.shape_records(page.rows, self.reader.domain.columns, self.arrays)
        return ReadyBatch(data, page.last, page.more)

    def shed(self) -> None:
        pass  # nothing is read ahead

    def close(self) -> None:
        pass
