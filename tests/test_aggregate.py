"""The pure merge of per-chunk aggregates: order, bounds, number types, storage form."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import msgspec

from svc import protocol as p
from svc.core.aggregates.merging import (
    DomainMerger,
    add_numbers,
    decode_aggregations,
    encode_aggregations,
    fingerprint,
    sql_order,
)
from svc.core.aggregates.queries import aggregate_shape
from svc.core.domains import Aggregation, Domain


def _domain(*aggregations: Aggregation) -> Domain:
    return Domain("d", "T", "K", "rowid", ("K", "A", "B", "N"), aggregations=aggregations)


def test_sql_order_puts_null_first_and_never_compares_across_types() -> None:
    values = ["b", None, 2, b"x", 1.5, "a", Decimal("0.5"), dt.datetime(2025, 1, 1)]
    assert sorted(values, key=sql_order) == [
        None,
        Decimal("0.5"),
        1.5,
        2,
        "a",
        "b",
        b"x",
        dt.datetime(2025, 1, 1),
    ]


def test_sums_skip_nulls_and_keep_decimals_exact() -> None:
    assert add_numbers(None, None) is None
    assert add_numbers(None, 3) == 3
    assert add_numbers(Decimal("0.1"), Decimal("0.2")) == Decimal("0.3")
    assert add_numbers(Decimal("0.1"), 0.2) == Decimal("0.3")  # no float round-off
    assert add_numbers(1, 0.5) == 1.5


def test_groups_merge_across_chunks_and_rank_by_rows_then_key() -> None:
    d = _domain(Aggregation("a", "count", by=(1,), top=2))
    m = DomainMerger(d)
    m.add_grouped([("x", 3), ("y", 5), (None, 1)])  # rows of aggregate_sql: A, COUNT(*)
    m.add_grouped([("x", 2), ("z", 5), (None, 4)])
    got = m.result()["a"]
    assert isinstance(got, p.CountAggregate)
    # x, y, z and NULL all have 5 rows: the key breaks the tie (NULL first, as in SQL).
    assert [(g.key, g.count) for g in got.groups] == [([None], 5), (["x"], 5)]
    assert got.other == p.OtherGroups(groups=2, count=10)
    assert got.count == 20 and got.exact and got.by == ["A"]


def test_every_aggregation_rolls_up_from_the_one_grouped_query() -> None:
    d = _domain(
        Aggregation("by_a", "count", by=(1,)),
        Aggregation("n_by_b", "sum", by=(2,), column=3),
        Aggregation("n", "sum", column=3),
        Aggregation("span", "min_max", column=2),
        Aggregation("a_span", "min_max", column=1),
    )
    shape = aggregate_shape(d)
    assert shape is not None
    assert (shape.groups, shape.sums, shape.extremes) == ((1, 2), (3,), (2, 1))
    m = DomainMerger(d)
    # A, B, COUNT(*), SUM(N), MIN(B), MAX(B), MIN(A), MAX(A): one chunk, then another
    m.add_grouped(
        [
            ("a1", "b1", 2, 10, "b1", "b1", "a1", "a1"),
            ("a2", "b1", 1, None, "b1", "b1", "a2", "a2"),
        ]
    )
    m.add_grouped([("a1", "b2", 4, 5, "b2", "b2", "a1", "a1")])
    got = m.result()
    assert list(got) == ["by_a", "n_by_b", "n", "span", "a_span"]
    assert got["by_a"] == p.CountAggregate(["A"], 7, [p.Group(["a1"], 6), p.Group(["a2"], 1)], None)
    assert got["n_by_b"] == p.SumAggregate(
        "N", ["B"], 15, 7, [p.Group(["b2"], 4, 5), p.Group(["b1"], 3, 10)], None
    )
    assert got["n"] == p.SumAggregate("N", [], 15, 7, [], None)
    assert got["span"] == p.MinMaxAggregate("B", "b1", "b2")
    assert got["a_span"] == p.MinMaxAggregate("A", "a1", "a2")


def test_tracked_groups_are_bounded_and_totals_stay_exact() -> None:
    rng = random.Random(4)
    d = _domain(Aggregation("a", "sum", by=(1, 2), column=3, top=3))
    m = DomainMerger(d, max_groups=100)
    rows_total, sum_total = 0, 0
    for _ in range(30):  # 30 chunks of 40 groups of up to 3,000 distinct keys
        chunk = []
        for _ in range(40):
            key, n, s = rng.randrange(3000), rng.randrange(1, 9), rng.randrange(100)
            chunk.append((key % 7, key, n, s))
            rows_total, sum_total = rows_total + n, sum_total + s
        m.add_grouped(chunk)
        assert len(m.groups[0][0].groups) <= 100
    got = m.result()["a"]
    assert isinstance(got, p.SumAggregate)
    assert not got.exact and len(got.groups) == 3 and got.other is not None
    assert got.count == rows_total == sum(g.count for g in got.groups) + got.other.count
    assert got.sum == sum_total == sum(g.sum for g in got.groups) + got.other.sum


def test_min_max_ignores_nulls_and_chunks_without_rows() -> None:
    d = _domain(Aggregation("a", "min_max", column=1))
    m = DomainMerger(d)
    m.add_grouped([(0, None, None)])  # COUNT(*), MIN(A), MAX(A) of a chunk without rows
    m.add_grouped([(3, "2025-03-01", "2025-04-01")])
    m.add_grouped([(2, "2025-01-05", "2025-02-01")])
    assert m.result()["a"] == p.MinMaxAggregate("A", "2025-01-05", "2025-04-01")
    empty = DomainMerger(d)
    empty.add_grouped([(0, None, None)])
    assert empty.result()["a"] == p.MinMaxAggregate("A", None, None)


def test_distinct_counts_values_once_across_chunks() -> None:
    d = _domain(Aggregation("a", "distinct", column=2))
    assert aggregate_shape(d) is None  # no grouped query: only SELECT DISTINCT per chunk
    m = DomainMerger(d)
    m.add_distinct("a", [("x",), ("y",), (1,), (2.5,)])
    # -1 and -2: Python's hash(-1) == hash(-2); 1.0 is 1; Decimal 2.5 is 2.5
    m.add_distinct("a", [("y",), ("z",), (1.0,), (Decimal("2.5"),), (-1,), (-2,)])
    assert m.result()["a"] == p.DistinctAggregate("B", 7)  # x y z 1 2.5 -1 -2


def test_fingerprints_follow_sql_equality() -> None:
    assert fingerprint(1) == fingerprint(1.0) == fingerprint(Decimal("1.000"))
    assert fingerprint(-1) != fingerprint(-2)
    assert fingerprint(2**70) != fingerprint(2**70 + 1)
    assert fingerprint("1") != fingerprint(1)
    many = {fingerprint(f"ML{i:08X}") for i in range(200_000)}
    assert len(many) == 200_000


def test_stored_form_reads_back_the_same_json() -> None:
    aggregations: dict[str, p.Aggregate] = {
        "s": p.SumAggregate(
            "N", ["A"], Decimal("12.50"), 3, [p.Group(["x"], 3, Decimal("12.50"))], None
        ),
        "f": p.SumAggregate("N", [], 0.1 + 0.2, 2, [], None),
        "m": p.MinMaxAggregate("A", "2025-01-01T00:00:00", None),
        "d": p.DistinctAggregate("B", 5),
        "c": p.CountAggregate(["A"], 4, [p.Group([None], 4)], p.OtherGroups(0, 0), exact=False),
    }
    blob = encode_aggregations(aggregations)
    back = decode_aggregations(blob)
    assert encode_aggregations(back) == blob
    assert msgspec.json.decode(blob)["f"]["sum"] == 0.30000000000000004
