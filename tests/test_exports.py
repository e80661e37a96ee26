"""Each package's ``__init__`` exports exactly its public names, sorted."""

from __future__ import annotations

import importlib
import types
from pathlib import Path

import pytest

PACKAGES = ("orderbook", "ledger", "clearing", "market", "node")
ROOT = Path(__file__).resolve().parent.parent


def public_names(module: types.ModuleType) -> list[str]:
    """Names bound in a package's namespace that are not private or submodules."""
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    )


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)
    assert [n for n in exported if not n.startswith("_")] == public_names(module)
    for exported_name in exported:
        assert hasattr(module, exported_name)


@pytest.mark.parametrize("name", PACKAGES)
def test_package_has_one_base_error_and_marker(name: str) -> None:
    errors = importlib.import_module(f"{name}.errors")
    bases = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, Exception)
        and cls.__module__ == errors.__name__
        and not any(
            issubclass(cls, other) and cls is not other
            for other in vars(errors).values()
            if isinstance(other, type) and other.__module__ == errors.__name__
        )
    ]
    assert len(bases) == 1, f"{name}.errors must define exactly one root exception: {bases}"
    assert (ROOT / name / "py.typed").is_file()
