from __future__ import annotations

import pytest

from svc.domains import ROWID, DomainConfigError, load_domains, parse_domains


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
