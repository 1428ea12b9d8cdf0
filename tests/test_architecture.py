"""The architecture, enforced: a pure core without I/O, and an import graph without cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SVC = Path(__file__).resolve().parent.parent / "svc"
PURE_CORE = (
    "svc.tokens",
    "svc.keyset",
    "svc.protocol",
    "svc.domains",
    "svc.jobs.codec",
    "svc.cache",
    "svc.ratelimit",
    "svc.csvfmt",
    "svc.filters",
    "svc.exports.model",
    "svc.exports.ranges",
    "svc.aggregate",
)


def test_pure_core_imports_no_io() -> None:
    code = (
        f"import sys, {', '.join(PURE_CORE)}\n"
        "bad = {'sqlite3', 'oracledb', 'redis', 'starlette', 'uvicorn', 'httpx', 'socket',"
        " 'asyncio'} & set(sys.modules)\n"
        "print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SVC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every svc module -> the svc modules it imports, at the top or inside functions.

    A package importing its own submodules (a factory choosing an implementation) is
    containment, not a dependency, and is left out.
    """
    modules = {_module_name(p): p for p in SVC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = {e for e in edges if not e.startswith(name + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    cycle = _cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    assert "svc.sources.oracle" in graph["svc.migrate"]  # imported where Oracle is migrated
    assert "svc.demo" in graph["svc.service"]
