"""Errors of the assets and the multi-period clearing (all under :class:`ClearingError`).

::

    ClearingError
    └── InvalidCase
        ├── InvalidPeer
        │   └── InvalidAsset        an asset's data is out of range or inconsistent
        └── InvalidHorizon          horizon length, signals, profiles of the wrong length

They live beside :mod:`clearing.errors` (whose single root they extend) so
that the single-slot modules stay untouched.
"""

from __future__ import annotations

from clearing.errors import InvalidCase, InvalidPeer


class InvalidAsset(InvalidPeer):
    """Raised when an asset's data is out of range or inconsistent.

    Attributes:
        peer: The peer owning the asset ("" while the asset is not yet placed).
        asset: The asset's name.
        field: The offending field.
        got: The value given.
        want: What was expected, in words.
    """

    def __init__(self, *, asset: str, field: str, got: object, want: str, peer: str = "") -> None:
        where = f"peer {peer!r} asset {asset!r}" if peer else f"asset {asset!r}"
        super().__init__(f"{where}: {field} = {got!r}, want {want}", peer=peer)
        self.asset = asset
        self.field = field
        self.got = got
        self.want = want


class InvalidHorizon(InvalidCase):
    """Raised when horizon data (slots, signals, profile lengths) cannot describe a market.

    Attributes:
        field: The offending field.
        got: The value given.
        want: What was expected, in words.
    """

    def __init__(self, *, field: str, got: object, want: str) -> None:
        super().__init__(f"{field} = {got!r}, want {want}")
        self.field = field
        self.got = got
        self.want = want
