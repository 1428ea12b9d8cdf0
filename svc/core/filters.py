"""Job filters (`where`): checked against the domain file, put in one canonical form (pure).

A job may narrow each of its domains when it is created:

    "where": {"history": {"EVENTNAME": ["Hold", "Release"],
                          "TXNDATE": {"from": "2025-01-01", "to": "2025-02-01"}}}

Only the columns a domain declares under `[domains.NAME.filters]` may be named, each with
the kinds it declares: a list is `in` (any of the values), an object is `range` (`from`
inclusive, `to` exclusive, either may be left out). Every condition must hold. Values are
checked against the column's type: strings for `text`, numbers for `number`, ISO 8601
strings for `timestamp` and `timestamptz`.

The canonical form is what the job spec stores and every replica applies: domains in the
job's order, columns by name, `in` values de-duplicated and sorted, timestamps as
``YYYY-MM-DDTHH:MM:SS[.ffffff]`` in UTC (an offset is converted; a value without one is
taken as UTC).

Values every source can compare exactly are accepted, no others (a job created with a value
its source cannot bind would fail on every page for its whole life):

- numbers: finite, integers within 64 bits, and 0 or of a magnitude Oracle's NUMBER holds
  (1e-130 to below 1e126; python-oracledb refuses others with DPY-4003);
- timestamps: from 1582-10-15 (Oracle counts earlier dates in the Julian calendar, and
  moves those of the 1582 gap to October 15) to 9999-12-31 in UTC, at most microseconds
  (further digits must be zeros: a comparison cut to microseconds would be off by a row).

A job's filter never changes, so a `since` token, which names its job, can never apply to
another filter. The SQL is rendered by `svc.core.sql.where.filter_sql`, from
identifiers of the domain file only; the values are binds.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

import msgspec

from svc.core.domains import Domain, Filterable
from svc.errors import InvalidFilter, UnknownDomain
from svc.protocol import Condition, FilterValue, Range, Where

MAX_WHERE_VALUES = 4000  # values of all conditions of a job together
MAX_TIMESTAMP_CHARS = 64
_INT_LIMIT = 2**63  # SQLite and Oracle both take 64-bit integers as binds
# Oracle NUMBER's magnitudes: python-oracledb raises DPY-4003 outside them (its encode_number
# in impl/base/encoders.pyx: more than 126 digits before the point, or 129 zeros after it)
NUMBER_MAX = 1e126  # exclusive
NUMBER_MIN = 1e-130  # inclusive, for a number other than 0
GREGORIAN_START = dt.datetime(1582, 10, 15)  # Oracle's calendar is Julian before it
_FRACTION = re.compile(r"[.,]([0-9]+)")

__all__ = ["MAX_WHERE_VALUES", "canonical_timestamp", "explain_wire_error", "normalize_where"]


class TimestampOutOfRange(ValueError):
    """An ISO 8601 time no database column compares exactly; the message says why."""


def canonical_timestamp(text: str) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` (plus ``.ffffff`` when not whole seconds), in UTC.

    Raises ValueError for anything `datetime.fromisoformat` does not read, for a time
    outside years 1 to 9999 once in UTC, and for a fraction finer than microseconds (which
    `fromisoformat` would cut off) unless its further digits are zeros.
    """
    if len(text) > MAX_TIMESTAMP_CHARS:
        raise ValueError("too long")
    value = dt.datetime.fromisoformat(text)
    if any(f[6:].strip("0") for f in _FRACTION.findall(text)):
        raise TimestampOutOfRange("finer than microseconds")
    if value.tzinfo is not None:
        try:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+00:01 is before year 1 in UTC
            raise TimestampOutOfRange("outside years 1 to 9999 in UTC") from None
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")


def _name(value: str) -> str:
    """A client's name, quoted and cut short for an error detail."""
    return repr(value[:64])


def refuse_other_domains(field: str, named: Iterable[str], job_domains: list[str]) -> None:
    """`UnknownDomain` when a job's `where` or `select` (`field`) names a domain outside it."""
    outside = [d for d in named if d not in job_domains]
    if outside:
        raise UnknownDomain(f"{field} names {_name(outside[0])}, which is not a domain of this job")


