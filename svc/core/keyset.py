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

A job's filters (`svc.core.filters`) add predicates to the WHERE clause (`filter_sql`), after
the IN list and the keyset predicate, which stay the access path. The text depends only on
the filter's *shape* (columns, kinds, which range ends are given, and the IN-list width
rounded up to a power of two, up to 1000, padded with NULLs), so a statement cache holds
few texts per domain; every value is a bind.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from svc.core.domains import ROWID, Domain
from svc.protocol import MAX_IN_VALUES, Condition, Range

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
    # How a timestamp filter's bind (canonical ISO text, UTC) is read in SQL, and whether
    # it is bound as digits only (YYYYMMDDHHMISSFFFFFF, for Oracle's mask). Text with an
    # explicit mask: no NLS setting and no driver bind type (python-oracledb binds a
    # datetime as DATE, dropping fractions) can change the comparison, and a mask without
    # colons holds nothing a bind parser could mistake for a placeholder.
    timestamp: str = "{}"
    timestamp_digits: bool = False


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
    timestamp="TO_TIMESTAMP({}, 'YYYYMMDDHH24MISSFF6')",
    timestamp_digits=True,
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


Binds = dict[str, object]


# --- filters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterSlot:
    """One condition's place in the statement: what its SQL text depends on, not its values."""

    column: str  # a Filterable's name in the domain
    op: str  # "in" or "range"
    width: int = 0  # in: bind slots (the values, padded with NULLs)
    lower: bool = False  # range: has `from`
    upper: bool = False  # range: has `to`


WhereShape = tuple[FilterSlot, ...]
Conditions = Mapping[str, Condition]  # one domain's canonical `where`, by column


def in_width(values: int) -> int:
    """The IN-list slots for `values` values: the next power of two, at most 1000."""
    width = 1
    while width < values:
        width *= 2
    return min(width, MAX_IN_VALUES)


def where_shape(conditions: Conditions | None) -> WhereShape:
    """The shape of one domain's canonical conditions (columns in name order)."""
    shape = []
    for column, cond in sorted((conditions or {}).items()):
        if isinstance(cond, Range):
            ends = (cond.from_ is not None, cond.to is not None)
            shape.append(FilterSlot(column, "range", 0, *ends))
        else:
            shape.append(FilterSlot(column, "in", in_width(len(cond))))
    return tuple(shape)


def _filter_column(domain: Domain, slot: FilterSlot) -> tuple[str, str]:
    """The column's SQL as compared, and the template its binds are read through."""
    column = domain.filterable(slot.column)
    if column is None or slot.op not in column.ops:
        raise ValueError(f"{domain.name}.{slot.column} does not take {slot.op}")
    return column.sql, column.type


def filter_sql(domain: Domain, dialect: Dialect, shape: WhereShape) -> str:
    """The filter's predicates: ``" AND <pred> AND <pred>..."``, or "" for no filter.

    Binds are named ``:f<i>_<j>`` (the j-th value of the i-th condition of `shape`) and
    ``:f<i>_lo`` / ``:f<i>_hi`` (a range's ends); `filter_binds` fills them. Identifiers
    come from the domain file only. Reusable by any statement over the domain's table.
    """
    parts = []
    for i, slot in enumerate(shape):
        sql, kind = _filter_column(domain, slot)
        if kind == "timestamptz":
            sql = dialect.utc.format(sql)
        if slot.op == "in":
            parts.append(f"{sql} IN ({', '.join(f':f{i}_{j}' for j in range(slot.width))})")
            continue
        param = dialect.timestamp if kind in ("timestamp", "timestamptz") else "{}"
        if slot.lower:
            parts.append(f"{sql} >= {param.format(f':f{i}_lo')}")
        if slot.upper:
            parts.append(f"{sql} < {param.format(f':f{i}_hi')}")
    return "".join(f" AND {p}" for p in parts)


def _bind(dialect: Dialect, kind: str, value: object) -> object:
    if dialect.timestamp_digits and kind in ("timestamp", "timestamptz"):
        assert isinstance(value, str)  # canonical ISO text (svc.core.filters)
        iso = dt.datetime.fromisoformat(value).isoformat(timespec="microseconds")
        return "".join(c for c in iso if c.isdigit())  # 4-digit year: isoformat pads it
    return value


def filter_binds(domain: Domain, dialect: Dialect, conditions: Conditions | None) -> Binds:
    """The binds of `filter_sql(domain, dialect, where_shape(conditions))`."""
    binds: Binds = {}
    ordered = sorted((conditions or {}).items())
    for i, (slot, (_, cond)) in enumerate(zip(where_shape(conditions), ordered, strict=True)):
        _, kind = _filter_column(domain, slot)
        if isinstance(cond, Range):
            if slot.lower:
                binds[f"f{i}_lo"] = _bind(dialect, kind, cond.from_)
            if slot.upper:
                binds[f"f{i}_hi"] = _bind(dialect, kind, cond.to)
        else:
            for j in range(slot.width):
                binds[f"f{i}_{j}"] = _bind(dialect, kind, cond[j]) if j < len(cond) else None
    return binds


