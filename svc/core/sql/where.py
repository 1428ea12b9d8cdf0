"""A job's filter as SQL predicates and binds, and the rows of one chunk it keeps.

A job's filters (`svc.core.filters`) add predicates to the WHERE clause (`filter_sql`), after
the IN list and the keyset predicate, which stay the access path. The text depends only on
the filter's *shape* (columns, kinds, which range ends are given, and the IN-list width
rounded up to a power of two, up to 1000), so a statement cache holds few texts per domain;
every value is a bind. An IN list is padded by repeating its last value, not with NULLs: the
result is the same, and every slot keeps the column's bind type (python-oracledb binds None
as VARCHAR2, so NULL padding would make Oracle build a child cursor per pattern of
NUMBER and VARCHAR2 slots: BIND_MISMATCH).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

from svc.core.domains import Domain
from svc.core.sql.dialects import Binds, Dialect, in_list, source_table
from svc.core.sql.plan import SLOTS
from svc.protocol import MAX_IN_VALUES, Condition, Range


@dataclass(frozen=True)
class FilterSlot:
    """One condition's place in the statement: what its SQL text depends on, not its values."""

    column: str  # a Filterable's name in the domain
    op: str  # "in" or "range"
    width: int = 0  # in: bind slots (the values, padded with the last one)
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
                binds[f"f{i}_{j}"] = _bind(dialect, kind, cond[min(j, len(cond) - 1)])
    return binds


class ChunkOptions(TypedDict, total=False):
    """The keywords every statement over one chunk's rows takes (pages, totals, aggregates),
    defined once; `chunk_options` fills in their defaults."""

    slots: int  # CID binds of the IN list (default `SLOTS`)
    snapshot: bool  # the table read AS OF SCN :scn (default: not)
    where: WhereShape  # the job's filter (default: none)


def chunk_options(options: ChunkOptions) -> tuple[int, bool, WhereShape]:
    """`options` as (slots, snapshot, where), defaults filled in."""
    return options.get("slots", SLOTS), options.get("snapshot", False), options.get("where", ())


def chunk_rows(domain: Domain, dialect: Dialect, options: ChunkOptions) -> str:
    """`` FROM ... WHERE`` for every row of one chunk's CIDs that the job's filter keeps:
    what the per-chunk counts and aggregates read."""
    slots, snapshot, where = chunk_options(options)
    return (
        f" FROM {source_table(domain, dialect, snapshot)}"
        f" WHERE {domain.key} IN ({in_list(slots)}){filter_sql(domain, dialect, where)}"
    )
