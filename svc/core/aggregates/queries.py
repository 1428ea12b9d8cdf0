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
from svc.core.sql.pages import json_page_columns, json_page_rows
from svc.core.sql.where import ChunkOptions, WhereShape, chunk_rows


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


def folded_page_sql(
    page: Domain, declared: Domain, dialect: Dialect, *, arrays: bool, slots: int, where: WhereShape
) -> str:
    """A JSON page (`svc.core.sql.pages.json_page_sql`, SQLite only) that also gives the
    declared domain's aggregations over its rows, so that a stream that reads every page of
    a domain has its aggregations when it ends, without reading the rows again.

    The page's rows are materialized once and read again for the aggregations. Still one
    row: the page's three columns, then `aggregate_sql`'s rows over the page as one JSON
    array of arrays (if the domain has a count, sum or min_max), then each distinct
    aggregation's values as one JSON array (in `declared.aggregations` order). One row,
    not a row per group or value: a worker thread takes the interpreter lock for every row
    it hands over, and on two busy cores each take can wait (docs/benchmarks.md#aggregations).
    JSON cannot hold a BLOB: one in an aggregated column fails the page as one in a record
    does. `page` is the job's selection of `declared`.
    """
    shape = aggregate_shape(declared)
    distinct = [
        a.column for a in declared.aggregations if a.kind == "distinct" and a.column is not None
    ]
    wanted: dict[int, None] = {}  # the declared columns the aggregations read, once each
    if shape is not None:
        wanted.update(dict.fromkeys(shape.groups + shape.sums + shape.extremes))
    wanted.update(dict.fromkeys(distinct))
    extra = ", ".join(f"{read_column(declared, dialect, at)} AS TRACE_A{at}" for at in wanted)
    rows, record = json_page_rows(
        page, dialect, arrays=arrays, slots=slots, where=where, extra=extra
    )
    columns = [json_page_columns(record)]
    if shape is not None:
        groups = [f"TRACE_A{at}" for at in shape.groups]
        selected = [*groups, "count(*)"]
        selected += [f"sum(TRACE_A{at})" for at in shape.sums]
        for at in shape.extremes:
            selected += [f"min(TRACE_A{at})", f"max(TRACE_A{at})"]
        grouped = f" GROUP BY {', '.join(groups)}" if groups else ""
        names = [f"TRACE_G{i}" for i in range(len(selected))]
        aliased = ", ".join(f"{c} AS {n}" for c, n in zip(selected, names, strict=True))
        columns.append(
            f"(SELECT json_group_array(json_array({', '.join(names)}))"
            f" FROM (SELECT {aliased} FROM page{grouped}))"
        )
    for at in distinct:
        value = f"TRACE_A{at}"
        columns.append(
            f"(SELECT json_group_array(DISTINCT {value}) FROM page WHERE {value} IS NOT NULL)"
        )
    return f"WITH page AS MATERIALIZED ({rows}) SELECT {', '.join(columns)} FROM page"
