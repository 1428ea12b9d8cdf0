"""Keyset planning and page SQL (pure: no I/O, no driver imports).

A job's CIDs are sorted and cut into chunks of at most `SLOTS` (Oracle caps IN lists at
1000 binds). Rows are read in `(key, tie-break)` order, one chunk after another. A page
query binds only the chunk's CIDs from the last key on, padded with NULLs to a fixed
number of slots, so

- the IN list is the index access predicate: the database seeks each remaining CID in
  the key index and never revisits CIDs already sent (flat per-page cost, unlike the
  bare ``key > :k OR (key = :k AND rid > :r)`` form that scans from the start);
- the statement text never changes, so prepared-statement caches work;
- every comparison of tie-breaks (Oracle ROWIDs) happens in the database, never here.

The SQL text is shared by the dialects except for the row id's name, the row-limit clause,
Oracle's optional ``AS OF SCN`` snapshot clause and how a TIMESTAMP WITH TIME ZONE column
is read (Oracle: ``SYS_EXTRACT_UTC``, under a ``TRACE_UTC_<n>`` alias the source
recognises). Identifiers come from the validated domain file, quoted as configured.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from svc.domains import ROWID, Aggregation, Domain

SLOTS = 1000
RID_ALIAS = "TRACE_RID"
UTC_ALIAS = "TRACE_UTC_"  # + the column's position: a TIMESTAMP WITH TIME ZONE read in UTC


@dataclass(frozen=True)
class Dialect:
    name: str
    rowid: str  # the engine's row id pseudo-column
    limit_clause: str  # appended after ORDER BY; binds :limit
    snapshot_clause: str  # appended to the table in snapshot mode; binds :scn
    offset_clause: str  # appended after ORDER BY in offset pages; binds :skip and :limit
    utc: str = "{}"  # reads a TIMESTAMP WITH TIME ZONE column as a UTC timestamp


SQLITE = Dialect(
    "sqlite",
    rowid="rowid",
    limit_clause="LIMIT :limit",
    snapshot_clause="",
    offset_clause="LIMIT :limit OFFSET :skip",
)
ORACLE = Dialect(
    "oracle",
    rowid="ROWID",
    limit_clause="FETCH FIRST :limit ROWS ONLY",
    snapshot_clause=" AS OF SCN :scn",
    offset_clause="OFFSET :skip ROWS FETCH FIRST :limit ROWS ONLY",
    utc="SYS_EXTRACT_UTC({})",
)


@dataclass(frozen=True)
class Key:
    """The last record's position: its key (CID) and tie-break value."""

    cid: str
    rid: int | str


def _tiebreak(domain: Domain, dialect: Dialect) -> str:
    return dialect.rowid if domain.tiebreak == ROWID else domain.tiebreak


def _select(domain: Domain, dialect: Dialect) -> str:
    return ", ".join(
        f"{dialect.utc.format(col)} AS {UTC_ALIAS}{i}" if i in domain.timestamptz else col
        for i, col in enumerate(domain.select)
    )


def _in_list(slots: int) -> str:
    return ", ".join(f":c{i}" for i in range(slots))


def _source(domain: Domain, dialect: Dialect, snapshot: bool) -> str:
    if snapshot and not dialect.snapshot_clause:
        raise ValueError(f"{dialect.name} has no snapshot reads")
    return domain.table + (dialect.snapshot_clause if snapshot else "")


def page_sql(
    domain: Domain,
    dialect: Dialect,
    *,
    slots: int = SLOTS,
    snapshot: bool = False,
    offset: bool = False,
) -> str:
    """One keyset page: the selected columns plus the tie-break as a last column.

    With `offset`, the page skips `:skip` rows of its chunk first: the entry point of
    offset paging, which then goes on by keyset.
    """
    rid = _tiebreak(domain, dialect)
    return (
        f"SELECT {_select(domain, dialect)}, {rid} AS {RID_ALIAS}"
        f" FROM {_source(domain, dialect, snapshot)}"
        f" WHERE {domain.key} IN ({_in_list(slots)})"
        f" AND (:after_rid IS NULL OR {domain.key} > :after_cid OR {rid} > :after_rid)"
        f" ORDER BY {domain.key}, {rid}"
        f" {dialect.offset_clause if offset else dialect.limit_clause}"
    )


