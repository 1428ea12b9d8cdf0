"""The domain registry: which table, key, tie-break and columns each domain reads.

Loaded from a TOML file (``TRACE_DOMAINS``; `default_domains.toml` ships for the demo
schema). Every identifier is validated here, once, so SQL built from a `Domain` is built
from configuration only, never from a request.

    [domains.history]
    table = "MES_CONTAINER_HISTORY"   # may be schema-qualified: OWNER.TABLE
    key = "CONTAINERID"
    tiebreak = "rowid"                # the engine's row id (SQLite rowid, Oracle ROWID),
                                      # or the name of a unique column
    columns = ["CONTAINERID", "TXNDATE", '"Order"', ...]
    timestamptz = ["EVENT_TS"]        # optional: TIMESTAMP WITH TIME ZONE columns (sent in UTC)

    [domains.history.types]           # optional: column types of typed exports (xlsx, Parquet)
    QTY = "number"                    # text (the default), integer, number, timestamp,
    TXNDATE = "timestamp"             # timestamptz; a filter's type or `timestamptz` counts too

    [domains.history.filters]         # optional: the columns a job may narrow (svc.core.filters)
    EVENTNAME = "in"                  # a list of values; text unless a type is given
    TXNDATE = { op = "range", type = "timestamp" }   # from (inclusive) / to (exclusive)
    QTY = { op = ["in", "range"], type = "number" }

A filter column is named in requests as records name it (without quotes) and need not be
among `columns`. Kinds: ``in`` (text or number columns) and ``range`` (text, number,
timestamp or timestamptz; a range always names its type, so a DATE column is never
compared with a string by accident). A `timestamptz` column is compared in UTC.

An identifier is plain (``CONTAINERID``: letters, digits, ``_ $ #``, not a reserved word)
or double-quoted (``'"Order"'``, ``'"Lot No"'``: any characters but ``"`` and control
characters), as Oracle writes a reserved word or a mixed-case name. SQL carries it as
configured; records and ``domain_start`` name a column by its name without the quotes.

Aggregations (optional, any number per domain) are computed by the database over the
job's rows and sent as one small outcome (`svc.core.aggregates`)::

    [[domains.history.aggregations]]
    name = "events"                   # unique in the domain: lowercase letters, digits, _
    kind = "count"                    # rows per group of `by`
    by = ["EVENTNAME"]                # 1-4 of the domain's columns
    top = 20                          # groups listed (default 20, at most 1000); the rest
                                      # are summed up in one "other" bucket
    [[domains.history.aggregations]]
    name = "qty"
    kind = "sum"                      # the sum of a numeric column; `by` and `top` optional
    column = "QTY"
    # kind = "min_max": the least and greatest value of `column` (no `by`)
    # kind = "distinct": how many distinct non-null values `column` holds (no `by`)

Every column named here must be one of the domain's `columns`. On Oracle, a `by`,
`min_max` or `distinct` column must not be a LOB (CLOB, NCLOB, BLOB) or LONG: Oracle cannot
GROUP BY, DISTINCT or compare one (ORA-00932 for a LOB, ORA-00997 for a LONG), and a `sum`
column must be numeric. The file cannot tell a column's type, so such a mistake shows when
the aggregation first runs (a non-retryable `source_misconfigured`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ROWID = "rowid"
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_$#]{0,127}$")
_QUOTED = re.compile(r'^"[^"\x00-\x1f\x7f]{1,128}"$')
# Oracle's reserved words (V$RESERVED_WORDS, RESERVED = 'Y'): unquoted, they are not
# column or table names. Quote them ('"ORDER"') to configure such a column.
RESERVED = frozenset(
    """ACCESS ADD ALL ALTER AND ANY AS ASC AUDIT BETWEEN BY CHAR CHECK CLUSTER COLUMN COMMENT
    COMPRESS CONNECT CREATE CURRENT DATE DECIMAL DEFAULT DELETE DESC DISTINCT DROP ELSE
    EXCLUSIVE EXISTS FILE FLOAT FOR FROM GRANT GROUP HAVING IDENTIFIED IMMEDIATE IN INCREMENT
    INDEX INITIAL INSERT INTEGER INTERSECT INTO IS LEVEL LIKE LOCK LONG MAXEXTENTS MINUS
    MLSLABEL MODE MODIFY NOAUDIT NOCOMPRESS NOT NOWAIT NULL NUMBER OF OFFLINE ON ONLINE
    OPTION OR ORDER PCTFREE PRIOR PUBLIC RAW RENAME RESOURCE REVOKE ROW ROWID ROWNUM ROWS
    SELECT SESSION SET SHARE SIZE SMALLINT START SUCCESSFUL SYNONYM SYSDATE TABLE THEN TO
    TRIGGER UID UNION UNIQUE UPDATE USER VALIDATE VALUES VARCHAR VARCHAR2 VIEW WHENEVER
    WHERE WITH""".split()
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
FILTER_OPS = ("in", "range")
FILTER_TYPES = ("text", "number", "timestamp", "timestamptz")
_OPS_OF_TYPE = {
    "text": {"in", "range"},
    "number": {"in", "range"},
    "timestamp": {"range"},
    "timestamptz": {"range"},
}
_MAX_FILTERS = 32  # per domain
AGGREGATION_KINDS = ("count", "sum", "min_max", "distinct")
# A column's type in typed export files (svc/exports/typed.py); the stream sends values as read.
COLUMN_TYPES = ("text", "integer", "number", "timestamp", "timestamptz")
DEFAULT_TOP = 20  # groups a grouped aggregation lists; the rest go into "other"
MAX_TOP = 1000
MAX_BY = 4


class DomainConfigError(ValueError):
    """The domain file is malformed; raised at start-up, never during a request."""


@dataclass(frozen=True)
class Filterable:
    """A column a job may narrow: how requests name it, its SQL, kinds and value type."""

    name: str  # as records and requests name it (without quotes)
    sql: str  # the identifier as configured
    ops: frozenset[str]  # of FILTER_OPS
    type: str  # one of FILTER_TYPES


@dataclass(frozen=True)
class Aggregation:
    """One declared aggregation of a domain. Columns are positions in the domain's
    `select`/`columns`, so SQL reads them as configured (timestamptz ones in UTC)."""

    name: str
    kind: str  # one of AGGREGATION_KINDS
    by: tuple[int, ...] = ()  # group columns (count, sum)
    column: int | None = None  # the measured column (sum, min_max, distinct)
    top: int = DEFAULT_TOP


@dataclass(frozen=True)
class Domain:
    """A domain's table, key, tie-break and columns.

    `table`, `key`, `tiebreak` and `select` are SQL text (quoted identifiers keep their
    quotes); `columns` are the names records carry (the same, without quotes).
    """

    name: str
    table: str
    key: str
    tiebreak: str  # ROWID, or a unique column
    columns: tuple[str, ...]  # the key column is always among them
    select: tuple[str, ...] = ()  # SQL of each column; () means `columns`
    timestamptz: frozenset[int] = frozenset()  # positions of TIMESTAMP WITH TIME ZONE columns
    filters: tuple[Filterable, ...] = ()  # the columns a job may narrow, by name
    aggregations: tuple[Aggregation, ...] = ()
    types: tuple[str, ...] = ()  # of COLUMN_TYPES, per column; () means all text

    def __post_init__(self) -> None:
        if not self.select:
            object.__setattr__(self, "select", self.columns)
        if len(self.select) != len(self.columns):
            raise ValueError("select and columns differ in length")
        if not self.types:
            object.__setattr__(self, "types", ("text",) * len(self.columns))

    @property
    def key_index(self) -> int:
        return self.select.index(self.key)

    def filterable(self, name: str) -> Filterable | None:
        return next((f for f in self.filters if f.name == name), None)


def unquoted(ident: str) -> str:
    """The name an identifier gives (its quotes removed, if quoted)."""
    return ident[1:-1] if ident.startswith('"') else ident


def canonical(ident: str) -> str:
    """How Oracle names an identifier: unquoted ones fold to upper case."""
    return ident[1:-1] if ident.startswith('"') else ident.upper()


def _part(part: str) -> bool:
    if _QUOTED.match(part):
        return True
    return bool(_IDENT.match(part)) and part.upper() not in RESERVED


def _ident(value: object, what: str, qualified: bool = False) -> str:
    if not isinstance(value, str):
        raise DomainConfigError(f"{what} must be a string")
    parts = re.findall(r'"[^"]*"|[^."]+|\.', value) if qualified else [value]
    names = [p for p in parts if p != "."]
    well_formed = "".join(parts) == value and len(parts) % 2 == 1 and set(parts[1::2]) <= {"."}
    if not well_formed:
        raise DomainConfigError(f"{what} {value!r} is not OWNER.TABLE or TABLE")
    if len(names) > 2 or not names or not all(_part(p) for p in names):
        if any(p.upper() in RESERVED for p in names):
            raise DomainConfigError(
                f"{what} {value!r} is a reserved word: quote it, e.g. '\"{value.upper()}\"'"
            )
        raise DomainConfigError(
            f"{what} {value!r} is not an SQL identifier (plain, or double-quoted without"
            " a double quote or control character inside)"
        )
    return value


def parse_domains(text: str) -> dict[str, Domain]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DomainConfigError(f"domain file is not valid TOML: {exc}") from exc
    table = data.get("domains")
    if not isinstance(table, dict) or not table:
        raise DomainConfigError("domain file needs at least one [domains.NAME] table")
    domains: dict[str, Domain] = {}
    for name, spec in table.items():
        if not _NAME.match(name):
            raise DomainConfigError(f"domain name {name!r}: use lowercase letters, digits, _")
        if not isinstance(spec, dict):
            raise DomainConfigError(f"[domains.{name}] must be a table")
        known = {"table", "key", "tiebreak", "columns", "timestamptz", "filters"}
        known |= {"aggregations", "types"}
        unknown = set(spec) - known
        if unknown:
            raise DomainConfigError(f"[domains.{name}] has unknown keys {sorted(unknown)}")
        key = _ident(spec.get("key", "CONTAINERID"), f"{name}.key")
        tiebreak = spec.get("tiebreak", ROWID)
        if not (isinstance(tiebreak, str) and tiebreak.lower() == ROWID):
            tiebreak = _ident(tiebreak, f"{name}.tiebreak")
        else:
            tiebreak = ROWID
        columns = spec.get("columns")
        if not isinstance(columns, list) or not columns:
            raise DomainConfigError(f"{name}.columns must be a non-empty list")
        cols = [_ident(c, f"{name}.columns[]") for c in columns]
        if len({canonical(c) for c in cols}) != len(cols):
            raise DomainConfigError(f"{name}.columns has duplicates")
        if len({unquoted(c) for c in cols}) != len(cols):
            raise DomainConfigError(f"{name}.columns has two columns of the same name")
        if canonical(key) not in {canonical(c) for c in cols}:
            cols.insert(0, key)
        tz = spec.get("timestamptz", [])
        if not isinstance(tz, list):
            raise DomainConfigError(f"{name}.timestamptz must be a list of columns")
        by_name = {canonical(c): i for i, c in enumerate(cols)}
        tz_at = set()
        for c in tz:
            at = by_name.get(canonical(_ident(c, f"{name}.timestamptz[]")))
            if at is None:
                raise DomainConfigError(f"{name}.timestamptz: {c!r} is not one of the columns")
            tz_at.add(at)
        filters = _filters(name, spec.get("filters", {}), {canonical(cols[i]) for i in tz_at})
        domains[name] = Domain(
            name=name,
            table=_ident(spec.get("table"), f"{name}.table", qualified=True),
            key=cols[by_name[canonical(key)]],
            tiebreak=tiebreak,
            columns=tuple(unquoted(c) for c in cols),
            select=tuple(cols),
            timestamptz=frozenset(tz_at),
            filters=filters,
            aggregations=_aggregations(name, spec.get("aggregations", []), by_name),
            types=_types(name, spec.get("types", {}), by_name, tz_at, filters),
        )
    return domains


def _filters(domain: str, table: object, tz: set[str]) -> tuple[Filterable, ...]:
    """The `[domains.NAME.filters]` table: COLUMN = "in" or { op = ..., type = ... }."""
    if not isinstance(table, dict):
        raise DomainConfigError(f"[domains.{domain}.filters] must be a table")
    if len(table) > _MAX_FILTERS:
        raise DomainConfigError(f"[domains.{domain}.filters]: at most {_MAX_FILTERS} columns")
    out: list[Filterable] = []
    for column, decl in table.items():
        what = f"{domain}.filters.{column}"
        sql = _ident(column, what)
        if isinstance(decl, str):
            decl = {"op": decl}
        if not isinstance(decl, dict) or set(decl) - {"op", "type"}:
            raise DomainConfigError(f'{what}: use "in" or {{ op = ..., type = ... }}')
        ops = decl.get("op")
        ops = [ops] if isinstance(ops, str) else ops
        if not isinstance(ops, list) or not ops or not set(ops) <= set(FILTER_OPS):
            raise DomainConfigError(f"{what}: op must be one or more of {list(FILTER_OPS)}")
        if "range" in ops and "type" not in decl:
            raise DomainConfigError(f"{what}: a range needs a type, one of {list(FILTER_TYPES)}")
        kind = decl.get("type", "text")
        if kind not in FILTER_TYPES:
            raise DomainConfigError(f"{what}: type must be one of {list(FILTER_TYPES)}")
        if not set(ops) <= _OPS_OF_TYPE[kind]:
            raise DomainConfigError(f"{what}: a {kind} column takes {sorted(_OPS_OF_TYPE[kind])}")
        if canonical(sql) in tz and kind != "timestamptz":
            raise DomainConfigError(f'{what}: a timestamptz column: declare type = "timestamptz"')
        out.append(Filterable(unquoted(sql), sql, frozenset(ops), kind))
    if len({f.name for f in out}) != len(out) or len({canonical(f.sql) for f in out}) != len(out):
        raise DomainConfigError(f"[domains.{domain}.filters] names a column twice")
    return tuple(out)


def _types(
    domain: str,
    table: object,
    by_name: dict[str, int],
    tz_at: set[int],
    filters: tuple[Filterable, ...],
) -> tuple[str, ...]:
    """Each column's type: declared under `types`, else a `timestamptz` column's, else its
    filter's type, else text."""
    if not isinstance(table, dict):
        raise DomainConfigError(f"[domains.{domain}.types] must be a table")
    out = ["text"] * len(by_name)
    for f in filters:
        at = by_name.get(canonical(f.sql))
        if at is not None:
            out[at] = f.type
    for at in tz_at:
        out[at] = "timestamptz"
    for column, kind in table.items():
        what = f"{domain}.types.{column}"
        at = by_name.get(canonical(_ident(column, what)))
        if at is None:
            raise DomainConfigError(f"{what}: not one of {domain}.columns")
        if kind not in COLUMN_TYPES:
            raise DomainConfigError(f"{what}: must be one of {list(COLUMN_TYPES)}")
        if (kind == "timestamptz") != (at in tz_at):
            raise DomainConfigError(f"{what}: timestamptz columns are the `timestamptz` list")
        out[at] = kind
    return tuple(out)


