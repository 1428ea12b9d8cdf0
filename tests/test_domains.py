from __future__ import annotations

import pytest

from svc.core.domains import ROWID, DomainConfigError, load_domains, parse_domains


def test_default_registry_describes_the_demo_schema() -> None:
    domains = load_domains()
    assert list(domains) == ["history", "materials"]
    assert domains["history"].table == "MES_CONTAINER_HISTORY"
    assert domains["history"].tiebreak == ROWID
    assert domains["materials"].columns[domains["materials"].key_index] == "CONTAINERID"


def test_key_column_is_added_and_unique_tiebreak_is_kept() -> None:
    d = parse_domains(
        '[domains.events]\ntable = "APP.EVENTS"\ntiebreak = "EVENT_ID"\ncolumns = ["A", "B"]\n'
    )["events"]
    assert d.columns == ("CONTAINERID", "A", "B") and d.tiebreak == "EVENT_ID"


@pytest.mark.parametrize(
    "text",
    [
        "not toml [",
        "[other]\nx = 1",
        '[domains.History]\ntable = "T"\ncolumns = ["A"]',
        '[domains.h]\ntable = "T; DROP TABLE X"\ncolumns = ["A"]',
        '[domains.h]\ntable = "T"\ncolumns = ["A", "a"]',
        '[domains.h]\ntable = "T"\ncolumns = ["A B"]',
        '[domains.h]\ntable = "T"\ncolumns = []',
        '[domains.h]\ntable = "T"\nkey = "1X"\ncolumns = ["A"]',
        '[domains.h]\ntable = "A.B.C"\ncolumns = ["A"]',
        '[domains.h]\ntable = "T"\ncolumns = ["A"]\nextra = 1',
        '[domains.h]\ntable = "T"\ntiebreak = "x--"\ncolumns = ["A"]',
    ],
)
def test_bad_configuration_is_refused_at_load(text: str) -> None:
    with pytest.raises(DomainConfigError):
        parse_domains(text)


_BASE = '[domains.h]\ntable = "T"\ncolumns = ["A", "TS"]\ntimestamptz = ["TS"]\n'


def test_filters_are_declared_per_column() -> None:
    d = parse_domains(
        _BASE + "[domains.h.filters]\n"
        'A = "in"\n'
        'B = { op = ["in", "range"], type = "number" }\n'
        '"\\"Order\\"" = { op = "range", type = "text" }\n'
        'TS = { op = "range", type = "timestamptz" }\n'
    )["h"]
    assert [(f.name, f.sql, sorted(f.ops), f.type) for f in d.filters] == [
        ("A", "A", ["in"], "text"),
        ("B", "B", ["in", "range"], "number"),  # need not be among the columns
        ("Order", '"Order"', ["range"], "text"),
        ("TS", "TS", ["range"], "timestamptz"),
    ]
    assert d.filterable("Order") is d.filters[2] and d.filterable("ORDER") is None


@pytest.mark.parametrize(
    "filters",
    [
        'A = "like"',  # an unknown kind
        'A = { op = "range" }',  # a range without a type: DATE vs string by accident
        'A = { op = "in", type = "timestamp" }',  # no in-list of timestamps
        'A = { op = "in", type = "blob" }',
        'A = { op = "in", kind = "text" }',
        "A = { op = [] }",
        "A = 1",
        'TS = { op = "range", type = "timestamp" }',  # a timestamptz column
        '"A;B" = "in"',
        'SELECT = "in"',
        'A = "in"\n"a" = "in"',  # the same column twice (Oracle folds case)
    ],
)
def test_bad_filter_declarations_are_refused_at_load(filters: str) -> None:
    with pytest.raises(DomainConfigError):
        parse_domains(_BASE + "[domains.h.filters]\n" + filters + "\n")


def test_demo_registry_declares_its_aggregations() -> None:
    domains = load_domains()
    history = {a.name: a for a in domains["history"].aggregations}
    cols = domains["history"].columns
    assert [cols[i] for i in history["events"].by] == ["EVENTNAME"]
    assert [cols[i] for i in history["workcenters"].by] == ["WORKCENTERNAME"]
    assert (
        history["txndate"].kind == "min_max" and cols[history["txndate"].column or 0] == "TXNDATE"
    )
    assert history["qty"].kind == "sum" and history["qty"].by == ()
    materials = {a.name: a.kind for a in domains["materials"].aggregations}
    assert materials == {"consumed_by_part": "sum", "lots": "distinct"}


_AGG = '[domains.h]\ntable = "T"\ncolumns = ["A", "B", \'"Odd Col"\']\naggregations = [{}]'


def test_aggregations_name_columns_by_position_quoted_ones_too() -> None:
    d = parse_domains(
        _AGG.format(
            '{ name = "n", kind = "sum", column = "b", by = [\'"Odd Col"\', "A"], top = 7 }'
        )
    )["h"]
    (agg,) = d.aggregations
    assert (agg.kind, agg.column, agg.by, agg.top) == ("sum", 2, (3, 1), 7)
    assert d.select[3] == '"Odd Col"' and d.columns[3] == "Odd Col"


@pytest.mark.parametrize(
    "agg",
    [
        '{ name = "n", kind = "count" }',  # a count needs by
        '{ name = "n", kind = "count", by = ["A"], column = "B" }',
        '{ name = "n", kind = "sum", by = ["A"] }',  # a sum needs a column
        '{ name = "n", kind = "min_max", column = "A", by = ["B"] }',
        '{ name = "n", kind = "distinct", column = "A", by = ["B"] }',
        '{ name = "n", kind = "median", column = "A" }',
        '{ name = "n", kind = "count", by = ["NOPE"] }',  # not one of the columns
        '{ name = "n", kind = "count", by = ["A; DROP TABLE T"] }',
        '{ name = "n", kind = "count", by = ["A", "a"] }',  # the same column twice
        '{ name = "n", kind = "count", by = ["A"], top = 0 }',
        '{ name = "n", kind = "count", by = ["A"], top = 1001 }',
        '{ name = "n", kind = "count", by = ["A"], top = true }',
        '{ name = "n", kind = "sum", column = "A", top = 5 }',  # top without groups
        '{ name = "N", kind = "count", by = ["A"] }',
        '{ kind = "count", by = ["A"] }',
        '{ name = "n", kind = "count", by = ["A"], having = 1 }',
        '{ name = "n", kind = "count", by = ["A"] }, { name = "n", kind = "sum", column = "B" }',
        '{ name = "n", kind = "count", by = "A" }',
        '"events"',
    ],
)
def test_bad_aggregations_are_refused_at_load(agg: str) -> None:
    with pytest.raises(DomainConfigError):
        parse_domains(_AGG.format(agg))
