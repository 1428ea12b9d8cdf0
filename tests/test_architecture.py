"""The architecture, enforced: rooms (subpackages) without import cycles between them, a
pure core without I/O that imports nothing of the other rooms, and rooms of a readable size.
(The tests' own house rules are in tests/test_suite_layout.py.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVC = ROOT / "svc"
# The leaves every room may speak: the wire contract and the one exception tree.
SHARED = {"svc.protocol", "svc.errors"}
MAX_TOP_LEVEL_MODULES = 10
MAX_MODULE_LINES = 450
# Being split (issue #22); emptied when the split lands.
PENDING_SPLITS: set[str] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(SVC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every svc module -> the svc modules it imports, at the top or inside functions.

    A package importing its own submodules (a factory choosing an implementation) is
    containment, not a dependency, and is left out; so is `svc` itself (its version).
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
            edges |= {t for t in targets if t in modules and t not in (name, "svc")}
        graph[name] = {e for e in edges if not e.startswith(name + ".")}
    return graph


def room(module: str) -> str:
    """The room a module lives in: its subpackage of svc, or itself at the top level."""
    return ".".join(module.split(".")[:2])


def room_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    rooms: dict[str, set[str]] = {}
    for module, targets in graph.items():
        edges = rooms.setdefault(room(module), set())
        edges |= {room(t) for t in targets if room(t) != room(module)}
    return rooms


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
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


def test_no_import_cycle_between_modules() -> None:
    cycle = _cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_no_import_cycle_between_rooms() -> None:
    cycle = _cycle(room_graph(import_graph()))
    assert cycle is None, " -> ".join(cycle or [])


def test_the_core_imports_nothing_of_the_other_rooms() -> None:
    graph = import_graph()
    outside = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if room(module) == "svc.core"
        for target in targets
        if room(target) != "svc.core" and room(target) not in SHARED
    }
    assert not outside, sorted(outside)


def test_the_core_imports_no_io() -> None:
    core = sorted(m for m in import_graph() if room(m) == "svc.core")
    code = (
        f"import sys, {', '.join(core)}\n"
        "bad = {'sqlite3', 'apsw', 'oracledb', 'redis', 'starlette', 'uvicorn', 'httpx',"
        " 'socket', 'asyncio', 'prometheus_client'} & set(sys.modules)\n"
        "print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_client_imports_nothing_of_the_server() -> None:
    """`pip install trace-stream` (no server extra) must import svc.client."""
    graph = import_graph()
    allowed = {"svc.client", "svc.core", *SHARED}
    outside = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if room(module) == "svc.client"
        for target in targets
        if room(target) not in allowed
    }
    assert not outside, sorted(outside)


def test_rooms_of_a_readable_size() -> None:
    top = sorted(p.name for p in SVC.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    long = {
        str(p.relative_to(ROOT)): n
        for p in SVC.rglob("*.py")
        if (n := len(p.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
        and str(p.relative_to(ROOT)) not in PENDING_SPLITS
    }
    assert not long, long


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_imports_inside_functions_and_rooms() -> None:
    graph = import_graph()
    assert "svc.sources.oracle" in graph["svc.sources.migrate"]  # imported where Oracle is migrated
    assert room("svc.engine.service") == "svc.engine" and room("svc.cli") == "svc.cli"
    assert "svc.core" in room_graph(graph)["svc.engine"]


def layout_misses(layout: str) -> list[str]:
    """The modules a layout map does not name: by path, or by file name under its folder
    (`http/routes/` ... `jobs.py`); a package by its folder."""
    missing = []
    for path in sorted(SVC.rglob("*.py")):
        rel = path.relative_to(SVC).as_posix()
        folder, _, name = rel.rpartition("/")
        if name == "__init__.py" and folder:
            named = f"{folder}/" in layout
        else:
            named = rel in layout or (f"{folder}/" in layout and name in layout)
        if not named:
            missing.append(rel)
    return missing


def test_the_layout_map_names_every_module() -> None:
    """docs/design.md's layout map covers the whole package: a new module is placed there."""
    design = (ROOT / "docs" / "design.md").read_text("utf-8")
    layout = design[design.index("## Layout") : design.index("## A request's walk")]
    assert layout_misses(layout) == []
    assert "engine/walk.py" in layout_misses(layout.replace("engine/walk.py", "engine/?"))
