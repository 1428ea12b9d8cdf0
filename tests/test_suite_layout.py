"""The test suite's own house rules: helpers live in tests/support, never in a test module.

A test module that imports another one runs (and collects) it as a side effect and ties
the two together; shared helpers belong to tests/support (tests/oracle/live.py and
tests/oracle/plans.py for the live Oracle suite)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
BENCH = TESTS.parent / "bench"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _is_test_module(name: str) -> bool:
    return name.rsplit(".", 1)[-1].startswith("test_")


def test_no_module_imports_a_test_module() -> None:
    offenders = {
        str(path.relative_to(TESTS.parent)): sorted(
            name for name in _imported_modules(path) if _is_test_module(name)
        )
        for path in [*TESTS.rglob("*.py"), *BENCH.rglob("*.py")]
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_at_most_three_helper_modules_sit_directly_in_tests() -> None:
    helpers = sorted(p.name for p in TESTS.glob("*.py") if not p.name.startswith("test_"))
    assert len(helpers) <= 3, helpers  # conftest.py, __init__.py: the rest in tests/support


def test_the_server_fixture_is_defined_once() -> None:
    """Modules that need another server override `server_env` or `server_db` instead."""
    defined = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "server"
    ]
    assert defined == ["conftest.py"]
