"""The loss-penalty sweep of table 12.2, shared by the text report and the plots.

It sits in its own module so that :mod:`clearing.report` and
:mod:`clearing.plots` both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable

from clearing.case import Case
from clearing.market import clear
from clearing.solve import Clearer

ALPHAS_MILLI = (0.0, 5.0, 10.0, 20.0, 30.0, 35.0)  # table 12.2, 10^-3 currency/(kWh·Ω)


def sweep_alphas(extra_milli: float | None = None) -> tuple[float, ...]:
    """Return table 12.2's α values (10^-3 units) with ``extra_milli`` added, sorted.

    >>> sweep_alphas(7.5)
    (0.0, 5.0, 7.5, 10.0, 20.0, 30.0, 35.0)
    """
    extra: Iterable[float] = () if extra_milli is None else (float(extra_milli),)
    return tuple(sorted({*ALPHAS_MILLI, *extra}))


def loss_sweep(
    case: Case, alphas_milli: Iterable[float], *, clearer: Clearer | None = None
) -> tuple[float, ...]:
    """Return the losses in kW of the loss model at each α (10^-3 currency/(kWh·Ω)).

    α = 0 is the basic market's losses (the loss model without its penalty).

    Raises:
        ClearingError: From the clearings.
    """
    clearer = Clearer() if clearer is None else clearer
    return tuple(
        clear(case, "loss", alpha=a / 1000.0, clearer=clearer).losses_kw for a in alphas_milli
    )