# --- statements --------------------------------------------------------------------------


def page_sql(
    domain: Domain,
    dialect: Dialect,
    *,
    slots: int = SLOTS,
    snapshot: bool = False,
    offset: bool = False,
    where: WhereShape = (),
) -> str:
    """One keyset page: the selected columns plus the tie-break as a last column.

    With `offset`, the page skips `:skip` rows of its chunk first: the entry point of
    offset paging, which then goes on by keyset. `where`: the job's filter (`filter_sql`).
    """
    rid = _tiebreak(domain, dialect)
    return (
        f"SELECT {_select(domain, dialect)}, {rid} AS {RID_ALIAS}"
        f" FROM {_source(domain, dialect, snapshot)}"
        f" WHERE {domain.key} IN ({_in_list(slots)})"
        f" AND (:after_rid IS NULL OR {domain.key} > :after_cid OR {rid} > :after_rid)"
        f"{filter_sql(domain, dialect, where)}"
        f" ORDER BY {domain.key}, {rid}"
        f" {dialect.offset_clause if offset else dialect.limit_clause}"
    )


def json_value_guard(col: str) -> str:
    """A column as the rows path would encode it: an infinite REAL as null (as msgspec
    writes it); a BLOB (rows encode it as base64; SQLite would read it as JSONB) and -0.0
    (SQLite's JSON writes 0.0; only a column without affinity keeps the sign) as an error,
    which sends the rest of the domain to the rows path (`JsonUnsupported`).

    `+col` has no affinity, so the tests compare by storage class alone (NULL < numbers <
    TEXT < BLOB): only a number is < '' (NULL compares to nothing), only a BLOB is >= x'',
    only an infinite REAL equals 9e999, and atan2 tells -0.0 from 0.0 by its sign. Text and
    NULL, most values, pass two tests; numbers four. Testing for a BLOB first put four tests
    before every text (pages 0-10 % slower); `typeof()` and its text cost more still without
    telling -0.0 (bench/json_in_database.py). In the subquery: the same tests in the outer
    query, on its columns, cost ~15 % more."""
    return (
        f"CASE WHEN +{col} < '' THEN CASE WHEN +{col} IN (9e999, -9e999) THEN NULL"
        f" WHEN +{col} = 0 AND atan2(+{col}, -1) < 0 THEN json('{{-0') ELSE {col} END"
        f" WHEN +{col} >= x'' THEN json('{{' || hex({col})) ELSE {col} END"
    )


def json_page_sql(
    domain: Domain, dialect: Dialect, *, arrays: bool, slots: int = SLOTS, where: WhereShape = ()
) -> str:
    """One keyset page built whole by the database (SQLite only): a single row of the
    records as one JSON array text (objects keyed by the domain's column names, or
    arrays), their tie-breaks as another, and their count.

    The same rows, order and binds as `page_sql`; the page takes up to `:limit` rows from
    the CIDs bound, so a page may span every CID of a segment (`svc.engine.json_batches`).
    """
    if dialect.name != SQLITE.name:
        raise ValueError(f"{dialect.name} does not build pages as JSON here")
    values = ", ".join(
        f"{json_value_guard(col)} AS TRACE_V{i}" for i, col in enumerate(domain.select)
    )
    names = [f"TRACE_V{i}" for i in range(len(domain.select))]
    if arrays:
        record = f"json_array({', '.join(names)})"
    else:
        pairs = (
            f"'{name.replace(chr(39), chr(39) * 2)}', {v}"
            for name, v in zip(domain.columns, names, strict=True)
        )
        record = f"json_object({', '.join(pairs)})"
    rid = _tiebreak(domain, dialect)
    # The records are joined as text: json_group_array would parse each record again
    # (1.4x slower); the record is built in the outer query, as a JSON value passed
    # through a subquery column would be quoted as a string.
    return (
        f"SELECT '[' || coalesce(group_concat({record}, ','), '') || ']',"
        f" json_group_array({RID_ALIAS}), count(*)"
        f" FROM (SELECT {values}, {rid} AS {RID_ALIAS}"
        f" FROM {domain.table}"
        f" WHERE {domain.key} IN ({_in_list(slots)})"
        f" AND (:after_rid IS NULL OR {domain.key} > :after_cid OR {rid} > :after_rid)"
        f"{filter_sql(domain, dialect, where)}"
        f" ORDER BY {domain.key}, {rid} {dialect.limit_clause})"
    )


def totals_sql(
    domain: Domain,
    dialect: Dialect,
    *,
    slots: int = SLOTS,
    snapshot: bool = False,
    where: WhereShape = (),
) -> str:
    """Rows and distinct CIDs with rows, for one chunk (of the job's filter, if any)."""
    return f"SELECT COUNT(*), COUNT(DISTINCT {domain.key})" + _chunk_rows(
        domain, dialect, slots, snapshot, where
    )


