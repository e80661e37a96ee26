"""``p2pex operator network | tariff | close`` and ``p2pex clearing``: the operator's side.

The operator's transactions are signed with the operator key file (the one
the operator node runs with); any other key is refused (``not_permitted``).
There is no "open slot" transaction: a slot opens with its first accepted
order or curve, and its gate closes with ``CloseSlot`` (or at
``slot * slot_length_ms`` when the operator runs with ``--slot-length-ms``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market import transactions as txn
from node.cli import output
from node.cli.common import PRODUCTS, connect, formatter, node_flag, report_submitted
from node.cli.money import add_money_operator_commands
from node.cli.peer import load_case_file
from node.errors import ConfigError

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

CLEARING_COLUMNS = ("height", "product", "slot", "name", "account", "energy_wh", "payment")
FIXED_POINT = 10**9  # the certificate's fixed-point scale (clearing.certificate)
NETWORK_KEYS = ("voltage_kv", "root", "buses", "lines")
OPERATOR_KEY_HELP = "the operator's key file (the one its node runs with)"


def network_payload(args: argparse.Namespace) -> txn.SetNetwork:
    """The ``SetNetwork`` of ``--case`` (its feeder) or of ``--network`` (a network JSON).

    Raises:
        ConfigError: unreadable file, not JSON, or a network without its keys.
    """
    if args.case is not None:
        from market.gate_clearing import network_for_case

        return network_for_case(load_case_file(args.case))
    try:
        data = json.loads(Path(args.network).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"cannot read network JSON {args.network}: {exc}"
        raise ConfigError(msg) from exc
    if isinstance(data, dict) and "network" in data and "peers" in data:
        msg = f"{args.network} is a case file: use --case {args.network}"
        raise ConfigError(msg)
    missing = [k for k in NETWORK_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        msg = f"{args.network}: the network needs the keys {', '.join(missing)}"
        raise ConfigError(msg)
    data.pop("peer_bus", None)  # peers' buses come from their registration
    return txn.SetNetwork(json.dumps(data, sort_keys=True))


def run_network(args: argparse.Namespace) -> int:
    """Publish the feeder the clearing runs on (``SetNetwork``)."""
    payload = network_payload(args)
    network = json.loads(payload.network_json)
    what = f"network ({len(network['buses'])} buses, {len(network['lines'])} lines)"
    with connect(args, signed=True) as client:
        done = client.submit(payload)
        return report_submitted(client, done, wait=args.wait, what=what)


def run_tariff(args: argparse.Namespace) -> int:
    """Set the loss and congestion penalties (``SetTariff``)."""
    alpha, beta = args.alpha, args.beta
    if args.case is not None:
        case = load_case_file(args.case)
        alpha = round(case.alpha * 1000) if alpha is None else alpha
        beta = round(case.beta * 1000) if beta is None else beta
    if alpha is None or beta is None:
        msg = "give --alpha and --beta (or --case FILE)"
        raise ConfigError(msg)
    with connect(args, signed=True) as client:
        done = client.set_tariff(alpha, beta)
        what = f"tariff alpha={alpha} beta={beta} (10^-3 units)"
        return report_submitted(client, done, wait=args.wait, what=what)


def run_close(args: argparse.Namespace) -> int:
    """Close a slot's gate (``CloseSlot``); the operator then clears it."""
    with connect(args, signed=True) as client:
        done = client.close_slot(args.product, args.slot)
        return report_submitted(
            client, done, wait=args.wait, what=f"close {args.product} slot {args.slot}"
        )


def mode_payload(args: argparse.Namespace) -> txn.SetSlotMode:
    """The ``SetSlotMode`` of ``--case``'s feeder and tariff (``market.grid_terms``).

    Raises:
        ConfigError: an unreadable case, or grid terms that cannot be computed.
    """
    from market.grid_terms import InvalidGridTerms, slot_mode
    from market.units import Units

    case = load_case_file(args.case)
    penalised = [x for x in (args.penalised or "").split(",") if x]
    try:
        return slot_mode(
            case.network,
            product=args.product,
            slot=args.slot,
            mode=args.mode,
            alpha=case.alpha,
            beta=case.beta,
            penalised=penalised,
            units=Units(case.tick, case.slot_hours),
            approval=args.approval,
        )
    except InvalidGridTerms as exc:
        raise ConfigError(str(exc)) from exc


def run_mode(args: argparse.Namespace) -> int:
    """Set a slot's operation mode with its grid terms (``SetSlotMode``)."""
    payload = mode_payload(args)
    if args.print:
        output.print_json(
            {
                "product": payload.product,
                "slot": payload.slot,
                "mode": payload.mode,
                "buses": payload.buses,
                "parent": list(payload.parent),
                "capacity": list(payload.capacity),
                "base_flow": list(payload.base_flow),
                "seller_charge": list(payload.seller_charge),
                "buyer_charge": list(payload.buyer_charge),
                "distance": list(payload.distance),
                "approval": payload.approval,
            }
        )
        return 0
    what = f"{args.product} slot {args.slot} in mode {args.mode}"
    with connect(args, signed=True) as client:
        done = client.submit(payload)
        return report_submitted(client, done, wait=args.wait, what=what)


