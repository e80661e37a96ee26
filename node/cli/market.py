"""``p2pex order place | cancel | amend``, ``p2pex book`` and ``p2pex trades``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.arguments import positive_int
from node.client.clients import Client, Submitted
from node.errors import ConfigError
from node.keys import load_key

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

DEFAULT_NODE = "127.0.0.1:7400"


def _client(args: argparse.Namespace, *, signed: bool) -> Client:
    key = None
    if signed:
        if args.key is None:
            msg = "--key KEYFILE is required to sign"
            raise ConfigError(msg)
        key = load_key(Path(args.key))
    return Client.connect(args.node, key=key)


def _report(client: Client, done: Submitted, wait: bool) -> None:
    print(f"accepted tx {done.tx_id.hex()} nonce {done.nonce}", end="")
    if done.order_id is not None:
        print(f" order {done.order_id} (client id {done.client_order_id})", end="")
    print()
    for event in done.events:
        fields = " ".join(f"{k}={v}" for k, v in sorted(event.items()) if k != "type")
        print(f"  {event['type']}: {fields}")
    if wait:
        print(f"committed in block {client.wait_committed(done.tx_id)}")


def run_place(args: argparse.Namespace) -> int:
    """Sign and submit one order."""
    with _client(args, signed=True) as client:
        done = client.place_order(
            args.product,
            args.slot,
            args.side,
            args.price,
            args.quantity,
            client_order_id=args.client_order_id,
            tif=args.tif,
            expires_at=args.expires_at,
            post_only=args.post_only,
            stp=args.stp,
        )
        _report(client, done, args.wait)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    """Cancel one of the key's orders."""
    with _client(args, signed=True) as client:
        _report(client, client.cancel_order(args.client_order_id), args.wait)
    return 0


def run_amend(args: argparse.Namespace) -> int:
    """Amend one of the key's orders."""
    with _client(args, signed=True) as client:
        done = client.amend_order(args.client_order_id, price=args.price, quantity=args.quantity)
        _report(client, done, args.wait)
    return 0


def run_book(args: argparse.Namespace) -> int:
    """Print the L2 book of (product, slot)."""
    with _client(args, signed=False) as client:
        book = client.book(args.product, args.slot, args.levels)
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
        account = bytes.fromhex(args.account)
    elif args.key:
        account = load_key(Path(args.key)).account_id
    with _client(args, signed=False) as client:
        trades: list[dict[str, Any]] = client.trades(account, limit=args.limit)
    for t in trades:
        print(
            f"block {t['height']} {t['product']} slot {t['slot']} {t['quantity']} Wh "
            f"@ {t['price']} maker {t['maker_account'].hex()[:12]} (order {t['maker_order']}) "
            f"taker {t['taker_account'].hex()[:12]} (order {t['taker_order']})"
        )
    print(f"{len(trades)} trades")
    return 0


def _node_flag(parser: argparse.ArgumentParser, key: bool) -> None:
    parser.add_argument("--node", default=DEFAULT_NODE, metavar="HOST:PORT", help="node address")
    if key:
        parser.add_argument("--key", metavar="KEYFILE", help="signing key (p2pex keygen)")


def add_order_command(commands: SubParsers) -> None:
    """Register ``p2pex order place | cancel | amend``."""
    parser = commands.add_parser(
        "order",
        help="place, cancel or amend a signed order",
        description="Sign an order transaction with your key and submit it to a node.",
    )
    sub = parser.add_subparsers(title="order commands", metavar="COMMAND")
    place = sub.add_parser("place", help="place an order", description="Place an order.")
    _node_flag(place, key=True)
    place.add_argument("--product", default="electricity", choices=["electricity", "heat"])
    place.add_argument("--slot", type=int, required=True, help="delivery slot index")
    place.add_argument("--side", required=True, choices=["bid", "ask"])
    place.add_argument("--price", type=int, default=0, help="ticks per kWh (0: market order)")
    place.add_argument("--quantity", type=int, required=True, help="Wh")
    place.add_argument("--tif", default="GTC", choices=["GTC", "IOC", "FOK", "GTD"])
    place.add_argument("--expires-at", type=int, default=0, help="GTD expiry (ns)")
    place.add_argument("--post-only", action="store_true")
    place.add_argument("--stp", default="", help="self-trade prevention mode")
    place.add_argument("--client-order-id", type=int, help="default: the nonce")
    place.add_argument("--wait", action="store_true", help="wait until committed")
    place.set_defaults(handler=run_place)
    cancel = sub.add_parser("cancel", help="cancel an order", description="Cancel an order.")
    _node_flag(cancel, key=True)
    cancel.add_argument("--client-order-id", type=int, required=True)
    cancel.add_argument("--wait", action="store_true", help="wait until committed")
    cancel.set_defaults(handler=run_cancel)
    amend = sub.add_parser(
        "amend", help="change price / quantity", description="Amend a resting order."
    )
    _node_flag(amend, key=True)
    amend.add_argument("--client-order-id", type=int, required=True)
    amend.add_argument("--price", type=int, default=0, help="new price (0: unchanged)")
    amend.add_argument("--quantity", type=int, default=0, help="new quantity (0: unchanged)")
    amend.add_argument("--wait", action="store_true", help="wait until committed")
    amend.set_defaults(handler=run_amend)

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=usage)


def add_book_command(commands: SubParsers) -> None:
    """Register ``p2pex book``."""
    parser = commands.add_parser(
        "book", help="show an order book", description="Print the L2 depth of one book."
    )
    _node_flag(parser, key=False)
    parser.add_argument("--product", default="electricity", choices=["electricity", "heat"])
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--levels", type=int, default=10)
    parser.set_defaults(handler=run_book)


def add_trades_command(commands: SubParsers) -> None:
    """Register ``p2pex trades``."""
    parser = commands.add_parser(
        "trades",
        help="list the newest trades",
        description="List the newest trades, of every account or of one.",
    )
    _node_flag(parser, key=True)
    parser.add_argument("--account", metavar="HEX", help="account id (default: --key's, or all)")
    parser.add_argument(
        "--limit", type=positive_int, default=50, help="print the newest N (default: 50)"
    )
    parser.set_defaults(handler=run_trades)
