"""``p2pex balance``, ``statements``, ``meter read`` and the operator's money commands.

Money is tick*Wh (a price in ticks per kWh times Wh), positive when an
account receives it (docs/settlement.md). Only the operator's deposits and
withdrawals create or remove money; ``operator settle`` moves it between
accounts once a slot is delivered, against its meters' readings.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market import transactions as txn
from node.cli import output
from node.cli.arguments import positive_int
from node.cli.common import PRODUCTS, connect, formatter, node_flag, parse_account, report_submitted
from node.errors import ConfigError
from node.keys import load_key

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

SYSTEM = ("grid", "dso", "treasury")
STATEMENT_COLUMNS = (
    "height",
    "product",
    "slot",
    "contracted_wh",
    "metered_wh",
    "imbalance_wh",
    "charges",
    "payment",
    "balance_after",
)
OPERATOR_KEY_HELP = "the operator's key file (the one its node runs with)"


def whose(args: argparse.Namespace) -> bytes | str:
    """``--account HEX``, ``--system NAME`` or the account of ``--key``.

    Raises:
        ConfigError: none of them, or a malformed account id.
    """
    if getattr(args, "system", None):
        return str(args.system)
    if args.account:
        return parse_account(args.account)
    if getattr(args, "key", None):
        return load_key(Path(args.key)).account_id
    msg = "give --account HEX, --key KEYFILE (your own account) or --system grid|dso|treasury"
    raise ConfigError(msg)


def run_balance(args: argparse.Namespace) -> int:
    """Print an account's balance and the community's totals."""
    account = whose(args)
    with connect(args, signed=False) as client:
        reply = client.call("balance", {"account": account})
    if args.json:
        output.print_json(reply)
        return 0
    print(f"account {reply['account'].hex()}: balance {reply['balance']} tick*Wh")
    conserved = "conserved" if reply["total"] == reply["deposited"] else "NOT CONSERVED"
    print(
        f"community: balances add up to {reply['total']} tick*Wh, deposits minus "
        f"withdrawals {reply['deposited']}: {conserved}"
    )
    return 0


def run_statements(args: argparse.Namespace) -> int:
    """List an account's settlement statements, newest last."""
    account = whose(args)
    with connect(args, signed=False) as client:
        if isinstance(account, str):
            account = client.call("balance", {"account": account})["account"]
        reply = client.call("statements", {"account": account, "limit": args.limit})
    rows: list[dict[str, Any]] = list(reply["statements"])
    if args.slot is not None:
        rows = [r for r in rows if r["slot"] == args.slot]
    if args.csv:
        output.write_csv(args.csv, rows, STATEMENT_COLUMNS)
        if args.csv == "-":
            return 0
    if args.json:
        output.print_json({"account": account, "statements": rows})
        return 0
    table = [[r[c] for c in STATEMENT_COLUMNS] for r in rows]
    if table:
        print(output.table([c.replace("_", " ") for c in STATEMENT_COLUMNS], table))
    print(f"{len(rows)} statements of {account.hex()} (Wh; money in tick*Wh, received > 0)")
    return 0


def run_reading(args: argparse.Namespace) -> int:
    """Send a meter's signed reading of a delivered slot."""
    reading = txn.MeterReading(args.product, args.slot, args.energy_wh)
    with connect(args, signed=True) as client:
        done = client.submit(reading)
        what = f"reading of {args.product} slot {args.slot}: {args.energy_wh} Wh"
        return report_submitted(client, done, wait=args.wait, what=what)


def _operator_submit(args: argparse.Namespace, payload: txn.Payload, what: str) -> int:
    with connect(args, signed=True) as client:
        done = client.submit(payload)
        return report_submitted(client, done, wait=args.wait, what=what)


def run_deposit(args: argparse.Namespace) -> int:
    """Credit an account (``Deposit``)."""
    account = parse_account(args.account)
    return _operator_submit(args, txn.Deposit(account, args.amount), f"deposit of {args.amount}")


def run_withdraw(args: argparse.Namespace) -> int:
    """Debit an account (``Withdraw``)."""
    account = parse_account(args.account)
    what = f"withdrawal of {args.amount}"
    return _operator_submit(args, txn.Withdraw(account, args.amount), what)


def run_meter(args: argparse.Namespace) -> int:
    """Bind a meter key to an account (``RegisterMeter``)."""
    account = parse_account(args.account)
    meter = load_key(Path(args.meter_key)).public_key_bytes()
    return _operator_submit(args, txn.RegisterMeter(account, meter), "meter registration")


def run_terms(args: argparse.Namespace) -> int:
    """Set a slot's grid tariffs and binding market (``SetSlotTerms``)."""
    payload = txn.SetSlotTerms(
        args.product,
        args.slot,
        args.import_price,
        args.export_price,
        args.market,
        args.grid_in_book,
    )
    return _operator_submit(args, payload, f"terms of {args.product} slot {args.slot}")


def run_settle(args: argparse.Namespace) -> int:
    """Settle a delivered slot (``SettleSlot``)."""
    payload = txn.SettleSlot(args.product, args.slot)
    return _operator_submit(args, payload, f"settlement of {args.product} slot {args.slot}")