def _chunk_rows(
    domain: Domain, dialect: Dialect, slots: int, snapshot: bool, where: WhereShape
) -> str:
    """`` FROM ... WHERE`` for every row of one chunk's CIDs that the job's filter keeps:
    what the per-chunk counts and aggregates read."""
    return (
        f" FROM {_source(domain, dialect, snapshot)}"
        f" WHERE {domain.key} IN ({_in_list(slots)}){filter_sql(domain, dialect, where)}"
    )


def _read(domain: Domain, dialect: Dialect, at: int) -> str:
    """A column as an aggregate reads it: a TIMESTAMP WITH TIME ZONE one in UTC."""
    col = domain.select[at]
    return dialect.utc.format(col) if at in domain.timestamptz else col


def _utc_alias(domain: Domain, at: int, suffix: str = "") -> str:
    return f" AS {UTC_ALIAS}{at}{suffix}" if at in domain.timestamptz else ""


@dataclass(frozen=True)
class AggregateShape:
    """The one grouped query per chunk that serves every count, sum and min_max
    aggregation of a domain (column positions; each aggregation rolls its own groups up
    from these). Its rows: the `groups` values, COUNT(*), a SUM per `sums` column, then
    MIN and MAX per `extremes` column."""

    groups: tuple[int, ...]
    sums: tuple[int, ...]
    extremes: tuple[int, ...]


def aggregate_shape(domain: Domain) -> AggregateShape | None:
    """None when the domain declares no count, sum or min_max aggregation."""
    if all(agg.kind == "distinct" for agg in domain.aggregations):
        return None
    groups: dict[int, None] = {}  # ordered sets of positions
    sums: dict[int, None] = {}
    extremes: dict[int, None] = {}
    for agg in domain.aggregations:
        if agg.kind in ("count", "sum"):
            groups.update(dict.fromkeys(agg.by))
        if agg.kind == "sum" and agg.column is not None:
            sums[agg.column] = None
        if agg.kind == "min_max" and agg.column is not None:
            extremes[agg.column] = None
    return AggregateShape(tuple(groups), tuple(sums), tuple(extremes))


def aggregate_sql(
    domain: Domain,
    dialect: Dialect,
    *,
    slots: int = SLOTS,
    snapshot: bool = False,
    where: WhereShape = (),
) -> str:
    """The domain's count, sum and min_max aggregations over one chunk, in one scan:

    ``SELECT <groups>, COUNT(*), SUM(<s>)..., MIN(<m>), MAX(<m>)... GROUP BY <groups>``

    grouped by every `by` column of the domain's aggregations together (a chunk's rows
    bound its groups); `svc.core.aggregate` rolls each aggregation up from them and merges
    the chunks. The same FROM and WHERE (the job's filter included) as `totals_sql`.
    One query instead of one per aggregation: the rows are read once (measured 2.7x less
    database time per chunk for the demo's four history aggregations). A TIMESTAMP WITH
    TIME ZONE column is read in UTC under a ``TRACE_UTC_`` alias, as in pages.
    """
    shape = aggregate_shape(domain)
    if shape is None:
        raise ValueError(f"domain {domain.name} has no count, sum or min_max aggregation")
    groups = [_read(domain, dialect, at) for at in shape.groups]
    selected = [g + _utc_alias(domain, at) for g, at in zip(groups, shape.groups, strict=True)]
    selected.append("COUNT(*)")
    selected += [f"SUM({_read(domain, dialect, at)})" for at in shape.sums]
    for at in shape.extremes:
        col = _read(domain, dialect, at)
        selected += [
            f"MIN({col}){_utc_alias(domain, at, '_MIN')}",
            f"MAX({col}){_utc_alias(domain, at, '_MAX')}",
        ]
    sql = f"SELECT {', '.join(selected)}" + _chunk_rows(domain, dialect, slots, snapshot, where)
    return sql + (f" GROUP BY {', '.join(groups)}" if groups else "")


def distinct_sql(
    domain: Domain,
    column: int,
    dialect: Dialect,
    *,
    slots: int = SLOTS,
    snapshot: bool = False,
    where: WhereShape = (),
) -> str:
    """A column's distinct non-null values in one chunk (a distinct aggregation: values
    repeat across chunks, so `svc.core.aggregate` merges the values, not their counts)."""
    col = _read(domain, dialect, column)
    return (
        f"SELECT DISTINCT {col}{_utc_alias(domain, column)}"
        f"{_chunk_rows(domain, dialect, slots, snapshot, where)} AND {col} IS NOT NULL"
    )


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

    def range_binds(self, start: int, end: int, after: Key | None, limit: int) -> Binds:
        """Binds for `json_page_sql`: the CIDs `cids[start:end]` (at most `slots`, the
        first of them `after`'s CID if given), then after-key, limit."""
        if end - start > self.slots:
            raise ValueError("a range binds at most `slots` CIDs")
        binds = self._cid_binds(start, end)
        binds["after_cid"] = after.cid if after else None
        binds["after_rid"] = after.rid if after else None
        binds["limit"] = limit
        return binds

    def totals_binds(self, chunk: int, scn: int | None = None) -> Binds:
        binds = self._cid_binds(chunk * self.slots, (chunk + 1) * self.slots)
        if scn is not None:
            binds["scn"] = scn
        return binds
