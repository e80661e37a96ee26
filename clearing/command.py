"""What ``p2pex clear`` does: load or import a case, print its tables, plots, AC check.

This is the one module that puts the text report (:mod:`clearing.report`),
the plots (:mod:`clearing.plots`), the importers and the AC check together;
none of them imports another, so there is no import cycle between them.
"""

from __future__ import annotations

import math
from pathlib import Path

from clearing.case import Case, load_case, load_reference_case
from clearing.errors import InvalidOption
from clearing.report import format_case_report
from clearing.solve import Clearer

SOURCES = ("case", "matpower", "pandapower", "simbench")


def load_case_from(
    source: str,
    value: str,
    *,
    time_step: int = 0,
    seed: int = 0,
) -> Case:
    """Return the case named by ``source`` and ``value``.

    Args:
        source: ``case`` (a case JSON path, or ``reference``), ``matpower``
            (a ``.m`` file), ``pandapower`` (a pandapower JSON file) or
            ``simbench`` (a SimBench code).
        value: The path or code.
        time_step: SimBench profile step (15 minutes each).
        seed: Seed of the importers' peer rule.

    Raises:
        InvalidOption: Unknown source, or a missing optional package.
        InvalidCase: Bad file or data (and subclasses).
    """
    if source == "case":
        return load_reference_case() if value == "reference" else load_case(value)
    if source not in SOURCES:
        msg = f"unknown case source {source!r}; choose one of {list(SOURCES)}"
        raise InvalidOption(msg)
    from clearing import importers

    if source == "matpower":
        return importers.case_from_matpower(value, importers.PeerRule(seed=seed, currency="USD"))
    if source == "pandapower":
        return importers.case_from_pandapower(value, importers.PeerRule(seed=seed))
    rule = importers.PeerRule(seed=seed, slot_hours=importers.SIMBENCH_STEP_HOURS)
    return importers.case_from_simbench(value, time_step=time_step, rule=rule)


def run_clear_command(
    case_arg: str,
    *,
    model: str = "all",
    alpha_milli: float | None = None,
    beta_milli: float | None = None,
    plot_dir: str | None = None,
    source: str = "case",
    time_step: int = 0,
    seed: int = 0,
    ac_check: bool = False,
) -> str:
    """Load a case, return its report; optionally save plots and add the AC check.

    Args:
        case_arg: The case path (``reference`` for the shipped case), or the
            file / code of ``source``.
        model: ``all`` or one model (see :func:`clearing.report.format_case_report`).
        alpha_milli, beta_milli: Penalties in 10^-3 currency units (``None`` = tariff).
        plot_dir: Save ``flows.png`` and ``losses_alpha.png`` there (of the asked model).
        source: ``case``, ``matpower``, ``pandapower`` or ``simbench``.
        time_step: SimBench profile step.
        seed: Seed of the importers' peer rule.
        ac_check: Add pandapower's AC power flow of the asked clearing.

    Raises:
        ClearingError: Bad case file or options, or a failed clearing.
    """
    for what, value in (("alpha", alpha_milli), ("beta", beta_milli)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            msg = f"--{what} must be a finite number >= 0, got {value}"
            raise InvalidOption(msg)
    case = load_case_from(source, case_arg, time_step=time_step, seed=seed)
    clearer = Clearer()
    text = format_case_report(
        case, model=model, alpha_milli=alpha_milli, beta_milli=beta_milli, clearer=clearer
    )
    alpha = None if alpha_milli is None else alpha_milli / 1000.0
    beta = None if beta_milli is None else beta_milli / 1000.0
    if ac_check:
        from clearing.ac_check import ac_check as run_ac_check
        from clearing.ac_check import format_ac_check
        from clearing.plots import asked_clearings

        for label, result in asked_clearings(
            case, model=model, alpha=alpha, beta=beta, clearer=clearer
        ):
            text += "\n" + format_ac_check(case, run_ac_check(case, result), label) + "\n"
    if plot_dir is not None:
        from clearing.plots import save_plots

        paths = save_plots(
            case, Path(plot_dir), model=model, alpha=alpha, beta=beta, clearer=clearer
        )
        text += "\nPlots: " + ", ".join(str(p) for p in paths) + "\n"
    return text
