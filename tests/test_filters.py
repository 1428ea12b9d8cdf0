"""svc.core.filters: a job's `where` checked against the domain file and made canonical (pure)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from svc import protocol as p
from svc.core.domains import load_domains
from svc.core.filters import (
    MAX_WHERE_VALUES,
    canonical_timestamp,
    explain_wire_error,
    normalize_where,
)
from svc.errors import InvalidFilter, UnknownDomain
from svc.protocol import Range

DOMAINS = load_domains()
JOB = ["history", "materials"]


def _where(raw: dict[str, Any]) -> p.Where:
    """A `where` as the wire decodes it."""
    body = msgspec.json.encode({"container_ids": ["a"], "where": raw})
    where = p.job_request_decoder.decode(body).where
    assert where is not None
    return where


def test_the_demo_declares_the_issue_columns_filterable() -> None:
    history = DOMAINS["history"]
    for name, op in (("EVENTNAME", "in"), ("WORKCENTERNAME", "in"), ("TXNDATE", "range")):
        column = history.filterable(name)
        assert column is not None and op in column.ops, name
    assert history.filterable("TXNDATE").type == "timestamp"  # type: ignore[union-attr]
    assert history.filterable("COMMENTS") is None


def test_canonical_form_sorts_deduplicates_and_orders_domains_like_the_job() -> None:
    where = _where(
        {
            "materials": {"MATERIALPARTNAME": ["B", "A", "B"]},
            "history": {
                "TXNDATE": {"from": "2025-01-15", "to": "2025-02-01T10:00:00+02:00"},
                "EVENTNAME": ["Release", "Hold", "Hold"],
                "QTY": [3000, 1000.0, 1000],
            },
        }
    )
    got = normalize_where(where, DOMAINS, JOB)
    assert got == {
        "history": {
            "EVENTNAME": ["Hold", "Release"],
            "QTY": [1000.0, 3000],
            "TXNDATE": Range("2025-01-15T00:00:00", "2025-02-01T08:00:00"),
        },
        "materials": {"MATERIALPARTNAME": ["A", "B"]},
    }
    assert got is not None and list(got) == JOB and list(got["history"]) == sorted(got["history"])
    assert normalize_where(got, DOMAINS, JOB) == got  # idempotent: replicas re-check it
    assert normalize_where(_where({"history": {}}), DOMAINS, JOB) is None
    assert normalize_where(None, DOMAINS, JOB) is None


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2025-01-31", "2025-01-31T00:00:00"),
        ("2025-01-31T08:00", "2025-01-31T08:00:00"),
        ("2025-01-31 08:00:00", "2025-01-31T08:00:00"),
        ("2025-01-31T08:00:00Z", "2025-01-31T08:00:00"),
        ("2025-01-31T01:30:00-07:00", "2025-01-31T08:30:00"),
        ("2025-01-31T08:00:00.25", "2025-01-31T08:00:00.250000"),
        ("2025-01-01T00:30:00+01:00", "2024-12-31T23:30:00"),
    ],
)
def test_timestamps_become_utc_iso_text(text: str, canonical: str) -> None:
    assert canonical_timestamp(text) == canonical


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        ({"history": {"COMMENTS": ["x"]}}, InvalidFilter, ["history.COMMENTS", "EVENTNAME"]),
        ({"history": {"eventname": ["x"]}}, InvalidFilter, ["history.eventname"]),
        ({"history": {"EVENTNAME": [1]}}, InvalidFilter, ["history.EVENTNAME", "strings"]),
        ({"history": {"EVENTNAME": {"from": "A"}}}, InvalidFilter, ["history.EVENTNAME", "list"]),
        ({"history": {"TXNDATE": ["2025-01-01"]}}, InvalidFilter, ["history.TXNDATE", "range"]),
        ({"history": {"TXNDATE": {"from": "soon"}}}, InvalidFilter, ["history.TXNDATE", "8601"]),
        ({"history": {"TXNDATE": {"from": 20250101}}}, InvalidFilter, ["history.TXNDATE"]),
        ({"history": {"TXNDATE": {}}}, InvalidFilter, ["history.TXNDATE", "from"]),
        (
            {"history": {"TXNDATE": {"from": "2025-02-01", "to": "2025-02-01"}}},
            InvalidFilter,
            ["empty"],
        ),
        ({"history": {"QTY": ["1000"]}}, InvalidFilter, ["history.QTY", "numbers"]),
        ({"history": {"QTY": [2**63]}}, InvalidFilter, ["history.QTY", "64 bits"]),
        ({"materials": {"QTYCONSUMED": [1]}}, InvalidFilter, ["materials.QTYCONSUMED"]),
        ({"elsewhere": {"EVENTNAME": ["x"]}}, UnknownDomain, ["elsewhere"]),
    ],
)
def test_bad_filters_are_refused_naming_the_column(
    raw: dict[str, Any], error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as caught:
        normalize_where(_where(raw), DOMAINS, JOB)
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_numbers_are_finite() -> None:
    """JSON cannot carry them (msgspec refuses 1e400), but a spec could."""
    with pytest.raises(InvalidFilter, match="finite"):
        normalize_where({"history": {"QTY": Range(float("inf"))}}, DOMAINS, JOB)


def test_a_domain_outside_the_job_is_refused() -> None:
    with pytest.raises(UnknownDomain):
        normalize_where(_where({"materials": {"UOM": ["g"]}}), DOMAINS, ["history"])


def test_the_number_of_values_is_bounded() -> None:
    per_column = [f"V{i}" for i in range(p.MAX_IN_VALUES)]
    columns = ["EVENTNAME", "SPECNAME", "WORKCENTERNAME", "EQUIPMENTNAME"]
    ok = _where({"history": {c: per_column for c in columns}})
    assert MAX_WHERE_VALUES == 4 * p.MAX_IN_VALUES
    assert normalize_where(ok, DOMAINS, JOB) is not None
    over = _where(
        {"history": {c: per_column for c in columns}, "materials": {"UOM": ["g"]}}
        | {"materials": {"MATERIALPARTNAME": ["one more"]}}
    )
    with pytest.raises(InvalidFilter, match="at most"):
        normalize_where(over, DOMAINS, JOB)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"history": {"EVENTNAME": [True]}}, ["history.EVENTNAME", "bool"]),
        ({"history": {"EVENTNAME": [""]}}, ["history.EVENTNAME", "length"]),
        ({"history": {"EVENTNAME": []}}, ["history.EVENTNAME", "length"]),
        ({"history": {"EVENTNAME": ["x"] * 1001}}, ["history.EVENTNAME", "1000"]),
        ({"history": {"TXNDATE": {"frm": "2025"}}}, ["history.TXNDATE", "frm"]),
        ({"history": []}, ["where.history"]),
    ],
)
def test_wire_errors_are_explained_by_column(raw: dict[str, Any], words: list[str]) -> None:
    body = msgspec.json.encode({"container_ids": ["a"], "where": raw})
    with pytest.raises(msgspec.ValidationError) as caught:
        p.job_request_decoder.decode(body)
    assert "$.where" in str(caught.value)
    detail = explain_wire_error(raw, "fallback")
    for word in words:
        assert word in detail, detail