def add_operator_command(commands: SubParsers) -> None:
    """Register ``p2pex operator network | tariff | close``."""
    parser = commands.add_parser(
        "operator",
        help="operator: network, tariff, slots, money (deposits, meters, settlement)",
        formatter_class=formatter(),
        description="The operator's transactions, signed with the operator key file. "
        "A slot has no open transaction: it opens with its first accepted order or curve "
        "(p2pex order place, p2pex curve). Its gate closes with 'operator close' (or on "
        "time, when the operator node runs with --slot-length-ms); the operator node then "
        "clears it with the network and tariff in force at that moment, if peers declared "
        "curves and a network is published, and publishes the settlements (p2pex clearing).",
    )
    sub = parser.add_subparsers(title="operator commands", metavar="COMMAND")

    network = sub.add_parser(
        "network",
        help="publish the feeder (SetNetwork)",
        formatter_class=formatter(),
        description="Publish the radial feeder the clearing runs on: from a case file's "
        "network (--case), or from a network JSON (--network: keys voltage_kv, root, buses, "
        "lines; each line name, from, to, r_ohm, x_ohm, capacity_kw). Peers' buses come from "
        "their registration, not from the file.",
    )
    node_flag(network, key=True, key_help=OPERATOR_KEY_HELP)
    source = network.add_mutually_exclusive_group(required=True)
    source.add_argument("--case", metavar="FILE", help="a clearing case JSON, or 'reference'")
    source.add_argument("--network", metavar="FILE", help="a network JSON")
    network.add_argument("--wait", action="store_true", help="wait until committed")
    network.set_defaults(handler=run_network)

    tariff = sub.add_parser(
        "tariff",
        help="set the loss and congestion penalties (SetTariff)",
        formatter_class=formatter(),
        description="Set the tariff of the clearing: alpha, the loss penalty, in 10^-3 "
        "currency/(kWh*ohm), and beta, the congestion penalty, in 10^-3 currency/kWh "
        "(integers >= 0; the chapter's table 12.2 uses 5 and 5). --case FILE takes the "
        "case's tariff for what is not given.",
    )
    node_flag(tariff, key=True, key_help=OPERATOR_KEY_HELP)
    tariff.add_argument("--alpha", type=int, help="loss penalty, 10^-3 currency/(kWh*ohm)")
    tariff.add_argument("--beta", type=int, help="congestion penalty, 10^-3 currency/kWh")
    tariff.add_argument("--case", metavar="FILE", help="a clearing case JSON, or 'reference'")
    tariff.add_argument("--wait", action="store_true", help="wait until committed")
    tariff.set_defaults(handler=run_tariff)

    close = sub.add_parser(
        "close",
        help="close a slot's gate (CloseSlot); the clearing follows",
        formatter_class=formatter(),
        description="Close the gate of one slot: its resting orders expire, no order or "
        "curve is taken for it any more, and the operator node clears it (see p2pex "
        "clearing). There is no 'open' command: a slot opens with its first accepted "
        "order or curve.",
    )
    node_flag(close, key=True, key_help=OPERATOR_KEY_HELP)
    close.add_argument("--product", default="electricity", choices=PRODUCTS, help="what is traded")
    close.add_argument("--slot", type=int, required=True, help="delivery slot index")
    close.add_argument("--wait", action="store_true", help="wait until committed")
    close.set_defaults(handler=run_close)

    mode = sub.add_parser(
        "mode",
        help="set a slot's operation mode and its grid terms (SetSlotMode)",
        formatter_class=formatter(),
        description="Set the DSO's operation mode of one slot (12.2.2): 1 preferences "
        "(R_ij in milliohm for max-distance preferences), 2 bids and offers (the plain "
        "CDA), 3 price signals (each side pays alpha R_ij + beta theta_ij per kWh at the "
        "case's tariff, theta on the --penalised lines), 4 line validation (every match "
        "checked against the feeder's line capacities). The terms are computed from the "
        "case's feeder; see docs/modes.md.",
    )
    node_flag(mode, key=True, key_help=OPERATOR_KEY_HELP)
    mode.add_argument("--product", default="electricity", choices=PRODUCTS, help="what is traded")
    mode.add_argument("--slot", type=int, required=True, help="delivery slot index")
    mode.add_argument("--mode", type=int, required=True, choices=(1, 2, 3, 4), help="1-4")
    mode.add_argument(
        "--case", metavar="FILE", required=True, help="a clearing case JSON, or 'reference'"
    )
    mode.add_argument(
        "--penalised", metavar="LINES", help="mode 3: comma-separated congested lines (theta)"
    )
    mode.add_argument(
        "--approval", action="store_true", help="mode 4: every match waits for DecideTrade"
    )
    mode.add_argument("--print", action="store_true", help="print the payload, submit nothing")
    mode.add_argument("--wait", action="store_true", help="wait until committed")
    mode.set_defaults(handler=run_mode)
    add_money_operator_commands(sub)

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=usage)


