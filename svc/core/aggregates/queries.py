"""The SQL of a domain's declared aggregations over one chunk, and the shape of its rows.

`svc.core.aggregates.merging` reads the rows back by the same `AggregateShape`; the FROM
and WHERE are the totals' (`svc.core.sql.where.chunk_rows`: the chunk's CIDs, the job's
filter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Unpack

from svc.core.domains import Domain
from svc.core.sql.dialects import Dialect, read_column, utc_alias
from svc.core.sql.where import ChunkOptions, chunk_rows


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


def aggregate_sql(domain: Domain, dialect: Dialect, **options: Unpack[ChunkOptions]) -> str:
    """The domain's count, sum and min_max aggregations over one chunk, in one scan:

    ``SELECT <groups>, COUNT(*), SUM(<s>)..., MIN(<m>), MAX(<m>)... GROUP BY <groups>``

    grouped by every `by` column of the domain's aggregations together (a chunk's rows
    bound its groups); `merging` rolls each aggregation up from them and merges the
    chunks. The same FROM and WHERE (the job's filter included) as `totals_sql`.
    One query instead of one per aggregation: the rows are read once (less database time
    per chunk: docs/benchmarks.md#aggregations). A TIMESTAMP WITH TIME ZONE column is read
    in UTC under a ``TRACE_UTC_`` alias, as in pages.
    """
    shape = aggregate_shape(domain)
    if shape is None:
        raise ValueError(f"domain {domain.name} has no count, sum or min_max aggregation")
    groups = [read_column(domain, dialect, at) for at in shape.groups]
    selected = [g + utc_alias(domain, at) for g, at in zip(groups, shape.groups, strict=True)]
    selected.append("COUNT(*)")
    selected += [f"SUM({read_column(domain, dialect, at)})" for at in shape.sums]
    for at in shape.extremes:
        col = read_column(domain, dialect, at)
        selected += [
            f"MIN({col}){utc_alias(domain, at, '_MIN')}",
            f"MAX({col}){utc_alias(domain, at, '_MAX')}",
        ]
    sql = f"SELECT {', '.join(selected)}" + chunk_rows(domain, dialect, options)
    return sql + (f" GROUP BY {', '.join(groups)}" if groups else "")


def distinct_sql(
    domain: Domain, column: int, dialect: Dialect, **options: Unpack[ChunkOptions]
) -> str:
    """A column's distinct non-null values in one chunk (a distinct aggregation: values
    repeat across chunks, so `merging` merges the values, not their counts)."""
    col = read_column(domain, dialect, column)
    return (
        f"SELECT DISTINCT {col}{utc_alias(domain, column)}"
        f"{chunk_rows(domain, dialect, options)} AND {col} IS NOT NULL"
    )
