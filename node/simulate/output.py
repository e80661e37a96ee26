"""The simulation's outputs: per-slot, per-peer CSV tables, the summary, plots.

Files written to ``--out``:

- ``slots.csv``: one row per slot and building: load, PV, battery charge and
  discharge, EV charging, SoC, heat pump energy and indoor temperature
  (empty without one), net energy (kWh), its order (side, price in
  ticks/kWh, Wh), its statement (contracted, metered, imbalance Wh; payment
  tick·Wh) and the no-P2P and pool designs' net energy and SoC;
- ``prices.csv``: one row per slot: tariffs, outdoor temperature, the CDA's trades and VWAP, the
  pool's grid-peer price (dual), grid import / export, losses and the most
  loaded line's |flow| / capacity per design;
- ``summary.csv``: the three designs' figures;
- ``*.parquet`` beside each CSV when ``pyarrow`` is importable (it is an
  optional dependency: without it the CSVs are written and a note printed);
- with ``--plot``, ``day.png``: prices, state of charge, import and export,
  line loading over the day (matplotlib).
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from node.simulate.day import SLOT_HOURS, Day
from node.simulate.designs import Outcome, Summary, line_loading
from node.simulate.runner import P2PRun


def _write(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_tables(
    out: Path,
    day: Day,
    run: P2PRun,
    designs: Sequence[Outcome],
    summary: Sequence[Summary],
    pool_price: Any,
) -> list[str]:
    """Write the CSVs (and Parquet when available); return notes for the user."""
    out.mkdir(parents=True, exist_ok=True)
    _, nop2p, pool = designs
    h = SLOT_HOURS
    rows = []
    for t in range(day.slots):
        rec = run.slots[t]
        for k, b in enumerate(day.buildings):
            dec = run.decisions[b.name][t]
            side, price, qty = rec.orders.get(b.name, ("", 0, 0))
            st = rec.peers.get(b.name, {})
            rows.append([
                t + 1, b.name, b.bus, b.role, round(b.load_kw[t] * h, 4),
                round(b.pv_kw[t] * h, 4), round(dec.charge_kw * h, 4),
                round(dec.discharge_kw * h, 4), round(dec.ev_kw * h, 4),
                round(dec.soc_kwh, 4) if b.battery else "",
                round(dec.heat_kw * h, 4) if b.heat_pump else "",
                round(dec.indoor_c, 3) if b.heat_pump else "", round(dec.net_kw * h, 4),
                side, price, qty, st.get("contracted_wh", 0), st.get("metered_wh", 0),
                st.get("imbalance_wh", 0), st.get("payment", 0),
                round(float(nop2p.net_kw[t, k]) * h, 4), round(float(pool.net_kw[t, k]) * h, 4),
                "" if np.isnan(pool.soc_kwh[t, k]) else round(float(pool.soc_kwh[t, k]), 4),
            ])  # fmt: skip
    header = [
        "slot", "peer", "bus", "role", "load_kwh", "pv_kwh", "charge_kwh", "discharge_kwh",
        "ev_kwh", "soc_kwh", "heat_pump_kwh", "indoor_c", "net_kwh", "order_side",
        "order_price_ticks", "order_wh",
        "contracted_wh", "metered_wh", "imbalance_wh", "payment_tick_wh",
        "no_p2p_net_kwh", "pool_net_kwh", "pool_soc_kwh",
    ]  # fmt: skip
    _write(out / "slots.csv", header, rows)
    loading = [line_loading(day, d.net_kw).max(axis=1) for d in designs]
    prow = []
    for t in range(day.slots):
        rec = run.slots[t]
        prow.append(
            [t + 1, day.import_price[t], day.export_price[t],
             day.outdoor_c[t] if day.outdoor_c else "", rec.trades, rec.volume_wh,
             "" if rec.vwap is None else round(rec.vwap, 2), round(float(pool_price[t]), 2)]
            + [round(float(d.grid_import_kw[t] * h), 4) for d in designs]
            + [round(float(d.grid_export_kw[t] * h), 4) for d in designs]
            + [round(float(d.losses_kw[t] * h), 5) for d in designs]
            + [round(float(x[t]), 4) for x in loading]
            + [rec.payments_sum]
        )  # fmt: skip
    pheader = (
        ["slot", "import_ticks", "export_ticks", "outdoor_c", "cda_trades", "cda_volume_wh",
         "cda_vwap_ticks", "pool_grid_price_ticks"]
        + [f"import_kwh_{d.design.replace(' ', '_')}" for d in designs]
        + [f"export_kwh_{d.design.replace(' ', '_')}" for d in designs]
        + [f"losses_kwh_{d.design.replace(' ', '_')}" for d in designs]
        + [f"max_line_loading_{d.design.replace(' ', '_')}" for d in designs]
        + ["payments_sum_tick_wh"]
    )  # fmt: skip
    _write(out / "prices.csv", pheader, prow)
    srows = [
        [s.design, round(s.cost, 4), round(s.grid_import_kwh, 3), round(s.grid_export_kwh, 3),
         round(s.peak_import_kw, 3), round(s.self_consumption, 5), round(s.losses_kwh, 5)]
        for s in summary
    ]  # fmt: skip
    _write(
        out / "summary.csv",
        ["design", f"cost_{day.currency}", "grid_import_kwh", "grid_export_kwh",
         "peak_import_kw", "self_consumption", "losses_kwh"],
        srows,
    )  # fmt: skip
    notes = []
    if not parquet_available():
        notes.append("pyarrow is not installed: Parquet skipped (CSV written)")
    else:
        for name in ("slots", "prices", "summary"):
            write_parquet(out / f"{name}.csv")
    return notes


def parquet_available() -> bool:
    """Whether ``pyarrow`` (the ``data`` extra) is importable."""
    return importlib.util.find_spec("pyarrow") is not None


def write_parquet(csv_path: Path) -> Path:
    """Write ``csv_path``'s table as Parquet beside it; return the new path.

    The CSV is read back by Arrow's own reader, so both files hold the same
    table: columns typed by Arrow's inference (integers stay int64, decimals
    float64, text string) and an empty cell stored as null.

    Raises:
        ModuleNotFoundError: Without ``pyarrow`` (check :func:`parquet_available`).
    """
    from pyarrow import csv as pa_csv  # type: ignore[import-not-found, import-untyped, unused-ignore]
    from pyarrow import parquet as pq  # type: ignore[import-not-found, import-untyped, unused-ignore]

    table = pa_csv.read_csv(csv_path)
    path = csv_path.with_suffix(".parquet")
    pq.write_table(table, path)
    return path


def plot_day(out: Path, day: Day, run: P2PRun, designs: Sequence[Outcome], pool_price: Any) -> Path:
    """Four panels over the day: prices, SoC, grid import/export, line loading."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = np.arange(day.slots)
    fig, ax = plt.subplots(4, 1, figsize=(9, 12), sharex=True)
    tk = day.tick
    ax[0].step(hours, np.array(day.import_price) * tk, where="post", label="import tariff")
    ax[0].step(hours, np.array(day.export_price) * tk, where="post", label="export tariff")
    vw = [np.nan if r.vwap is None else r.vwap * tk for r in run.slots]
    ax[0].plot(hours, vw, "o-", label="CDA vwap")
    ax[0].plot(hours, np.asarray(pool_price) * tk, "s--", label="pool grid price")
    ax[0].set_ylabel(f"{day.currency}/kWh")
    for d in designs:
        soc = np.nansum(d.soc_kwh, axis=1)
        ax[1].plot(hours, soc, label=d.design)
        ax[2].plot(hours, d.grid_import_kw, label=f"import, {d.design}")
        ax[2].plot(hours, -d.grid_export_kw, ":", label=f"export, {d.design}")
    ax[1].set_ylabel("batteries' SoC, kWh")
    ax[2].set_ylabel("grid kW (export < 0)")
    loading = line_loading(day, designs[0].net_kw)
    ax[3].plot(hours, loading.max(axis=1) * 100, label="most loaded line, P2P")
    ax[3].plot(hours, line_loading(day, designs[2].net_kw).max(axis=1) * 100, label="pool")
    ax[3].set_ylabel("line loading %")
    ax[3].set_xlabel("hour")
    for a in ax:
        a.legend(fontsize=7)
    fig.suptitle(f"p2pex simulate {day.name}")
    fig.tight_layout()
    path = out / "day.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
