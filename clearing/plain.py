"""The plain form of certificates: nested lists of ints and strings, floats in fixed point.

Every certificate a ledger carries (per pair, aggregated, over a horizon)
is written with these: floats become ints of ``value x 10^SCALE_EXP``
(rounded to nearest), so the canonical msgpack of a certificate is the same
on every machine, and reading one back checks each item's type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from clearing.errors import CertificateError

PLAIN_VERSION = 1
SCALE_EXP = 9  # fixed point: value x 10^9 as int
SCALE = 1_000_000_000  # 10**SCALE_EXP

PlainValue = int | str | list["PlainValue"]


def fix(x: float) -> int:
    """A finite float in fixed point.

    >>> fix(0.5), fix(-1e-9)
    (500000000, -1)

    Raises:
        CertificateError: the value is not finite.
    """
    if not math.isfinite(x):
        msg = f"cannot encode a non-finite value {x!r}"
        raise CertificateError(msg)
    return round(x * SCALE)


def fix_all(values: Sequence[float] | NDArray[np.float64]) -> list[PlainValue]:
    """Every value in fixed point (see ``fix``)."""
    return [fix(float(v)) for v in values]


def read_ints(value: PlainValue, what: str) -> list[int]:
    """A plain list of ints (bools refused).

    Raises:
        CertificateError: anything else, naming ``what``.
    """
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        msg = f"certificate {what} must be a list of ints"
        raise CertificateError(msg)
    return [int(v) for v in value]  # type: ignore[arg-type]


def read_strs(value: PlainValue, what: str) -> tuple[str, ...]:
    """A plain list of strings.

    Raises:
        CertificateError: anything else, naming ``what``.
    """
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        msg = f"certificate {what} must be a list of strings"
        raise CertificateError(msg)
    return tuple(str(v) for v in value)


def read_flag(value: PlainValue, what: str) -> bool:
    """A plain 0 or 1 (a bool is not canonical).

    Raises:
        CertificateError: anything else, naming ``what``.
    """
    if value not in (0, 1) or isinstance(value, bool):
        msg = f"certificate {what} must be 0 or 1, got {value!r}"
        raise CertificateError(msg)
    return value == 1
