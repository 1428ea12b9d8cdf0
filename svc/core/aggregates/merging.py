"""Declared aggregations: per-chunk results merged into one small outcome (pure).

The database computes a domain's aggregations per chunk of ≤1000 CIDs: one grouped query
for all its counts, sums and min/max (`queries.aggregate_sql`, grouped by all their `by`
columns together), one query per distinct count (`queries.distinct_sql`). A
`DomainMerger` rolls each aggregation up from those rows, folds the chunks in any order,
and `result()` gives the wire structs. What is held while merging is bounded, whatever
the job:

- counts and sums by group: at most `MAX_TRACKED_GROUPS` groups. Past that (a `by` column
  of very high cardinality, e.g. a serial number), the smaller half is folded into the
  "other" bucket and the outcome says ``exact: false``: the totals (`count`, `sum`) stay
  exact, but a folded group that comes back is counted afresh, so the listed groups and
  their counts may be short. Only `top` groups (domain file, default 20) are sent.
- distinct counts: 8 bytes per distinct value per chunk (a 64-bit fingerprint of each
  value, kept in arrays; docs/benchmarks.md#sizes-and-encoding-costs), counted once at the end. Two
  values count as one only if their fingerprints collide (chance ~n²/2⁶⁵: 1e-8 for a
  million).
- min and max: two values.
"""

from __future__ import annotations

import datetime as dt
import decimal
from array import array
from typing import Any

import msgspec

from svc import protocol as p
from svc.core.aggregates.queries import aggregate_shape
from svc.core.domains import Aggregation, Domain

MAX_TRACKED_GROUPS = 100_000
_BUCKETS = 64  # distinct fingerprints are counted bucket by bucket: small temporary sets

Row = tuple[Any, ...]


def sql_order(value: Any) -> tuple[int, int, Any]:
    """A sort key that orders like SQL: NULL first, then numbers, text, bytes, dates.

    Values of different types never meet in Python's comparison (which would raise). NaN
    (a BINARY_DOUBLE's) sorts above every number, as Oracle orders it: MIN and MAX merged
    from chunks in any order give what one query over all the rows gives."""
    if value is None:
        return (0, 0, 0)
    if isinstance(value, (int, float, decimal.Decimal)):
        return (1, 1, 0) if value != value else (1, 0, value)  # only NaN differs from itself
    if isinstance(value, str):
        return (2, 0, value)
    if isinstance(value, bytes):
        return (3, 0, value)
    if isinstance(value, dt.datetime):
        return (4, 0, value.timestamp() if value.tzinfo else value.isoformat())
    return (5, 0, str(value))


# Exact addition: NUMBER holds up to 40 digits, and magnitudes from 1e-130 to 1e126;
# the default context's 28 digits would round, and make a sum depend on the chunks' order.
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[]
)


def add_numbers(a: Any, b: Any) -> Any:
    """SQL's SUM merge: NULL is no value; an exact decimal stays exact, to the last digit."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        a, b = (decimal.Decimal(repr(x)) if isinstance(x, float) else x for x in (a, b))
        return _EXACT.add(a, b)
    return a + b


_NAN = float("nan")  # one NaN object: a tuple holding it equals (and hashes like) itself


def group_key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A group's key as merged: every NaN the same one, so a NaN group (GROUP BY puts a
    BINARY_DOUBLE's NaNs in one group) is one group across chunks, not one per chunk."""
    if float in map(type, values):
        return tuple(_NAN if type(v) is float and v != v else v for v in values)
    return values