def _aggregations(domain: str, specs: object, by_name: dict[str, int]) -> tuple[Aggregation, ...]:
    if not isinstance(specs, list):
        raise DomainConfigError(f"{domain}.aggregations must be a list of tables")
    out: list[Aggregation] = []
    for spec in specs:
        if not isinstance(spec, dict):
            raise DomainConfigError(f"{domain}.aggregations[] must be a table")
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise DomainConfigError(
                f"{domain}.aggregations[].name {name!r}: use lowercase letters, digits, _"
            )
        where = f"{domain}.aggregations.{name}"
        if any(a.name == name for a in out):
            raise DomainConfigError(f"{where}: two aggregations of that name")
        unknown = set(spec) - {"name", "kind", "by", "column", "top"}
        if unknown:
            raise DomainConfigError(f"{where} has unknown keys {sorted(unknown)}")
        kind = spec.get("kind")
        if kind not in AGGREGATION_KINDS:
            raise DomainConfigError(f"{where}.kind must be one of {', '.join(AGGREGATION_KINDS)}")

        def column_at(ident: object, what: str) -> int:
            at = by_name.get(canonical(_ident(ident, what)))
            if at is None:
                raise DomainConfigError(f"{what}: {ident!r} is not one of {domain}.columns")
            return at

        by_spec = spec.get("by", [])
        if not isinstance(by_spec, list):
            raise DomainConfigError(f"{where}.by must be a list of columns")
        by = tuple(column_at(c, f"{where}.by[]") for c in by_spec)
        if len(set(by)) != len(by) or len(by) > MAX_BY:
            raise DomainConfigError(f"{where}.by: at most {MAX_BY} columns, each once")
        if kind == "count" and not by:
            raise DomainConfigError(f"{where}: a count needs `by` (the job's totals count rows)")
        if kind in ("min_max", "distinct") and by:
            raise DomainConfigError(f"{where}: a {kind} takes no `by`")
        column = None
        if kind == "count":
            if "column" in spec:
                raise DomainConfigError(f"{where}: a count takes no `column`")
        else:
            if "column" not in spec:
                raise DomainConfigError(f"{where}: a {kind} needs `column`")
            column = column_at(spec["column"], f"{where}.column")
        top = spec.get("top", DEFAULT_TOP)
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
            raise DomainConfigError(f"{where}.top must be an integer from 1 to {MAX_TOP}")
        if "top" in spec and not by:
            raise DomainConfigError(f"{where}: `top` applies to grouped aggregations only")
        out.append(Aggregation(name, kind, by, column, top))
    return tuple(out)


def load_domains(path: str | Path | None = None) -> dict[str, Domain]:
    """Load the registry from `path`, or the packaged demo registry."""
    if path is None:
        text = resources.files("svc").joinpath("default_domains.toml").read_text("utf-8")
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise DomainConfigError(f"cannot read domain file {path}: {exc}") from exc
    return parse_domains(text)