def _value(where: str, column: Filterable, value: FilterValue) -> FilterValue:
    kind = column.type
    if kind == "text":
        if not isinstance(value, str):
            raise InvalidFilter(f"{where}: a text column takes strings, not {value!r}")
        return value
    if kind == "number":
        if isinstance(value, str):
            raise InvalidFilter(f"{where}: a number column takes numbers, not {_name(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidFilter(f"{where}: numbers must be finite")
        if isinstance(value, int) and not -_INT_LIMIT < value < _INT_LIMIT:
            raise InvalidFilter(f"{where}: integers must fit in 64 bits")
        if value and not NUMBER_MIN <= abs(value) < NUMBER_MAX:
            raise InvalidFilter(
                f"{where}: {value!r} is outside the numbers a database column holds"
                " (0, or a magnitude from 1e-130 to below 1e126)"
            )
        return value
    if not isinstance(value, str):
        raise InvalidFilter(f"{where}: a {kind} column takes ISO 8601 strings, not {value!r}")
    try:
        text = canonical_timestamp(value)
    except TimestampOutOfRange as exc:
        raise InvalidFilter(f"{where}: {_name(value)} is {exc}") from None
    except ValueError:
        raise InvalidFilter(
            f"{where}: {_name(value)} is not an ISO 8601 date or time"
            " (e.g. 2025-01-31, 2025-01-31T08:00:00.250, 2025-01-31T08:00:00+02:00)"
        ) from None
    if dt.datetime.fromisoformat(text) < GREGORIAN_START:
        raise InvalidFilter(
            f"{where}: {_name(value)} is before 1582-10-15, where databases' calendars differ"
            " (Oracle's is Julian): leave the range end out instead"
        )
    return text


def _condition(where: str, column: Filterable, cond: Condition) -> tuple[Condition, int]:
    """The canonical condition and its number of values."""
    if isinstance(cond, Range):
        if "range" not in column.ops:
            raise InvalidFilter(f"{where} takes a list of values (in), not a range")
        if cond.from_ is None and cond.to is None:
            raise InvalidFilter(f'{where}: a range needs "from", "to" or both')
        lo = None if cond.from_ is None else _value(where, column, cond.from_)
        hi = None if cond.to is None else _value(where, column, cond.to)
        if lo is not None and hi is not None and not lo < hi:  # type: ignore[operator]
            raise InvalidFilter(f'{where}: the range is empty ("from" must be before "to")')
        return Range(lo, hi), 2
    if "in" not in column.ops:
        raise InvalidFilter(f'{where} takes a range {{"from": ..., "to": ...}}, not a list')
    values = {_value(where, column, v) for v in cond}
    return sorted(values), len(values)


def normalize_where(
    where: Where | None, domains: Mapping[str, Domain], job_domains: list[str]
) -> Where | None:
    """The canonical form of a job's `where` (None when it narrows nothing).

    Raises `UnknownDomain` for a domain outside the job, `InvalidFilter` for the rest.
    """
    if not where:
        return None
    refuse_other_domains("where", where, job_domains)
    out: Where = {}
    count = 0
    for name in job_domains:
        conditions = where.get(name)
        if not conditions:
            continue
        domain = domains[name]
        canonical: dict[str, Condition] = {}
        for column_name in sorted(conditions):
            column = domain.filterable(column_name)
            if column is None:
                allowed = ", ".join(f.name for f in domain.filters) or "none"
                raise InvalidFilter(
                    f"{name}.{column_name[:64]} is not filterable (filterable columns of"
                    f" {name}: {allowed})"
                )
            where_ = f"{name}.{column.name}"
            canonical[column.name], n = _condition(where_, column, conditions[column_name])
            count += n
        out[name] = canonical
    if count > MAX_WHERE_VALUES:
        raise InvalidFilter(f"a job's filters may hold at most {MAX_WHERE_VALUES} values")
    return out or None


def explain_wire_error(raw_where: object, fallback: str) -> str:
    """A detail naming the column, for a `where` the wire types refused.

    msgspec's messages show dict keys as ``[...]``; this finds the first column whose
    condition does not convert and says which it is. `raw_where` may hold JSON numbers as
    Decimals (decoded with ``float_hook=Decimal``), so one past a double's range is named.
    """
    if isinstance(raw_where, dict):
        for domain, conditions in raw_where.items():
            if not isinstance(conditions, dict):
                return f"where.{str(domain)[:64]} must be an object of column conditions"
            for column, cond in conditions.items():
                where = f"{str(domain)[:64]}.{str(column)[:64]}"
                values = list(cond.values()) if isinstance(cond, dict) else cond
                for v in values if isinstance(values, list) else ():
                    if isinstance(v, Decimal) and not math.isfinite(float(v)):
                        return f"{where}: {str(v)[:32]} is past a double's range (1.8e308)"
                try:
                    msgspec.convert(_floats(cond), Condition)
                except msgspec.ValidationError as exc:
                    return f"{where}: {exc}"
    return fallback


def _floats(cond: object) -> object:
    """A raw condition with its Decimal numbers as floats, as the wire decodes them."""
    if isinstance(cond, Decimal):
        return float(cond)
    if isinstance(cond, list):
        return [_floats(v) for v in cond]
    if isinstance(cond, dict):
        return {k: _floats(v) for k, v in cond.items()}
    return cond