class _Groups:
    """count and sum: [rows, sum] per group key, bounded by MAX_TRACKED_GROUPS."""

    def __init__(self, aggregation: Aggregation, domain: Domain, max_groups: int) -> None:
        self.aggregation = aggregation
        self.domain = domain
        self.max_groups = max_groups
        self.groups: dict[tuple[Any, ...], list[Any]] = {}
        # groups, rows and sum folded into "other" while merging (past max_groups)
        self.folded_groups = 0
        self.folded_rows = 0
        self.folded_sum: Any = None
        self.exact = True

    def add(self, key: tuple[Any, ...], count: int, total: Any) -> None:
        known = self.groups.get(key)
        if known is None:  # a new group, or a NaN key (never equal to a NaN seen before)
            key = group_key(key)
            known = self.groups.get(key)
        if known is None:
            self.groups[key] = [int(count), total]
        else:
            known[0] += int(count)
            known[1] = add_numbers(known[1], total)

    def bound(self) -> None:
        """Called after each chunk: keep the tracked groups under the limit."""
        if len(self.groups) > self.max_groups:
            self._fold(self.max_groups // 2)

    def _fold(self, keep: int) -> None:
        ranked = self._ranked()
        for key, (count, total) in ranked[keep:]:
            self.folded_groups += 1
            self.folded_rows += count
            self.folded_sum = add_numbers(self.folded_sum, total)
            del self.groups[key]
        self.exact = False

    def _ranked(self) -> list[tuple[tuple[Any, ...], list[Any]]]:
        return sorted(
            self.groups.items(), key=lambda kv: (-kv[1][0], [sql_order(v) for v in kv[0]])
        )

    def result(self) -> p.CountAggregate | p.SumAggregate:
        agg, ranked = self.aggregation, self._ranked()
        top, rest = ranked[: agg.top], ranked[agg.top :]
        is_sum = agg.kind == "sum"
        groups = [p.Group(list(k), c, s if is_sum else None) for k, (c, s) in top]
        other = None
        if rest or self.folded_groups:
            total = self.folded_sum
            for _, (_, s) in rest:
                total = add_numbers(total, s)
            other = p.OtherGroups(
                len(rest) + self.folded_groups,
                sum(c for _, (c, _) in rest) + self.folded_rows,
                total if is_sum else None,
            )
        rows = sum(c for c, _ in self.groups.values()) + self.folded_rows
        by = [self.domain.columns[at] for at in agg.by]
        if not is_sum:
            return p.CountAggregate(by, rows, groups, other, self.exact)
        assert agg.column is not None
        total = self.folded_sum
        for _, s in self.groups.values():
            total = add_numbers(total, s)
        if not agg.by:  # one group, of every row: its sum is the answer
            groups, other = [], None
        return p.SumAggregate(
            self.domain.columns[agg.column], by, total, rows, groups, other, self.exact
        )


class _MinMax:
    def __init__(self, aggregation: Aggregation, domain: Domain) -> None:
        assert aggregation.column is not None
        self.column = domain.columns[aggregation.column]
        self.low: Any = None
        self.high: Any = None

    def add(self, low: Any, high: Any) -> None:
        if low is not None and (self.low is None or sql_order(low) < sql_order(self.low)):
            self.low = low
        if high is not None and (self.high is None or sql_order(high) > sql_order(self.high)):
            self.high = high

    def result(self) -> p.MinMaxAggregate:
        return p.MinMaxAggregate(self.column, self.low, self.high)


_fingerprint_encoder = msgspec.msgpack.Encoder()


def fingerprint(value: Any) -> int:
    """A 64-bit fingerprint of a value; values SQL calls equal (1 and 1.0) share one."""
    if isinstance(value, str):
        return hash(value)  # SipHash: 64 bits on 64-bit builds, keyed per process
    if isinstance(value, float) and value != value:
        value = _NAN  # every NaN bit pattern (sign, payload) alike
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            value = int(value)
        elif decimal.Decimal(float(value)) == value:  # 2.5 is the float 2.5
            value = float(value)
        else:
            value = ("decimal", str(_EXACT.normalize(value)))  # all its digits
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        value = ("int", str(value))  # msgpack holds 64-bit integers only
    try:
        packed = _fingerprint_encoder.encode(value)
    except (TypeError, OverflowError):
        packed = repr(value).encode()
    return hash(b"\x00" + packed)


class _Distinct:
    def __init__(self, aggregation: Aggregation, domain: Domain) -> None:
        assert aggregation.column is not None
        self.column = domain.columns[aggregation.column]
        self.buckets = [array("q") for _ in range(_BUCKETS)]

    def add(self, rows: list[Row]) -> None:
        self.add_values([value for (value,) in rows])

    def add_values(self, values: list[Any]) -> None:
        buckets = self.buckets
        for value in values:
            h = fingerprint(value)
            buckets[h % _BUCKETS].append(h)

    def result(self) -> p.DistinctAggregate:
        return p.DistinctAggregate(self.column, sum(len(set(b)) for b in self.buckets))


class DomainMerger:
    """A domain's aggregations over a job: `add_grouped` each chunk's rows of
    `queries.aggregate_sql`, `add_distinct` each chunk's rows of `queries.distinct_sql` (per
    distinct aggregation, by name), in any order; then `result()`."""

    def __init__(self, domain: Domain, max_groups: int | None = None) -> None:
        limit = max_groups or MAX_TRACKED_GROUPS
        shape = aggregate_shape(domain)
        self.groups: list[tuple[_Groups, list[int], int | None]] = []
        self.extremes: list[tuple[_MinMax, int]] = []
        self.distinct: dict[str, _Distinct] = {}
        self.order: list[tuple[str, _Groups | _MinMax | _Distinct]] = []
        at: dict[int, int] = {}
        sums: dict[int, int] = {}
        lows: dict[int, int] = {}
        if shape is not None:
            at = {c: i for i, c in enumerate(shape.groups)}
            self.count_at = len(shape.groups)
            sums = {c: self.count_at + 1 + i for i, c in enumerate(shape.sums)}
            first = self.count_at + 1 + len(shape.sums)
            lows = {c: first + 2 * i for i, c in enumerate(shape.extremes)}
        for agg in domain.aggregations:
            part: _Groups | _MinMax | _Distinct
            if agg.kind in ("count", "sum"):
                part = _Groups(agg, domain, limit)
                total = sums[agg.column] if agg.kind == "sum" and agg.column is not None else None
                self.groups.append((part, [at[c] for c in agg.by], total))
            elif agg.kind == "min_max":
                assert agg.column is not None
                part = _MinMax(agg, domain)
                self.extremes.append((part, lows[agg.column]))
            else:
                part = self.distinct[agg.name] = _Distinct(agg, domain)
            self.order.append((agg.name, part))

    def add_grouped(self, rows: list[Row]) -> None:
        count_at = self.count_at
        for row in rows:
            count = row[count_at]
            for groups, key_at, sum_at in self.groups:
                key = tuple(row[i] for i in key_at)
                groups.add(key, count, None if sum_at is None else row[sum_at])
            for extremes, low_at in self.extremes:
                extremes.add(row[low_at], row[low_at + 1])
        for groups, _, _ in self.groups:
            groups.bound()

    def add_distinct(self, name: str, rows: list[Row]) -> None:
        self.distinct[name].add(rows)

    def add_distinct_values(self, name: str, values: list[Any]) -> None:
        """`add_distinct` of bare values (a folded page's, `folding.AggregationFold`)."""
        self.distinct[name].add_values(values)

    def result(self) -> dict[str, p.Aggregate]:
        return {name: part.result() for name, part in self.order}


_aggregations_decoder = msgspec.json.Decoder(dict[str, p.Aggregate], float_hook=decimal.Decimal)


def encode_aggregations(aggregations: dict[str, p.Aggregate]) -> bytes:
    """A domain's aggregates as stored with the job."""
    return p.encode(aggregations)


def decode_aggregations(blob: bytes) -> dict[str, p.Aggregate]:
    """Stored aggregates. JSON floats come back as decimals: sent again, they read the
    same digits (an exact Oracle NUMBER stays exact)."""
    return _aggregations_decoder.decode(blob)
