"""The README's configuration reference and quick start stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from svc.config import SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented_with_its_flag() -> None:
    for s in SETTINGS:
        row = re.search(rf"^\| `{s.env}` \| `(--[a-z-]+)` \|", README, re.M)
        assert row, f"{s.env} is missing from the README's configuration table"
        assert row.group(1) == s.flag, f"{s.env}: README says {row.group(1)}, CLI has {s.flag}"


def test_quick_start_names_the_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make serve" in quick and "make test" in quick
    assert "make test" in (Path(__file__).resolve().parent.parent / ".ci/run").read_text()
