"""``p2pex order place | cancel | amend``, ``p2pex book`` and ``p2pex trades``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli import output
from node.cli.arguments import positive_int
from node.cli.common import (
    DEFAULT_NODE,
    PRODUCTS,
    connect,
    formatter,
    node_flag,
    parse_account,
    report_submitted,
)
from node.errors import ConfigError
from node.keys import load_key
from orderbook.types import STPMode, TimeInForce

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["DEFAULT_NODE", "add_book_command", "add_order_command", "add_trades_command"]

STP_MODES = tuple(m.value for m in STPMode)
TIFS = tuple(t.value for t in TimeInForce)
TRADE_COLUMNS = (
    "height",
    "tx_id",
    "product",
    "slot",
    "price",
    "quantity",
    "maker_account",
    "maker_order",
    "taker_account",
    "taker_order",
)


def check_place(args: argparse.Namespace) -> None:
    """Refuse, before signing, the orders the market would reject for their flags.

    Raises:
        ConfigError: no ``--price`` and no ``--market``, or a GTD order without
            ``--expires-at`` (or an expiry on another kind).
    """
    if args.market and args.price is not None:
        msg = "give --price (a limit order) or --market, not both"
        raise ConfigError(msg)
    if not args.market and args.price is None:
        msg = (
            "give --price TICKS (a limit order, ticks per kWh) or --market (a market "
            "order: trades at whatever price the book offers)"
        )
        raise ConfigError(msg)
    if args.tif == "GTD" and not args.expires_at:
        msg = "a GTD order needs --expires-at (Unix time in ns, the block clock)"
        raise ConfigError(msg)
    if args.tif != "GTD" and args.expires_at:
        msg = f"--expires-at is for GTD orders only (this one is {args.tif})"
        raise ConfigError(msg)


def run_place(args: argparse.Namespace) -> int:
    """Sign and submit one order."""
    check_place(args)
    with connect(args, signed=True) as client:
        done = client.place_order(
            args.product,
            args.slot,
            args.side,
            0 if args.market else args.price,
            args.quantity,
            client_order_id=args.client_order_id,
            tif=args.tif,
            expires_at=args.expires_at,
            post_only=args.post_only,
            stp=args.stp or "",
        )
        kind = "market" if args.market else f"@ {args.price}"
        what = f"order {args.side} {args.quantity} Wh {kind} {args.product} slot {args.slot}"
        return report_submitted(client, done, wait=args.wait, what=what)


def run_cancel(args: argparse.Namespace) -> int:
    """Cancel one of the key's orders."""
    with connect(args, signed=True) as client:
        done = client.cancel_order(args.client_order_id)
        what = f"cancel of order {args.client_order_id}"
        return report_submitted(client, done, wait=args.wait, what=what)


def run_amend(args: argparse.Namespace) -> int:
    """Amend one of the key's orders."""
    if not args.price and not args.quantity:
        msg = "give --price and / or --quantity: an amend must change something"
        raise ConfigError(msg)
    with connect(args, signed=True) as client:
        done = client.amend_order(args.client_order_id, price=args.price, quantity=args.quantity)
        what = f"amend of order {args.client_order_id}"
        return report_submitted(client, done, wait=args.wait, what=what)


def run_book(args: argparse.Namespace) -> int:
    """Print the L2 book of (product, slot)."""
    with connect(args, signed=False) as client:
        book = client.book(args.product, args.slot, args.levels)
    if args.json:
        output.print_json({"product": args.product, "slot": args.slot, **book})
        return 0
    state = "closed" if book["closed"] else "open"
    print(f"{args.product} slot {args.slot} ({state})")
    print(f"{'bid Wh':>12} {'price':>8} | {'price':<8} {'ask Wh':<12}")
    rows = max(len(book["bids"]), len(book["asks"]))
    for i in range(rows):
        bid = book["bids"][i] if i < len(book["bids"]) else None
        ask = book["asks"][i] if i < len(book["asks"]) else None
        left = f"{bid[1]:>12} {bid[0]:>8}" if bid else " " * 21
        right = f"{ask[0]:<8} {ask[1]:<12}" if ask else ""
        print(f"{left} | {right}")
    return 0


def run_trades(args: argparse.Namespace) -> int:
    """Print trades (of an account, or all)."""
    account: bytes | None = None
    if args.account:
        account = parse_account(args.account)
    elif args.key:
        account = load_key(Path(args.key)).account_id
    with connect(args, signed=False) as client:
        trades: list[dict[str, Any]] = client.trades(account, limit=args.limit)
    if args.slot is not None:
        trades = [t for t in trades if t["slot"] == args.slot]
    if args.csv:
        output.write_csv(args.csv, trades, TRADE_COLUMNS)
        if args.csv == "-":
            return 0
    if args.json:
        output.print_json({"trades": trades})
        return 0
    rows = [
        [
            t["height"],
            t["product"],
            t["slot"],
            t["quantity"],
            t["price"],
            f"{output.short(t['maker_account'])}/{t['maker_order']}",
            f"{output.short(t['taker_account'])}/{t['taker_order']}",
        ]
        for t in trades
    ]
    if rows:
        headers = ["block", "product", "slot", "Wh", "price", "maker/order", "taker/order"]
        print(output.table(headers, rows))
    print(f"{len(trades)} trades")
    return 0


