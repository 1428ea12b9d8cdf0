"""Filter values at the edges of what Oracle and SQLite can bind and compare: a job is either
refused with a 400 problem when it is created, or every value it holds binds (no job that
fails on every page for its whole life). Hypothesis drives numbers and timestamps to the
edges of both engines, through the same decoder and checks a request goes through."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svc.core.domains import load_domains
from svc.core.filters import (
    GREGORIAN_START,
    NUMBER_MAX,
    NUMBER_MIN,
    canonical_timestamp,
    normalize_where,
)
from svc.core.sql.dialects import ORACLE
from svc.core.sql.where import filter_binds
from svc.errors import InvalidFilter, TraceError
from svc.http.params import decode_job_request
from svc.protocol import Range, Where

DOMAINS = load_domains()
JOB = ["history", "materials"]


def _create(body: bytes) -> Where | None:
    """What POST /api/trace/job does with a body's `where`: decode, then check."""
    return normalize_where(decode_job_request(body).where, DOMAINS, JOB)


def _body(where: str) -> bytes:
    return b'{"container_ids": ["a"], "where": ' + where.encode() + b"}"


def _refused(body: bytes) -> TraceError:
    with pytest.raises(TraceError) as caught:
        _create(body)
    assert caught.value.status == 400, caught.value
    return caught.value


# --- numbers: Oracle's NUMBER range ------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["1e126", "-1e126", "1e300", "5e-324", "9.99e-131", "-9.99e-131", "1.7976931348623157e308"],
)
def test_numbers_outside_oracle_number_are_refused(number: str) -> None:
    for where in (f'{{"QTY": {{"from": {number}}}}}', f'{{"QTY": [{number}]}}'):
        error = _refused(_body(f'{{"history": {where}}}'))
        assert isinstance(error, InvalidFilter) and "history.QTY" in error.detail


@pytest.mark.parametrize(
    "number",
    [
        "0",
        "0.0",
        "-0.0",
        "1e-130",
        "-1e-130",
        "1e-129",
        "9.99999999999999e125",
        "9223372036854775807",
    ],
)
def test_numbers_at_the_edges_of_oracle_number_are_kept(number: str) -> None:
    where = _create(_body(f'{{"history": {{"QTY": [{number}]}}}}'))
    assert where is not None
    (value,) = where["history"]["QTY"]  # type: ignore[misc]
    assert value == msgspec.json.decode(number)
    assert filter_binds(DOMAINS["history"], ORACLE, where["history"])["f0_0"] == value


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ('{"history": {"QTY": [1e400]}}', ["history.QTY", "1E+400", "double"]),
        ('{"history": {"QTY": {"from": -1e400}}}', ["history.QTY", "-1E+400", "double"]),
        ('{"history": {"QTY": ' + "[" * 1000 + "]" * 1000 + "}}", ["where"]),
        ('{"history": {"EVENTNAME": ' + '{"a":' * 1000 + "1" + "}" * 1000 + "}}", ["where"]),
    ],
)
def test_bodies_that_broke_the_error_handler_are_400(where: str, words: list[str]) -> None:
    error = _refused(_body(where))
    assert isinstance(error, InvalidFilter)
    for word in words:
        assert word in error.detail, error.detail


# --- timestamps: UTC overflow, fractions, the Gregorian start ----------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0001-01-01T00:00:00+00:01", ["outside years 1 to 9999"]),
        ("9999-12-31T23:59:59-00:01", ["outside years 1 to 9999"]),
        ("2025-01-31T08:00:00.0000001", ["finer than microseconds"]),
        ("2025-01-31T08:00:00.1234567+02:00", ["finer than microseconds"]),
        ("1582-10-14T23:59:59", ["1582-10-15"]),
        ("1582-10-10", ["1582-10-15"]),  # in the gap: Oracle would read October 15
        ("1500-03-01", ["1582-10-15"]),  # a Julian date in Oracle, ten days off
        ("1582-10-15T00:30:00+01:00", ["1582-10-15"]),  # before it once in UTC
    ],
)
def test_timestamps_no_engine_compares_exactly_are_refused(value: str, words: list[str]) -> None:
    for where in ({"from": value}, {"to": value}):
        body = msgspec.json.encode(
            {"container_ids": ["a"], "where": {"history": {"TXNDATE": where}}}
        )
        error = _refused(body)
        assert "history.TXNDATE" in error.detail
        for word in words:
            assert word in error.detail, error.detail


def test_fraction_digits_past_microseconds_may_be_zeros_and_stay_exact() -> None:
    where = _create(
        _body(
            '{"history": {"TXNDATE": {"from": "2025-01-31T08:00:00.1234560000",'
            ' "to": "9999-12-31T23:59:59.999999"}}}'
        )
    )
    assert where == {
        "history": {"TXNDATE": Range("2025-01-31T08:00:00.123456", "9999-12-31T23:59:59.999999")}
    }
    binds = filter_binds(DOMAINS["history"], ORACLE, where["history"])
    assert binds == {"f0_lo": "20250131080000123456", "f0_hi": "99991231235959999999"}
    # Not an "empty range": the finer digits are refused before the ends are compared.
    error = _refused(
        _body(
            '{"history": {"TXNDATE": {"from": "2025-01-01T00:00:00.0000001",'
            ' "to": "2025-01-01T00:00:00.0000002"}}}'
        )
    )
    assert "finer than microseconds" in error.detail and "empty" not in error.detail