# -- clearing ----------------------------------------------------------------------------------


def certificate_summary(certificate: bytes) -> dict[str, Any]:
    """What a person wants to see of a certificate: model, peers, prices, penalties.

    Read from its plain form (``clearing.certificate_to_plain``: fixed point
    x 10^9) without importing the solver stack. Prices are the peers' dual
    prices ``pi`` in currency per kWh.
    """
    from ledger.codec import decode

    plain: Any = decode(certificate, max_size=len(certificate))
    if all(isinstance(s, list) for s in plain[7]):
        # the horizon form (market.gate_horizon: prosumers, heat): σ per slot at item 7;
        # α and β are the chain's tariff, and its prices need the QP's layout
        _version, _scale, model, names, _slots, limits, _beta_scale, sigma, *_ = plain
        return {
            "sha256": hashlib.sha256(certificate).digest(),
            "bytes": len(certificate),
            "model": model,
            "peers": list(names),
            "heat": model == "heat",
            "line_limits": bool(limits),
            "alpha": [],
            "beta": [],
            "congested": list(sigma[0]) if sigma else [],
            "price": {},
        }
    _version, _scale, model, names, heat, limits, _eps, alpha, beta, congested, arrays = plain
    prices = arrays[6] if len(arrays) > 6 else []
    return {
        "sha256": hashlib.sha256(certificate).digest(),
        "bytes": len(certificate),
        "model": model,
        "peers": list(names),
        "heat": bool(heat),
        "line_limits": bool(limits),
        "alpha": [a / FIXED_POINT for a in alpha],
        "beta": [b / FIXED_POINT for b in beta],
        "congested": list(congested),
        "price": {n: p / FIXED_POINT for n, p in zip(names, prices, strict=False)},
    }


def run_clearing(args: argparse.Namespace) -> int:
    """Show a slot's published clearing: settlements and the certificate summary."""
    with connect(args, signed=False) as client:
        found = client.clearing(args.product, args.slot)
        names = {p["account"]: p["name"] for p in client.peers()}
    if found is None:
        msg = (
            f"{args.product} slot {args.slot} has no published clearing yet (p2pex status "
            "shows its state; a slot is cleared after 'p2pex operator close' once peers "
            "declared curves and a network is published)"
        )
        raise ConfigError(msg)
    rows = [
        {
            "height": found["height"],
            "product": args.product,
            "slot": args.slot,
            "name": names.get(r["account"], "?"),
            **r,
        }
        for r in found["settlements"]
    ]
    summary = certificate_summary(found["certificate"])
    if args.csv:
        output.write_csv(args.csv, rows, CLEARING_COLUMNS)
        if args.csv == "-":
            return 0
    if args.json:
        output.print_json(
            {
                "height": found["height"],
                "tx_id": found["tx_id"],
                "product": args.product,
                "slot": args.slot,
                "settlements": rows,
                "certificate": summary,
            }
        )
        return 0
    print(
        f"{args.product} slot {args.slot}: cleared in block {found['height']}, "
        f"tx {found['tx_id'].hex()}"
    )
    print(
        f"certificate: model {summary['model']}, {len(summary['peers'])} peers, "
        f"{summary['bytes']} bytes, sha256 {summary['sha256'].hex()}"
    )
    congested = ", ".join(summary["congested"]) or "none"
    print(f"congested lines: {congested}")
    table = [
        [
            r["name"],
            r["energy_wh"],
            r["payment"],
            f"{summary['price'].get(r['name'], float('nan')):.4f}",
            r["account"].hex()[:16],
        ]
        for r in rows[: args.limit]
    ]
    print(output.table(["peer", "energy Wh", "payment tick*Wh", "price/kWh", "account"], table))
    if len(rows) > args.limit:
        print(f"... {len(rows) - args.limit} more (--limit N, --csv FILE or --json for all)")
    total = sum(r["energy_wh"] for r in rows)
    print(f"{len(rows)} settlements; net energy {total} Wh (losses are the difference)")
    return 0


def add_clearing_command(commands: SubParsers) -> None:
    """Register ``p2pex clearing``."""
    parser = commands.add_parser(
        "clearing",
        help="show a slot's published clearing (settlements, certificate)",
        formatter_class=formatter(),
        description="Show the clearing the operator published for one slot: per peer the "
        "energy in Wh (injected > 0, withdrawn < 0), the payment in tick*Wh (received > 0, "
        "paid < 0, penalties deducted) and its price (the certificate's dual price, "
        "currency/kWh), and a summary of the optimality certificate replicas check it with.",
    )
    node_flag(parser, key=False)
    parser.add_argument("--product", default="electricity", choices=PRODUCTS, help="what is traded")
    parser.add_argument("--slot", type=int, required=True, help="delivery slot index")
    parser.add_argument(
        "--limit", type=int, default=50, help="print at most N peers' rows in the table"
    )
    output.add_json_flag(parser)
    output.add_csv_flag(parser)
    parser.set_defaults(handler=run_clearing)