def totals_sql(
    domain: Domain, dialect: Dialect, *, slots: int = SLOTS, snapshot: bool = False
) -> str:
    """Rows and distinct CIDs with rows, for one chunk."""
    return (
        f"SELECT COUNT(*), COUNT(DISTINCT {domain.key})"
        f" FROM {_source(domain, dialect, snapshot)}"
        f" WHERE {domain.key} IN ({_in_list(slots)})"
    )


def _read(domain: Domain, dialect: Dialect, at: int) -> str:
    """A column as an aggregate reads it: a TIMESTAMP WITH TIME ZONE one in UTC."""
    col = domain.select[at]
    return dialect.utc.format(col) if at in domain.timestamptz else col


def aggregate_sql(
    domain: Domain,
    aggregation: Aggregation,
    dialect: Dialect,
    *,
    slots: int = SLOTS,
    snapshot: bool = False,
) -> str:
    """One declared aggregation over one chunk; `svc.aggregate` merges the chunks.

    - count: ``SELECT <by>, COUNT(*) ... GROUP BY <by>``
    - sum: ``SELECT [<by>,] COUNT(*), SUM(<column>) ... [GROUP BY <by>]``
    - min_max: ``SELECT MIN(<column>), MAX(<column>) ...``
    - distinct: ``SELECT DISTINCT <column> ... AND <column> IS NOT NULL`` (distinct values
      repeat across chunks, so the chunks' values are merged, not their counts)

    The same FROM and WHERE as `totals_sql`. A TIMESTAMP WITH TIME ZONE column is read in
    UTC under a ``TRACE_UTC_`` alias, as in pages.
    """
    where = f" FROM {_source(domain, dialect, snapshot)} WHERE {domain.key} IN ({_in_list(slots)})"

    def alias(at: int, suffix: str = "") -> str:
        return f" AS {UTC_ALIAS}{at}{suffix}" if at in domain.timestamptz else ""

    if aggregation.kind in ("min_max", "distinct"):
        assert aggregation.column is not None
        at, col = aggregation.column, _read(domain, dialect, aggregation.column)
        if aggregation.kind == "distinct":
            return f"SELECT DISTINCT {col}{alias(at)}{where} AND {col} IS NOT NULL"
        return f"SELECT MIN({col}){alias(at, '_MIN')}, MAX({col}){alias(at, '_MAX')}{where}"
    measures = "COUNT(*)"
    if aggregation.kind == "sum":
        assert aggregation.column is not None
        measures += f", SUM({_read(domain, dialect, aggregation.column)})"
    if not aggregation.by:
        return f"SELECT {measures}{where}"
    groups = [_read(domain, dialect, at) for at in aggregation.by]
    selected = ", ".join(g + alias(at) for g, at in zip(groups, aggregation.by, strict=True))
    return f"SELECT {selected}, {measures}{where} GROUP BY {', '.join(groups)}"


Binds = dict[str, object]


class Plan:
    """A job's sorted, de-duplicated CIDs cut into chunks of `slots`."""

    def __init__(self, cids: Sequence[str], slots: int = SLOTS) -> None:
        if slots < 1:
            raise ValueError("slots must be positive")
        self.cids = cids
        self.slots = slots

    @property
    def chunk_count(self) -> int:
        return -(-len(self.cids) // self.slots)

    def chunk_of(self, after: Key | None) -> int:
        """The chunk that holds the next record after `after`."""
        if after is None:
            return 0
        return bisect_left(self.cids, after.cid) // self.slots

    def _cid_binds(self, first: int, end: int) -> Binds:
        binds: Binds = {f"c{i}": None for i in range(self.slots)}
        for i, cid in enumerate(self.cids[first:end]):
            binds[f"c{i}"] = cid
        return binds

    def page_binds(
        self, chunk: int, after: Key | None, limit: int, scn: int | None = None
    ) -> Binds:
        """Binds for `page_sql`: the chunk's CIDs from `after` on, then after-key, limit."""
        start, end = chunk * self.slots, min((chunk + 1) * self.slots, len(self.cids))
        if after is not None:
            start = max(start, bisect_left(self.cids, after.cid, start, end))
        binds = self._cid_binds(start, end)
        binds["after_cid"] = after.cid if after else None
        binds["after_rid"] = after.rid if after else None
        binds["limit"] = limit
        if scn is not None:
            binds["scn"] = scn
        return binds

    def totals_binds(self, chunk: int, scn: int | None = None) -> Binds:
        binds = self._cid_binds(chunk * self.slots, (chunk + 1) * self.slots)
        if scn is not None:
            binds["scn"] = scn
        return binds
