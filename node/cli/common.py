"""What the ``p2pex`` commands that talk to a node share: flags, the client, submit reports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from node.client.clients import Client, Submitted
from node.errors import ConfigError
from node.keys import load_key

DEFAULT_NODE = "127.0.0.1:7400"
PRODUCTS = ("electricity", "heat")
EXIT_REJECTED = 3  # the node took the transaction, the market rejected it (see its reason)

# What to do about each market rejection reason (``RejectionRecord.reason``).
HINTS = {
    "role_not_permitted": "a producer may only sell (ask; curve q >= 0) and a consumer only "
    "buy (bid; q <= 0); a prosumer key may do both",
    "slot_closed": "the slot's gate is closed: use a later --slot",
    "duplicate_client_order_id": "this key already used that --client-order-id: pick another "
    "or leave it out (the nonce is used)",
    "unknown_order": "no order of this key has that --client-order-id",
    "already_registered": "this key is registered already (see p2pex peers)",
    "invalid_role": "--role must be producer, consumer, prosumer or grid",
    "invalid_name": "--name and --bus must be 1 to 64 characters",
    "invalid_enum": "check --product, --side, --tif and --stp",
    "invalid_curve": "--q-min must not be above --q-max",
    "invalid_tariff": "--alpha and --beta must be >= 0",
    "invalid_quantity": "--quantity must be a positive number of Wh",
    "quantity_too_large": "--quantity is above the market's largest order",
    "invalid_price": "--price must be a positive number of ticks per kWh (or --market)",
    "off_tick": "--price must be a multiple of the market's price step",
    "price_out_of_bounds": "--price is outside the market's price band",
    "invalid_tif": "GTD needs a limit --price (a market order cannot rest)",
    "invalid_stp": "--stp must be cancel_newest, cancel_oldest, cancel_both or decrement",
    "invalid_post_only": "--post-only needs a GTC or GTD limit order",
    "invalid_expiry": "GTD needs --expires-at (ns); other orders take none",
    "expired_on_arrival": "--expires-at is already past on the block clock (Unix ns)",
    "no_change": "an amend must change --price or --quantity",
    "would_take": "a --post-only order may not trade on arrival: lower a bid or raise an ask",
    "fok_unfillable": "a FOK order must fill at once in full: lower the quantity or use IOC",
    "ioc_unfilled": "an IOC order found nothing to trade with at its price",
    "no_liquidity": "a market order found nothing to trade against",
    "self_trade": "it would have traded with your own order (--stp)",
    "slot_open": "close the slot first (p2pex operator close)",
    "already_cleared": "this slot's clearing is published already",
}


def node_flag(parser: argparse.ArgumentParser, *, key: bool, key_help: str | None = None) -> None:
    """``--node HOST:PORT`` and, for signed commands, ``--key KEYFILE``."""
    parser.add_argument(
        "--node",
        default=DEFAULT_NODE,
        metavar="HOST:PORT",
        help="node address (an operator or a replica: replicas forward writes)",
    )
    if key:
        parser.add_argument(
            "--key", metavar="KEYFILE", help=key_help or "signing key file (p2pex keygen)"
        )


def connect(args: argparse.Namespace, *, signed: bool) -> Client:
    """A client of ``--node``, with ``--key`` loaded when the command signs.

    Raises:
        ConfigError: a signed command without ``--key``, or an unreadable key file.
    """
    key = None
    if signed:
        if getattr(args, "key", None) is None:
            msg = "--key KEYFILE is required to sign (create one with p2pex keygen)"
            raise ConfigError(msg)
        key = load_key(Path(args.key))
    return Client.connect(args.node, key=key)


def rejection_of(done: Submitted) -> str | None:
    """The market's rejection reason in a submit's events, or None if it was taken."""
    for event in done.events:
        if event.get("type") == "rejected":
            return str(event.get("reason", "rejected"))
    return None


def explain(reason: str) -> str:
    """One line: the rejection reason and what to do about it."""
    hint = HINTS.get(reason)
    return f"rejected: {reason}" + (f" ({hint})" if hint else "")


def report_submitted(
    client: Client, done: Submitted, *, wait: bool, what: str, rejected: str | None = None
) -> int:
    """Print what happened to a submitted transaction; return the exit code.

    A market rejection (the transaction is in the chain, its nonce used, but it
    changed nothing) is printed once, on stderr, with what to do, and gives
    ``EXIT_REJECTED``.
    """
    reason = rejected if rejected is not None else rejection_of(done)
    if reason is not None:
        print(f"p2pex: {what} {explain(reason)}; tx {done.tx_id.hex()}", file=sys.stderr)
        return EXIT_REJECTED
    line = f"{what}: accepted tx {done.tx_id.hex()} nonce {done.nonce}"
    if done.order_id is not None:
        line += f" order {done.order_id} (client id {done.client_order_id})"
    print(line)
    for event in done.events:
        if event.get("type") == "accepted":
            continue  # said on the line above
        print(f"  {describe_event(event)}")
    if wait:
        print(f"committed in block {client.wait_committed(done.tx_id)}")
    return 0


def describe_event(event: dict[str, Any]) -> str:
    """One short line for an order book event (account ids cut to 12 hex digits)."""
    if event.get("type") == "trade":
        return (
            f"trade: {event['quantity']} Wh @ {event['price']} with order "
            f"{event['maker_order_id']} of {_show(event['maker_owner'])}"
        )
    fields = " ".join(f"{k}={_show(v)}" for k, v in sorted(event.items()) if k != "type")
    return f"{event.get('type')}: {fields}"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()[:12]
    if isinstance(value, str) and len(value) == 64:  # an account id in hex
        return value[:12]
    return str(value)


def parse_account(text: str) -> bytes:
    """An account id from 64 hex digits.

    Raises:
        ConfigError: anything else, with what to give instead.
    """
    try:
        account = bytes.fromhex(text)
    except ValueError:
        account = b""
    if len(account) != 32:
        msg = (
            f"--account {text!r} is not an account id (64 hex digits, as printed by "
            "p2pex keygen or p2pex peers); give --key KEYFILE for your own"
        )
        raise ConfigError(msg)
    return account


def formatter() -> type[argparse.HelpFormatter]:
    """The help formatter of every command: defaults shown, description kept as written."""
    return DefaultsFormatter


class DefaultsFormatter(argparse.HelpFormatter):
    """Show each flag's default, except the empty ones (None, False, "")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or default is None
            or default is False
            or default == ""
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return text + " (default: %(default)s)"
