"""Oracle's values merged and written as Oracle computes them: NUMBER sums to the last of
their ~40 digits in any chunk order, BINARY_DOUBLE NaN as one group and above every number,
and RAW/BLOB cells whose base64 a spreadsheet would run as a formula (pure)."""

from __future__ import annotations

import itertools
import math
import random
from decimal import Context, Decimal
from typing import Any

import pytest

from svc import protocol as p
from svc.core.aggregates.merging import (
    DomainMerger,
    add_numbers,
    decode_aggregations,
    encode_aggregations,
    fingerprint,
    sql_order,
)
from svc.core.csv_cells import cell, encode
from svc.core.domains import Aggregation, Domain

NAN = float("nan")
WIDE = Context(prec=400)  # exact for the values of these tests


def _domain(*aggregations: Aggregation) -> Domain:
    return Domain("d", "T", "K", "rowid", ("K", "A", "B", "N"), aggregations=aggregations)


# --- NUMBER sums: exact at any width, in any order -----------------------------------------


def test_the_issue_sum_keeps_every_digit() -> None:
    got = add_numbers(Decimal("123456789012345678.000000000001"), Decimal("1"))
    assert got == Decimal("123456789012345679.000000000001")
    assert str(got) == "123456789012345679.000000000001"
    assert add_numbers(Decimal("1"), 10**30) == Decimal(10**30 + 1)  # int + Decimal too
    assert add_numbers(Decimal("9.999999999999999999999999999999999999E+125"), Decimal("1E-129"))


def test_number_38_12_sums_are_the_same_in_every_chunk_order() -> None:
    """NUMBER(38,12) chunk sums merged in all 720 orders: one exact answer, the sum of the
    integers scaled by 10^-12 (what Oracle's one SUM over all rows gives)."""
    rng = random.Random(25)
    units = [rng.randrange(-(10**38) + 1, 10**38) for _ in range(6)]
    chunks = [WIDE.scaleb(Decimal(u), -12) for u in units]
    exact = WIDE.scaleb(Decimal(sum(units)), -12)
    results = set()
    for order in itertools.permutations(chunks):
        total: Any = None
        for value in order:
            total = add_numbers(total, value)
        results.add(total)
    assert results == {exact}


def test_a_merged_sum_aggregate_stores_and_reads_back_every_digit() -> None:
    d = _domain(Aggregation("s", "sum", column=3, by=(1,)))
    m = DomainMerger(d)
    m.add_grouped([("x", 1, Decimal("12345678901234567890123456.123456789012"))])
    m.add_grouped([("x", 2, Decimal("0.000000000001")), ("y", 1, Decimal("1E+125"))])
    got = m.result()["s"]
    assert isinstance(got, p.SumAggregate)
    assert got.sum == WIDE.add(
        Decimal("1E+125"), Decimal("12345678901234567890123456.123456789013")
    )
    stored = decode_aggregations(encode_aggregations({"s": got}))["s"]
    assert isinstance(stored, p.SumAggregate) and stored.sum == got.sum
    assert [g.sum for g in stored.groups] == [
        Decimal("12345678901234567890123456.123456789013"),
        Decimal("1E+125"),
    ]


def test_distinct_decimals_differing_past_28_digits_count_twice() -> None:
    a, b = Decimal("1.000000000000000000000000000001"), Decimal("1.000000000000000000000000000002")
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(Decimal("2.50")) == fingerprint(2.5)


# --- BINARY_DOUBLE NaN --------------------------------------------------------------------


def test_a_nan_group_is_one_group_across_chunks() -> None:
    d = _domain(Aggregation("c", "count", by=(3,)), Aggregation("s", "sum", column=3, by=(1,)))
    m = DomainMerger(d)
    # rows of aggregate_sql: N (group), A (group), COUNT(*), SUM(N); NaNs of distinct objects,
    # as the driver builds one per row
    for chunk in range(3):
        m.add_grouped([(float("nan"), "a", 2, float("nan")), (1.5, "a", 1, 1.5)])
        m.add_grouped([(-float("nan"), "b", chunk + 1, -float("nan"))])
    got = m.result()["c"]
    assert isinstance(got, p.CountAggregate)
    assert len(got.groups) == 2 and got.count == 3 * 3 + 6
    nan_group = next(g for g in got.groups if g.key[0] != g.key[0])
    assert nan_group.count == 3 * 2 + 6 and got.groups[0] is nan_group  # most rows first
    assert got.other is None and got.exact


@pytest.mark.parametrize("seed", range(4))
def test_nan_is_above_every_number_for_min_and_max_in_any_chunk_order(seed: int) -> None:
    """Oracle: NaN is greater than any number, infinity included; MIN takes a number over NaN
    and MAX takes NaN. The merge of per-chunk MIN/MAX rows agrees in any order."""
    chunks = [(-math.inf, 3.0), (NAN, NAN), (0.5, NAN), (-2.0, math.inf)]
    random.Random(seed).shuffle(chunks)
    m = DomainMerger(_domain(Aggregation("m", "min_max", column=3)))
    for low, high in chunks:
        m.add_grouped([(1, low, high)])  # COUNT(*), MIN(N), MAX(N)
    got = m.result()["m"]
    assert isinstance(got, p.MinMaxAggregate)
    assert got.min == -math.inf and math.isnan(got.max)
    assert sorted([NAN, math.inf, 1, Decimal("-1E+125"), None], key=sql_order)[1:4] == [
        Decimal("-1E+125"),
        1,
        math.inf,
    ]


def test_nan_is_one_distinct_value() -> None:
    m = DomainMerger(_domain(Aggregation("n", "distinct", column=3)))
    m.add_distinct("n", [(float("nan"),), (1.0,)])
    m.add_distinct("n", [(-float("nan"),), (1,)])
    got = m.result()["n"]
    assert isinstance(got, p.DistinctAggregate) and got.count == 2


# --- RAW and BLOB cells in spreadsheet CSV --------------------------------------------------


@pytest.mark.parametrize("first", [0xF8, 0xF9, 0xFA, 0xFB])
def test_bytes_whose_base64_starts_with_plus_are_defused(first: int) -> None:
    raw = bytes([first, 0x00, 0x01]) + bytes(13)  # a SYS_GUID-sized RAW(16)
    text = cell(raw)
    assert text.startswith("+")  # what the JSON record carries
    assert cell(raw, spreadsheet_safe=True) == "'" + text
    doc = encode(["K", "GUID"], [("a", raw)], spreadsheet_safe=True)
    assert doc.splitlines()[1] == "a,'" + text


def test_other_bytes_and_numbers_are_left_alone() -> None:
    assert cell(b"\xf7\xff", spreadsheet_safe=True) == "9/8="  # starts with 9
    assert cell(b"\x00\xff\xfe", spreadsheet_safe=True) == "AP/+"
    assert cell(Decimal("-5.5"), spreadsheet_safe=True) == "-5.5"
    assert cell(-math.inf, spreadsheet_safe=True) == ""
