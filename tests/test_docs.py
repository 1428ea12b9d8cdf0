"""The README and docs/ stay true to the code: the configuration reference, the quick start,
the README's length, the links. (tests/test_readme.py runs the README's examples.)"""

from __future__ import annotations

import re
from pathlib import Path

from svc.config import SETTINGS, reference_table

_OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared|the seed|the brief")
ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
README_MAX_LINES = 300  # one screenful a topic for a newcomer; the rest lives in docs/


def test_every_setting_is_documented_with_its_flag() -> None:
    for s in SETTINGS:
        row = re.search(rf"^\| `{s.env}` \| `(--[a-z-]+)` \| (.*) \|$", CONFIGURATION, re.M)
        assert row, f"{s.env} is missing from docs/configuration.md's table"
        assert row.group(1) == s.flag, f"{s.env}: the docs say {row.group(1)}, CLI has {s.flag}"
        assert row.group(2) == s.doc, f"{s.env}: the docs' text differs from the CLI's help"


def test_the_configuration_table_is_the_one_derived_from_settings() -> None:
    """Row for row, in declaration order, nothing more: regenerate it with
    `python -c 'from svc.config import *; print(reference_table(SETTINGS))'`."""
    table = CONFIGURATION[CONFIGURATION.index("| variable |") :].split("\n\n", 1)[0] + "\n"
    assert table == reference_table(SETTINGS)


def test_quick_start_names_the_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make serve" in quick and "make test" in quick
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_the_readme_is_short_and_every_setting_it_names_exists() -> None:
    lines = README.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/"
    known = {s.env for s in SETTINGS}
    named = set(re.findall(r"`(TRACE_[A-Z_]+)`", README)) - {"TRACE_TEST_ORACLE_DSN"}
    assert named <= known, named - known


DOCS = [Path(__file__).resolve().parent.parent / "README.md"] + sorted(
    (Path(__file__).resolve().parent.parent / "docs").glob("*.md")
)


def test_docs_stand_alone_and_their_links_resolve() -> None:
    """Users have the README and docs/ only: no pointer to papers they cannot see."""
    frontend_readme = Path(__file__).resolve().parent.parent / "frontend" / "README.md"
    for doc in [*DOCS, frontend_readme]:
        text = doc.read_text()
        # Papers outside the repository: the founding design brief and its sibling folder.
        found = _OUTSIDE.search(text)
        assert found is None, f"{doc.name} mentions {found.group(0)!r}"
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
