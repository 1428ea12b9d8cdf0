"""Range and If-Range evaluation for export downloads (svc/exports/ranges.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svc.errors import RangeNotSatisfiable
from svc.exports.ranges import requested_range

ETAG = '"abc"'


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=10-", 100, (10, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-1000", 100, (0, 99)),  # a suffix longer than the file: all of it
        ("bytes=90-1000", 100, (90, 99)),  # clipped to the end
        ("bytes=99-99", 100, (99, 99)),
        ("BYTES = 5-6", 100, (5, 6)),  # unit case and spaces around the unit
    ],
)
def test_single_ranges(header: str, size: int, span: tuple[int, int]) -> None:
    assert requested_range(header, None, ETAG, size) == span


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-9,20-29",  # several ranges: the whole file (RFC 9110 lets a server ignore Range)
        "items=0-9",
        "bytes=9-0",  # first > last: invalid, ignored
        "bytes=-",
        "bytes=",
        "bytes",
        "bytes=a-b",
        "bytes=0x10-",
        "bytes=²-",  # a Unicode digit is not a digit here
        "bytes=1234567890123456-",  # over 15 digits
        "bytes=0-" + "9" * 300,  # over the header bound
    ],
)
def test_what_is_not_one_valid_range_gets_the_whole_file(header: str) -> None:
    assert requested_range(header, None, ETAG, 100) is None


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)]
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as err:
        requested_range(header, None, ETAG, size)
    assert err.value.size == size and err.value.status == 416


def test_if_range_needs_the_exact_strong_etag() -> None:
    assert requested_range("bytes=5-", ETAG, ETAG, 100) == (5, 99)
    assert requested_range("bytes=5-", '"stale"', ETAG, 100) is None
    assert requested_range("bytes=5-", "W/" + ETAG, ETAG, 100) is None  # weak never matches
    assert requested_range("bytes=5-", "Tue, 01 Dec 2026 00:00:00 GMT", ETAG, 100) is None
    assert requested_range(None, ETAG, ETAG, 100) is None


@given(st.text(max_size=300), st.integers(0, 10**6))
def test_any_header_gives_a_span_inside_the_file_or_a_clear_answer(header: str, size: int) -> None:
    try:
        span = requested_range(header, None, ETAG, size)
    except RangeNotSatisfiable:
        return
    if span is not None:
        first, last = span
        assert 0 <= first <= last < size
