"""The pure merge of per-chunk aggregates: order, bounds, number types, storage form."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import msgspec

from svc import protocol as p
from svc.aggregate import (
    add_numbers,
    decode_aggregations,
    encode_aggregations,
    fingerprint,
    merger,
    sql_order,
)
from svc.domains import Aggregation, Domain

DOMAIN = Domain("d", "T", "K", "rowid", ("K", "A", "B", "N"))


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
    m = merger(Aggregation("a", "count", by=(1,), top=2), DOMAIN)
    m.add([("x", 3), ("y", 5), (None, 1)])
    m.add([("x", 2), ("z", 5), (None, 4)])
    got = m.result()
    assert isinstance(got, p.CountAggregate)
    # x, y, z and NULL all have 5 rows: the key breaks the tie (NULL first, as in SQL).
    assert [(g.key, g.count) for g in got.groups] == [([None], 5), (["x"], 5)]
    assert got.other == p.OtherGroups(groups=2, count=10)
    assert got.count == 20 and got.exact and got.by == ["A"]


def test_tracked_groups_are_bounded_and_totals_stay_exact() -> None:
    rng = random.Random(4)
    m = merger(Aggregation("a", "sum", by=(1, 2), column=3, top=3), DOMAIN, max_groups=100)
    rows_total, sum_total = 0, 0
    for _ in range(30):  # 30 chunks of 40 groups of up to 3,000 distinct keys
        chunk = []
        for _ in range(40):
            key, n, s = rng.randrange(3000), rng.randrange(1, 9), rng.randrange(100)
            chunk.append((key % 7, key, n, s))
            rows_total, sum_total = rows_total + n, sum_total + s
        m.add(chunk)
        assert len(m.groups) <= 100  # type: ignore[union-attr]
    got = m.result()
    assert isinstance(got, p.SumAggregate)
    assert not got.exact and len(got.groups) == 3 and got.other is not None
    assert got.count == rows_total == sum(g.count for g in got.groups) + got.other.count
    assert got.sum == sum_total == sum(g.sum for g in got.groups) + got.other.sum


def test_min_max_ignores_nulls_and_chunks_without_rows() -> None:
    m = merger(Aggregation("a", "min_max", column=1), DOMAIN)
    m.add([(None, None)])
    m.add([("2025-03-01", "2025-04-01")])
    m.add([("2025-01-05", "2025-02-01")])
    assert m.result() == p.MinMaxAggregate("A", "2025-01-05", "2025-04-01")
    empty = merger(Aggregation("a", "min_max", column=1), DOMAIN)
    empty.add([(None, None)])
    assert empty.result() == p.MinMaxAggregate("A", None, None)


def test_distinct_counts_values_once_across_chunks() -> None:
    m = merger(Aggregation("a", "distinct", column=2), DOMAIN)
    m.add([("x",), ("y",), (1,), (2.5,)])
    m.add([("y",), ("z",), (1.0,), (Decimal("2.5"),), (-1,), (-2,)])  # -1, -2: hash(-1) == -2
    assert m.result() == p.DistinctAggregate("B", 7)  # x y z 1 2.5 -1 -2


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
