"""The README's configuration reference and quick start stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from svc.config import SETTINGS, reference_table

_OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared|the seed|the brief")
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented_with_its_flag() -> None:
    for s in SETTINGS:
        row = re.search(rf"^\| `{s.env}` \| `(--[a-z-]+)` \| (.*) \|$", README, re.M)
        assert row, f"{s.env} is missing from the README's configuration table"
        assert row.group(1) == s.flag, f"{s.env}: README says {row.group(1)}, CLI has {s.flag}"
        assert row.group(2) == s.doc, f"{s.env}: the README's text differs from the CLI's help"


def test_the_configuration_table_is_the_one_derived_from_settings() -> None:
    """Row for row, in declaration order, nothing more: regenerate it with
    `python -c 'from svc.config import *; print(reference_table(SETTINGS))'`."""
    section = README.split("## Configuration", 1)[1]
    table = section[section.index("| variable |") :].split("\n\n", 1)[0] + "\n"
    assert table == reference_table(SETTINGS)


def test_quick_start_names_the_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make serve" in quick and "make test" in quick
    assert "make test" in (Path(__file__).resolve().parent.parent / ".ci/run").read_text()


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
