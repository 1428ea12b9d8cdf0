"""What differs between SQLite's and Oracle's SQL, and the pieces every statement shares."""

from __future__ import annotations

from dataclasses import dataclass

from svc.core.domains import ROWID, Domain

RID_ALIAS = "TRACE_RID"
UTC_ALIAS = "TRACE_UTC_"  # + the column's position: a TIMESTAMP WITH TIME ZONE read in UTC

Binds = dict[str, object]


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


def tiebreak(domain: Domain, dialect: Dialect) -> str:
    return dialect.rowid if domain.tiebreak == ROWID else domain.tiebreak


def select_list(domain: Domain, dialect: Dialect) -> str:
    """The domain's columns as a page selects them."""
    return ", ".join(
        read_column(domain, dialect, at) + utc_alias(domain, at) for at in range(len(domain.select))
    )


def in_list(slots: int) -> str:
    return ", ".join(f":c{i}" for i in range(slots))


def source_table(domain: Domain, dialect: Dialect, snapshot: bool) -> str:
    if snapshot and not dialect.snapshot_clause:
        raise ValueError(f"{dialect.name} has no snapshot reads")
    return domain.table + (dialect.snapshot_clause if snapshot else "")


def read_column(domain: Domain, dialect: Dialect, at: int) -> str:
    """A selected column as read: a TIMESTAMP WITH TIME ZONE one in UTC."""
    col = domain.select[at]
    return dialect.utc.format(col) if at in domain.timestamptz else col


def utc_alias(domain: Domain, at: int, suffix: str = "") -> str:
    """The alias that tells the source a column was read in UTC (`read_column`)."""
    return f" AS {UTC_ALIAS}{at}{suffix}" if at in domain.timestamptz else ""