def _who_flags(parser: argparse.ArgumentParser, what: str) -> None:
    node_flag(parser, key=True, key_help=f"{what}: this key's account")
    parser.add_argument("--account", metavar="HEX", help="account id (64 hex digits)")
    parser.add_argument("--system", choices=SYSTEM, help="a system account")


def add_money_commands(commands: SubParsers) -> None:
    """Register ``p2pex balance``, ``statements`` and ``meter``."""
    balance = commands.add_parser(
        "balance",
        help="an account's balance (tick*Wh) and the money check",
        formatter_class=formatter(),
        description="Print an account's balance in tick*Wh (a price in ticks/kWh times Wh; "
        "x tick / 1000 in currency) and whether all balances add up to the deposits "
        "minus withdrawals.",
    )
    _who_flags(balance, "whose balance")
    output.add_json_flag(balance)
    balance.set_defaults(handler=run_balance)

    statements = commands.add_parser(
        "statements",
        help="an account's settlement statements",
        formatter_class=formatter(),
        description="List the statements of an account's settled slots, newest last: "
        "contracted, metered and imbalance energy in Wh (injected > 0), grid charges, the "
        "payment and the balance after, in tick*Wh (received > 0). See docs/settlement.md.",
    )
    _who_flags(statements, "whose statements")
    statements.add_argument("--slot", type=int, help="only this slot")
    statements.add_argument(
        "--limit", type=positive_int, default=1000, help="the newest N (at most 10000)"
    )
    output.add_json_flag(statements)
    output.add_csv_flag(statements)
    statements.set_defaults(handler=run_statements)

    meter = commands.add_parser(
        "meter",
        help="send a meter's signed reading of a delivered slot",
        formatter_class=formatter(),
        description="Send a reading signed with the meter's key (registered by the operator "
        "with 'operator meter'). Energy in Wh: delivered > 0, consumed < 0. Readings are "
        "taken after the slot's gate closed and before it is settled; one per slot.",
    )
    node_flag(meter, key=True, key_help="the meter's key file")
    meter.add_argument("--product", default="electricity", choices=PRODUCTS, help="what")
    meter.add_argument("--slot", type=int, required=True, help="delivery slot index")
    meter.add_argument("--energy-wh", type=int, required=True, help="Wh, delivered > 0")
    meter.add_argument("--wait", action="store_true", help="wait until committed")
    meter.set_defaults(handler=run_reading)


def _operator_command(
    sub: Any, name: str, help_text: str, description: str, handler: Any, *, slot: bool = False
) -> argparse.ArgumentParser:
    """One ``p2pex operator NAME`` parser: the node and key flags, ``--wait``, a slot if asked."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, formatter_class=formatter(), description=description
    )
    node_flag(parser, key=True, key_help=OPERATOR_KEY_HELP)
    if slot:
        parser.add_argument("--product", default="electricity", choices=PRODUCTS, help="what")
        parser.add_argument("--slot", type=int, required=True, help="delivery slot index")
    parser.add_argument("--wait", action="store_true", help="wait until committed")
    parser.set_defaults(handler=handler)
    return parser


def add_money_operator_commands(sub: Any) -> None:
    """Register ``p2pex operator deposit | withdraw | meter | terms | settle``."""
    for name, handler, text in (
        ("deposit", run_deposit, "credit an account with money brought in (Deposit)"),
        ("withdraw", run_withdraw, "debit an account with money taken out (Withdraw)"),
    ):
        parser = _operator_command(sub, name, text, text, handler)
        parser.add_argument("--account", metavar="HEX", required=True, help="account id")
        parser.add_argument("--amount", type=positive_int, required=True, help="tick*Wh")

    meter = _operator_command(
        sub,
        "meter",
        "bind a meter key to an account (RegisterMeter)",
        "Bind a meter's key (a key file made with p2pex keygen, kept by the meter) to the "
        "peer account whose delivery it measures. A peer's own key may not be its meter.",
        run_meter,
    )
    meter.add_argument("--account", metavar="HEX", required=True, help="the peer's account id")
    meter.add_argument("--meter-key", metavar="KEYFILE", required=True, help="the meter's key")

    terms = _operator_command(
        sub,
        "terms",
        "a slot's grid tariffs and binding market (SetSlotTerms)",
        "Set the grid's import price (what it charges for a shortfall) and export price "
        "(what it pays for a surplus), ticks per kWh, for one slot, and which record binds: "
        "'cda' (the order book's trades) or 'cleared' (the slot's published clearing, the "
        "community-manager market). With --grid-in-book the grid also trades in the slot's "
        "CDA: it offers at the import price and bids at the export price, without limit.",
        run_terms,
        slot=True,
    )
    terms.add_argument("--import-price", type=int, required=True, help="ticks per kWh")
    terms.add_argument("--export-price", type=int, required=True, help="ticks per kWh")
    terms.add_argument("--market", default="cda", choices=("cda", "cleared"), help="binding")
    terms.add_argument(
        "--grid-in-book", action="store_true", help="the grid trades both ways in the CDA"
    )

    _operator_command(
        sub,
        "settle",
        "settle a delivered slot (SettleSlot)",
        "Settle one slot after its gate closed: contracts against meter readings (a missing "
        "reading counts as 0 Wh), imbalances at the slot's tariffs, one statement per account "
        "(p2pex statements).",
        run_settle,
        slot=True,
    )
