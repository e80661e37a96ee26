"""The architecture of the packages (README "Map of the packages"), kept by a test.

``orderbook``, ``ledger`` and ``clearing`` are the functional core: they never
import ``node``, ``market`` or each other, and never touch asyncio, sockets,
threads, wall clocks or unseeded randomness. ``market`` (the replicated state
machine) keeps the same rules but builds on the three. No module of the
project takes part in an import cycle. The checks read every module's import
statements with ``ast``, so they also see imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ("orderbook", "ledger", "clearing")
# The pure packages and the other project packages each may import.
ALLOWED = {
    "orderbook": frozenset(),
    "ledger": frozenset(),
    "clearing": frozenset(),
    "market": frozenset(CORE),
}
PROJECT = ("orderbook", "ledger", "clearing", "market", "node")
# Modules the core must never import (or any submodule of them).
FORBIDDEN = frozenset(
    {
        "node",
        "market",
        "asyncio",
        "socket",
        "socketserver",
        "selectors",
        "threading",
        "_thread",
        "multiprocessing",
        "concurrent",
        "time",  # time.time / monotonic / perf_counter: clocks come in as data
        "datetime",  # datetime.now: same reason
        "random",  # randomness comes in as a seeded argument
        "secrets",
    }
)


def imported_modules(path: Path) -> set[str]:
    """Return the absolute module names a source file imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call):
            # importlib.import_module("x") and __import__("x") with a literal name
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in {"import_module", "__import__"} and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
    return names


def violations(package: str, root: Path = ROOT) -> list[str]:
    """Return ``file: module`` for every forbidden import in ``root / package``."""
    found = []
    for path in sorted((root / package).rglob("*.py")):
        for module in sorted(imported_modules(path)):
            top = module.split(".")[0]
            if top == package:
                continue
            allowed = ALLOWED.get(package, frozenset())
            if (top in FORBIDDEN and top not in allowed) or (
                top in CORE and top != package and top not in allowed
            ):
                found.append(f"{path.relative_to(root)}: {module}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_core_package_keeps_to_itself(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file()
    assert violations(package) == []


def test_checker_sees_forbidden_imports(tmp_path: Path) -> None:
    # The check must be able to fail: feed it a module that breaks every rule.
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import asyncio\n"
        "from time import monotonic\n"
        "import ledger.codec\n"
        "def f():\n"
        "    import socket\n"
        "    return __import__('threading')\n",
        encoding="utf-8",
    )
    assert imported_modules(bad) == {
        "asyncio",
        "time",
        "ledger.codec",
        "socket",
        "threading",
    }


def test_violations_flags_what_the_rules_forbid_and_nothing_else(tmp_path: Path) -> None:
    # The filter must be able to fail too: a fake core package with one module
    # per rule, beside the imports the rules allow.
    pkg = tmp_path / "ledger"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from ledger.codec import encode\nimport hashlib\n")
    (pkg / "clocks.py").write_text("import time\nfrom datetime import datetime\n")
    (pkg / "sub" / "peers.py").write_text(
        "import orderbook\nfrom node.client.clients import Client\nimport concurrent.futures\n"
    )
    assert violations("ledger", root=tmp_path) == [
        "ledger/clocks.py: datetime",
        "ledger/clocks.py: time",
        "ledger/sub/peers.py: concurrent.futures",
        "ledger/sub/peers.py: node.client.clients",
        "ledger/sub/peers.py: orderbook",
    ]


def test_market_may_build_on_the_cores_but_not_on_node(tmp_path: Path) -> None:
    pkg = tmp_path / "market"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import orderbook\nfrom ledger import codec\nimport clearing\n"
    )
    (pkg / "shell.py").write_text("from node.errors import NodeError\nimport asyncio\n")
    assert violations("market", root=tmp_path) == [
        "market/shell.py: asyncio",
        "market/shell.py: node.errors",
    ]


def module_name(path: Path, root: Path) -> str:
    """``node/wire/server.py`` -> ``node.wire.server``; a package's ``__init__`` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:`` (not imported at run time)."""
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)
    return found


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PROJECT) -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from a import b`` counts ``a.b`` if a module)."""
    modules = {
        module_name(path, root): path for pkg in packages for path in (root / pkg).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in runtime_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # ``from a import b``: a module ``a.b`` if there is one, else a name of ``a``
                targets = [
                    f"{node.module}.{a.name}"
                    if f"{node.module}.{a.name}" in modules
                    else node.module
                    for a in node.names
                ]
            for target in targets:
                if target in modules and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_cycles() -> None:
    # A package's __init__ re-exporting its modules is an edge like any other:
    # a module must not import its own package's __init__ names back.
    graph = import_graph()
    assert "node.roles.operator" in graph  # the graph sees the project
    assert cycles(graph) == []


def test_cycle_finder_finds_cycles(tmp_path: Path) -> None:
    pkg = tmp_path / "node"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from node import b\n")
    (pkg / "b.py").write_text("def f():\n    import node.c\n")
    (pkg / "c.py").write_text("from node.a import thing\n")
    (pkg / "d.py").write_text("import node.a\n")
    # an import for type checkers only runs at no time: no cycle through it
    (pkg / "e.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import node.d\n"
    )
    (pkg / "f.py").write_text("import node.e\n")
    (pkg / "g.py").write_text("import node.f\n")
    assert cycles(import_graph(tmp_path, ("node",))) == [["node.a", "node.b", "node.c"]]
