"""The statements that read a chunk's records: keyset pages (as rows, or as JSON the
database builds) and the chunk's totals. `svc.core.sql.plan` binds them."""

from __future__ import annotations

from typing import Unpack

from svc.core.domains import Domain
from svc.core.sql.dialects import (
    RID_ALIAS,
    SQLITE,
    Dialect,
    in_list,
    select_list,
    source_table,
    tiebreak,
)
from svc.core.sql.plan import SLOTS
from svc.core.sql.where import ChunkOptions, WhereShape, chunk_options, chunk_rows, filter_sql


def _keyset_page(
    domain: Domain,
    dialect: Dialect,
    columns: str,
    slots: int,
    snapshot: bool,
    where: WhereShape,
    clause: str,
) -> str:
    """`columns` and the tie-break of a chunk's rows after `:after_cid`/`:after_rid`, in
    key order, ended by `clause` (the row limit, or the offset)."""
    rid = tiebreak(domain, dialect)
    return (
        f"SELECT {columns}, {rid} AS {RID_ALIAS}"
        f" FROM {source_table(domain, dialect, snapshot)}"
        f" WHERE {domain.key} IN ({in_list(slots)})"
        f" AND (:after_rid IS NULL OR {domain.key} > :after_cid OR {rid} > :after_rid)"
        f"{filter_sql(domain, dialect, where)}"
        f" ORDER BY {domain.key}, {rid} {clause}"
    )


def page_sql(
    domain: Domain, dialect: Dialect, *, offset: bool = False, **options: Unpack[ChunkOptions]
) -> str:
    """One keyset page: the selected columns plus the tie-break as a last column.

    With `offset`, the page skips `:skip` rows of its chunk first: the entry point of
    offset paging, which then goes on by keyset. `where`: the job's filter (`filter_sql`).
    """
    slots, snapshot, where = chunk_options(options)
    clause = dialect.offset_clause if offset else dialect.limit_clause
    return _keyset_page(
        domain, dialect, select_list(domain, dialect), slots, snapshot, where, clause
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
    before every text (slower pages); `typeof()` and its text cost more still without
    telling -0.0 (bench/json_in_database.py). In the subquery: the same tests in the outer
    query, on its columns, cost more (docs/benchmarks.md#page-sql-and-sources)."""
    return (
        f"CASE WHEN +{col} < '' THEN CASE WHEN +{col} IN (9e999, -9e999) THEN NULL"
        f" WHEN +{col} = 0 AND atan2(+{col}, -1) < 0 THEN json('{{-0') ELSE {col} END"
        f" WHEN +{col} >= x'' THEN json('{{' || hex({col})) ELSE {col} END"
    )


def json_page_rows(
    domain: Domain,
    dialect: Dialect,
    *,
    arrays: bool,
    slots: int = SLOTS,
    where: WhereShape = (),
    extra: str = "",
) -> tuple[str, str]:
    """The keyset page of `json_page_sql` as rows of guarded values (`TRACE_V<i>`, then
    `extra` columns, then the tie-break), and the expression that builds one record's JSON
    from such a row: the parts `svc.core.aggregates.queries.folded_page_sql` reuses."""
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
    columns = values + (f", {extra}" if extra else "")
    rows = _keyset_page(domain, dialect, columns, slots, False, where, dialect.limit_clause)
    return rows, record


def json_page_columns(record: str) -> str:
    """The page's one row, from its records' rows: the records as one JSON array text,
    their tie-breaks as another, their count."""
    # The records are joined as text: json_group_array would parse each record again
    # (slower: docs/benchmarks.md#page-sql-and-sources); the record is built in the outer
    # query, as a JSON value passed through a subquery column would be quoted as a string.
    return (
        f"'[' || coalesce(group_concat({record}, ','), '') || ']',"
        f" json_group_array({RID_ALIAS}), count(*)"
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
    rows, record = json_page_rows(domain, dialect, arrays=arrays, slots=slots, where=where)
    return f"SELECT {json_page_columns(record)} FROM ({rows})"


def totals_sql(domain: Domain, dialect: Dialect, **options: Unpack[ChunkOptions]) -> str:
    """Rows and distinct CIDs with rows, for one chunk (of the job's filter, if any)."""
    return f"SELECT COUNT(*), COUNT(DISTINCT {domain.key})" + chunk_rows(domain, dialect, options)