def add_order_command(commands: SubParsers) -> None:
    """Register ``p2pex order place | cancel | amend``."""
    parser = commands.add_parser(
        "order",
        help="place, cancel or amend a signed order",
        formatter_class=formatter(),
        description="Sign an order transaction with your key and submit it to a node. "
        "The key must be registered first (p2pex register). A slot's book opens with its "
        "first accepted order; after its gate closes (p2pex operator close) orders for it "
        "are rejected. Exit code 3 when the market rejects the order (the reason and what "
        "to do are printed on stderr), 1 when the node refuses the transaction.",
    )
    sub = parser.add_subparsers(title="order commands", metavar="COMMAND")
    place = sub.add_parser(
        "place",
        help="place an order",
        formatter_class=formatter(),
        description="Place a limit order (--price TICKS, ticks per kWh) or a market order "
        "(--market) for QUANTITY Wh of a delivery slot. A producer may only ask, a consumer "
        "only bid.",
    )
    node_flag(place, key=True)
    place.add_argument("--product", default="electricity", choices=PRODUCTS, help="what is traded")
    place.add_argument("--slot", type=int, required=True, help="delivery slot index")
    place.add_argument("--side", required=True, choices=["bid", "ask"], help="bid buys, ask sells")
    price = place.add_mutually_exclusive_group()
    price.add_argument(
        "--price", type=positive_int, help="limit price, ticks per kWh (required unless --market)"
    )
    price.add_argument(
        "--market", action="store_true", help="a market order: no limit price, takes the book"
    )
    place.add_argument("--quantity", type=positive_int, required=True, help="energy, Wh")
    place.add_argument(
        "--tif",
        default="GTC",
        choices=TIFS,
        help="time in force: good till cancelled, immediate or cancel, fill or kill, "
        "good till --expires-at",
    )
    place.add_argument(
        "--expires-at", type=int, default=0, help="GTD only: expiry, Unix time in ns"
    )
    place.add_argument(
        "--post-only", action="store_true", help="reject instead of trading on arrival"
    )
    place.add_argument(
        "--stp",
        choices=STP_MODES,
        help="self-trade prevention: what happens if it meets your own order "
        "(default: the market's, cancel_newest)",
    )
    place.add_argument("--client-order-id", type=int, help="your id for it (default: the nonce)")
    place.add_argument("--wait", action="store_true", help="wait until committed")
    place.set_defaults(handler=run_place)
    cancel = sub.add_parser(
        "cancel",
        help="cancel an order",
        formatter_class=formatter(),
        description="Cancel one of your resting orders, named by its client order id.",
    )
    node_flag(cancel, key=True)
    cancel.add_argument("--client-order-id", type=int, required=True)
    cancel.add_argument("--wait", action="store_true", help="wait until committed")
    cancel.set_defaults(handler=run_cancel)
    amend = sub.add_parser(
        "amend",
        help="change price / quantity",
        formatter_class=formatter(),
        description="Amend one of your resting orders: a new price and / or quantity.",
    )
    node_flag(amend, key=True)
    amend.add_argument("--client-order-id", type=int, required=True)
    amend.add_argument("--price", type=int, default=0, help="new price, ticks/kWh (0: unchanged)")
    amend.add_argument("--quantity", type=int, default=0, help="new quantity, Wh (0: unchanged)")
    amend.add_argument("--wait", action="store_true", help="wait until committed")
    amend.set_defaults(handler=run_amend)

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=usage)


def add_book_command(commands: SubParsers) -> None:
    """Register ``p2pex book``."""
    parser = commands.add_parser(
        "book",
        help="show an order book",
        formatter_class=formatter(),
        description="Print the L2 depth of one book: Wh and price (ticks/kWh) per level, "
        "best first.",
    )
    node_flag(parser, key=False)
    parser.add_argument("--product", default="electricity", choices=PRODUCTS, help="what is traded")
    parser.add_argument("--slot", type=int, required=True, help="delivery slot index")
    parser.add_argument("--levels", type=positive_int, default=10, help="price levels per side")
    output.add_json_flag(parser)
    parser.set_defaults(handler=run_book)


def add_trades_command(commands: SubParsers) -> None:
    """Register ``p2pex trades``."""
    parser = commands.add_parser(
        "trades",
        help="list the newest trades",
        formatter_class=formatter(),
        description="List the newest trades, of every account or of one, oldest first: "
        "block, product, slot, Wh, price (ticks/kWh), maker and taker (account prefix / "
        "market order id). --json and --csv give full account ids.",
    )
    node_flag(parser, key=True, key_help="list this key's trades")
    parser.add_argument("--account", metavar="HEX", help="account id, 64 hex digits")
    parser.add_argument("--slot", type=int, help="only this slot (of the newest --limit)")
    parser.add_argument(
        "--limit", type=positive_int, default=50, help="the newest N (at most 10000)"
    )
    output.add_json_flag(parser)
    output.add_csv_flag(parser)
    parser.set_defaults(handler=run_trades)
