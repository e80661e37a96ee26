"""The architecture of DESIGN.md, kept by a test.

``orderbook``, ``ledger`` and ``clearing`` are the functional core: they never
import ``node`` or each other, and never touch asyncio, sockets, threads, wall
clocks or unseeded randomness. The check reads every module's import
statements with ``ast``, so it also sees imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ("orderbook", "ledger", "clearing")
# Modules the core must never import (or any submodule of them).
FORBIDDEN = frozenset(
    {
        "node",
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
            if top in FORBIDDEN or (top in CORE and top != package):
                found.append(f"{path.relative_to(root)}: {module}")
    return found


@pytest.mark.parametrize("package", CORE)
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
        "import orderbook\nfrom node.client import Client\nimport concurrent.futures\n"
    )
    assert violations("ledger", root=tmp_path) == [
        "ledger/clocks.py: datetime",
        "ledger/clocks.py: time",
        "ledger/sub/peers.py: concurrent.futures",
        "ledger/sub/peers.py: node.client",
        "ledger/sub/peers.py: orderbook",
    ]
