"""Where a domain's records start: the one answer for pages, the stream, the CSV download
and the export writer.

A start is after a `since` token's last record, at an `offset`, or at the domain's first
record. It also carries the batches and records before it and the records digest's chain
(`svc.core.digest`), so that batches numbered, counted and hashed on from there sign the
tokens a walk from the domain's first record would sign.
"""

from __future__ import annotations

from dataclasses import dataclass

from svc.core import digest
from svc.core.sql.plan import Key
from svc.core.tokens import Cursor


@dataclass(frozen=True)
class Start:
    domain: str
    after: Key | None = None  # read after this key (None: from the start, or at `offset`)
    offset: int | None = None  # read from the offset-th record (0-based); None or 0: not
    batch: int = 0  # batches before the start
    seen: int = 0  # records before the start
    chain: bytes | None = digest.START  # the digest's chain before it (None: not known)


def start_at(
    domain: str, cursor: Cursor | None, offset: int | None = None, limit: int = 1
) -> Start:
    """The start in `domain` after `cursor` (a position in it), else at `offset` (numbered as
    if batches of `limit` records came before it), else at the domain's first record."""
    if cursor is not None:
        after = None if cursor.cid is None else Key(cursor.cid, cursor.rid)  # rid None: a bookmark
        return Start(domain, after, None, cursor.batch, cursor.seen, cursor.chain)
    if offset:  # the records before an offset were never hashed: no digest from here
        return Start(domain, None, offset, -(-offset // limit), offset, None)
    return Start(domain)
