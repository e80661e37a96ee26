"""The installed version of p2pex."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def installed_version() -> str:
    """Return the version of the installed ``p2pex`` distribution.

    Returns ``"0+unknown"`` when the code runs from a tree that was never
    installed, so ``--version`` still answers instead of crashing.
    """
    try:
        return version("p2pex")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = installed_version()