def test_the_gregorian_start_itself_is_kept() -> None:
    where = _create(_body('{"history": {"TXNDATE": {"from": "1582-10-15"}}}'))
    assert where == {"history": {"TXNDATE": Range("1582-10-15T00:00:00")}}
    assert filter_binds(DOMAINS["history"], ORACLE, where["history"]) == {
        "f0_lo": "15821015000000000000"
    }


# --- hypothesis: any number or timestamp at the edges is kept exactly or refused ---------

_EDGES = [0.0, NUMBER_MIN, NUMBER_MAX, 2.0**63, 1e-130 * (1 - 2**-52), 1e126 * (1 - 2**-53)]
_NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(min_value=1e-135, max_value=1e-125).map(repr),
    st.floats(min_value=1e120, max_value=1e130).map(repr),
    st.sampled_from(_EDGES).flatmap(lambda x: st.sampled_from([x, -x])).map(repr),
    st.integers(min_value=-(2**66), max_value=2**66).map(str),
    st.sampled_from(["1e400", "-1e400", "1e-400", "123456789012345678901234567890"]),
)


_exact = msgspec.json.Decoder(float_hook=Decimal)  # the client's number, past a double too


def _driver_encodes(value: float) -> bool:
    """python-oracledb's rule for binding a number as NUMBER (`encode_number`, from the
    text of the value): at most 40 digits, at most 126 before the decimal point and at
    most 129 zeros after it; else DPY-4003."""
    digits = Decimal(str(value))
    if digits == 0:
        return True
    point = digits.adjusted() + 1  # the driver's decimal_point_index
    return len(digits.normalize().as_tuple().digits) <= 40 and -129 <= point <= 126


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(number=_NUMBER_TEXT, as_range=st.booleans())
def test_a_number_filter_is_kept_as_oracle_binds_it_or_refused(number: str, as_range: bool) -> None:
    where = f'{{"from": {number}}}' if as_range else f"[{number}]"
    body = _body(f'{{"history": {{"QTY": {where}}}}}')
    parsed = _exact.decode(number.encode())
    try:
        kept = _create(body)
    except TraceError as exc:
        assert exc.status == 400 and isinstance(exc, InvalidFilter), exc
        refused_ints = isinstance(parsed, int) and not -(2**63) < parsed < 2**63
        assert (
            refused_ints or not math.isfinite(float(parsed)) or not _driver_encodes(float(parsed))
        )
        return
    assert kept is not None
    cond: Any = kept["history"]["QTY"]
    value = cond.from_ if as_range else cond[0]
    assert isinstance(value, (int, float)) and math.isfinite(value)
    assert value == 0 or NUMBER_MIN <= abs(value) < NUMBER_MAX
    assert _driver_encodes(value)  # python-oracledb binds it
    if isinstance(value, int):
        assert -(2**63) < value < 2**63
    assert value == msgspec.json.decode(number)  # the client's number, unchanged


_OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)


@st.composite
def _timestamp_text(draw: st.DrawFn) -> tuple[str, dt.datetime]:
    """ISO text of an instant anywhere in years 1-9999, with or without an offset, its
    fraction at times written with further digits; and the instant, naive in UTC (or
    the input itself when it is not representable so)."""
    value = draw(
        st.datetimes(
            min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
        )
    )
    zone = draw(st.none() | _OFFSETS)
    text = value.isoformat(timespec="microseconds")
    extra = draw(st.sampled_from(["", "0", "000", "1", "0005"]))
    text += extra
    if zone is not None:
        text += value.replace(tzinfo=zone).isoformat(timespec="microseconds")[26:]
    return text, value.replace(tzinfo=zone) if zone else value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=_timestamp_text())
def test_a_timestamp_filter_is_kept_exactly_or_refused(drawn: tuple[str, dt.datetime]) -> None:
    text, instant = drawn
    body = msgspec.json.encode(
        {"container_ids": ["a"], "where": {"history": {"TXNDATE": {"to": text}}}}
    )
    try:
        kept = _create(body)
    except TraceError as exc:
        assert exc.status == 400 and isinstance(exc, InvalidFilter), exc
        return
    assert kept is not None
    cond: Any = kept["history"]["TXNDATE"]
    canonical = dt.datetime.fromisoformat(cond.to)
    utc = instant.astimezone(dt.UTC).replace(tzinfo=None) if instant.tzinfo else instant
    assert canonical == utc  # the very instant: no digit cut, no zone lost
    assert canonical >= GREGORIAN_START
    digits = filter_binds(DOMAINS["history"], ORACLE, kept["history"])["f0_hi"]
    assert isinstance(digits, str) and len(digits) == 20 and digits.isdigit()
    assert dt.datetime.strptime(digits, "%Y%m%d%H%M%S%f") == canonical  # Oracle's mask reads it


@settings(max_examples=300, deadline=None)
@given(a=_timestamp_text(), b=_timestamp_text())
def test_canonical_timestamps_order_as_text_like_their_instants(
    a: tuple[str, dt.datetime], b: tuple[str, dt.datetime]
) -> None:
    """SQLite compares the canonical ISO text (the demo's TXNDATE is such text): two kept
    timestamps must order as text exactly as their instants do."""
    kept = []
    for text, _ in (a, b):
        try:
            kept.append(canonical_timestamp(text))
        except ValueError:
            return
    x, y = kept
    as_instants = dt.datetime.fromisoformat(x) < dt.datetime.fromisoformat(y)
    assert (x < y) == as_instants
