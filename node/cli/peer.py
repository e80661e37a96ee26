"""``p2pex register``, ``peers``, ``status``, ``curve`` and ``settlements``: a peer's commands.

Units (the ledger's integers, ``market.units``): energy in Wh, prices in
ticks per kWh, money in tick·Wh; a curve's ``a`` in milli-ticks per kWh²,
``b`` in ticks per kWh, ``c`` in tick·Wh, bounds in Wh (producers >= 0,
consumers <= 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.block import decode_block
from ledger.payloads import TECHNOLOGIES
from ledger.results import RejectionRecord, decode_result
from market import transactions as txn
from market.state import ROLES
from node.cli import output
from node.cli.arguments import positive_int
from node.cli.common import PRODUCTS, connect, formatter, node_flag, parse_account, report_submitted
from node.client.clients import Client
from node.errors import ConfigError
from node.keys import load_key

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

SETTLEMENT_COLUMNS = ("height", "product", "slot", "account", "energy_wh", "payment")


def load_case_file(path: str) -> Any:
    """A clearing case (``clearing.Case``) from a JSON file, or ``reference``.

    Raises:
        ConfigError: the file cannot be read or is not a valid case (with why).
    """
    from clearing.case import load_case, load_reference_case  # cvxpy: only when asked
    from clearing.errors import ClearingError

    try:
        return load_reference_case() if path == "reference" else load_case(path)
    except ClearingError as exc:
        raise ConfigError(str(exc)) from exc


def case_peer(case: Any, name: str) -> Any:
    """The peer ``name`` of ``case``.

    Raises:
        ConfigError: no such peer (the names it has are listed).
    """
    for peer in case.peers:
        if peer.name == name:
            return peer
    msg = f"case {case.name!r} has no peer {name!r}; its peers: {', '.join(case.names)}"
    raise ConfigError(msg)


# -- register ----------------------------------------------------------------------------------


def run_register(args: argparse.Namespace) -> int:
    """Register the key's account as a peer (``RegisterPeer``)."""
    name, bus, role = args.name, args.bus, args.role
    if args.case is not None:
        case = load_case_file(args.case)
        if name is None:
            msg = "--case needs --name: the case's peer to register as"
            raise ConfigError(msg)
        peer = case_peer(case, name)
        bus = bus or case.network.peer_bus.get(name)
        role = role or peer.role.value
    if not (name and bus and role):
        msg = "give --name, --bus and --role (or --case FILE --name PEER)"
        raise ConfigError(msg)
    if role not in ROLES:
        msg = f"--role {role!r}, want one of {', '.join(ROLES)}"
        raise ConfigError(msg)
    with connect(args, signed=True) as client:
        done = client.register(name, bus=bus, role=role)
        code = report_submitted(
            client, done, wait=args.wait and not args.technology, what=f"register {name}"
        )
        if code or not args.technology:
            return code
        # what the peer is (12.3): the label mode-1 preferences select on
        declared = client.submit(txn.DeclareTechnology(args.technology))
        return report_submitted(client, declared, wait=args.wait, what=f"technology {name}")


def add_register_command(commands: SubParsers) -> None:
    """Register ``p2pex register``."""
    parser = commands.add_parser(
        "register",
        help="register your key as a peer (name, bus, role)",
        formatter_class=formatter(),
        description="Register the account of --key as a peer of the market: a RegisterPeer "
        "transaction. Every other transaction of an unregistered key is refused. The role "
        "decides what it may do: a producer only sells (curve q >= 0), a consumer only buys "
        "(q <= 0), a prosumer and the grid both. With --case FILE --name PEER the bus and "
        "role come from that clearing case. Exit code 3 if the market rejects it "
        "(already registered, bad role or name).",
    )
    node_flag(parser, key=True)
    parser.add_argument("--name", help="peer name (1-64 characters; the clearing's peer name)")
    parser.add_argument("--bus", help="the feeder bus the peer is connected to (1-64 characters)")
    parser.add_argument("--role", choices=ROLES, help="what the peer may do")
    parser.add_argument(
        "--technology",
        choices=sorted(TECHNOLOGIES),
        help="what the peer is (DeclareTechnology): mode-1 orders may accept only some "
        "(default: none declared)",
    )
    parser.add_argument(
        "--case", metavar="FILE", help="take --bus and --role of peer --name from this case JSON"
    )
    parser.add_argument("--wait", action="store_true", help="wait until committed")
    parser.set_defaults(handler=run_register)


# -- peers -------------------------------------------------------------------------------------


def run_peers(args: argparse.Namespace) -> int:
    """List the registered peers, one row each."""
    with connect(args, signed=False) as client:
        peers = client.peers()
    if args.json:
        output.print_json({"peers": peers})
        return 0
    rows = [[p["name"], p["role"], p["bus"], p["account"].hex()] for p in peers]
    if rows:
        print(output.table(["name", "role", "bus", "account"], rows))
    print(f"{len(peers)} peers")
    return 0


def add_peers_command(commands: SubParsers) -> None:
    """Register ``p2pex peers``."""
    parser = commands.add_parser(
        "peers",
        help="list the registered peers",
        formatter_class=formatter(),
        description="List the registered peers: name, role, bus and account id, one row each.",
    )
    node_flag(parser, key=False)
    output.add_json_flag(parser)
    parser.set_defaults(handler=run_peers)


# -- status ------------------------------------------------------------------------------------


def scan_named_slots(client: Client, window: int = 64) -> set[tuple[str, int]]:
    """The (product, slot)s an accepted order or curve has named, from the node's blocks.

    A slot opens with its first order or curve (there is no open
    transaction); a rejected one names nothing.
    """
    named: set[tuple[str, int]] = set()
    height = int(client.status()["height"])
    for start in range(0, height, window):
        for data in client.blocks(start, min(window, height - start)):
            block = decode_block(data)
            rejected = set()
            for raw in block.results:
                record = decode_result(raw)
                if isinstance(record, RejectionRecord):
                    rejected.add(record.tx_id)
            for raw in block.transactions:
                signed = txn.decode(raw)
                payload = signed.transaction.payload
                if signed.tx_id in rejected:
                    continue
                if isinstance(payload, txn.PlaceOrder | txn.DeclareCurve):
                    named.add((payload.product, payload.slot))
    return named


def slot_states(status: dict[str, Any], named: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """Every slot the chain knows, with its state: ``open``, ``closed`` or ``cleared``.

    >>> rows = slot_states({"closed": [["electricity", 2]], "cleared": []}, {("electricity", 3)})
    >>> [(r["slot"], r["state"]) for r in rows]
    [(2, 'closed'), (3, 'open')]
    """
    closed = {(p, s) for p, s in status.get("closed", [])}
    cleared = {(p, s) for p, s in status.get("cleared", [])}
    rows = []
    for product, slot in sorted(named | closed | cleared):
        key = (product, slot)
        state = "cleared" if key in cleared else "closed" if key in closed else "open"
        rows.append({"product": product, "slot": slot, "state": state})
    return rows


def run_status(args: argparse.Namespace) -> int:
    """Print the node's height, head and the slots with their state."""
    with connect(args, signed=False) as client:
        status = client.status()
        if "opened" in status:  # a node that reports its open books itself
            named = {(p, s) for p, s in status["opened"]}
        elif args.scan:
            named = scan_named_slots(client)
        else:
            named = set()
    slots = slot_states(status, named)
    if args.json:
        output.print_json({**status, "slots": slots})
        return 0
    print(f"role      {status['role']}")
    print(f"chain     {status['chain_id']}")
    print(f"height    {status['height']}")
    print(f"head      {status['head'].hex() or '(no blocks)'}")
    print(f"operator  {status['operator'].hex()}")
    for refused in status.get("refused", []):
        print(f"REFUSED   block {refused['height']}: {refused['reason']}")
    if slots:
        print(output.table(["product", "slot", "state"], [list(r.values()) for r in slots]))
    else:
        print("no slots yet (a slot opens with its first order or curve)")
    return 0


def add_status_command(commands: SubParsers) -> None:
    """Register ``p2pex status``."""
    parser = commands.add_parser(
        "status",
        help="show the node's chain height, head and slots",
        formatter_class=formatter(),
        description="Show a node's role, chain id, height (blocks stored), head block hash, "
        "operator key and every slot with its state: open (an accepted order or curve named "
        "it), closed (its gate closed: CloseSlot) or cleared (its clearing is published). "
        "Open slots are found by reading the node's blocks (--no-scan skips that).",
    )
    node_flag(parser, key=False)
    parser.add_argument(
        "--no-scan",
        dest="scan",
        action="store_false",
        help="do not read the blocks to find open slots (closed and cleared ones only)",
    )
    output.add_json_flag(parser)
    parser.set_defaults(handler=run_status)


# -- curve -------------------------------------------------------------------------------------


def run_curve(args: argparse.Namespace) -> int:
    """Declare this peer's cost curve for one slot's clearing (``DeclareCurve``)."""
    if args.case is not None:
        from market.gate_clearing import curve_for_peer

        case = load_case_file(args.case)
        if args.peer is None:
            msg = "--case needs --peer NAME: whose curve to declare"
            raise ConfigError(msg)
        curve = curve_for_peer(case_peer(case, args.peer), args.slot, product=args.product)
    else:
        missing = [
            f"--{n.replace('_', '-')}" for n in ("b", "q_min", "q_max") if getattr(args, n) is None
        ]
        if missing:
            msg = f"give {', '.join(missing)} (or --case FILE --peer NAME)"
            raise ConfigError(msg)
        curve = txn.DeclareCurve(
            args.product, args.slot, args.a, args.b, args.c, args.q_min, args.q_max
        )
    with connect(args, signed=True) as client:
        done = client.submit(curve)
        what = (
            f"curve for {curve.product} slot {curve.slot} (a={curve.a} b={curve.b} c={curve.c} "
            f"q {curve.q_min}..{curve.q_max} Wh)"
        )
        return report_submitted(client, done, wait=args.wait, what=what)


def add_curve_command(commands: SubParsers) -> None:
    """Register ``p2pex curve``."""
    parser = commands.add_parser(
        "curve",
        help="declare your cost curve for a slot's clearing",
        formatter_class=formatter(),
        description="Declare this peer's cost curve for the optimal clearing of one slot "
        "(DeclareCurve): the chapter's cost 1/2 a P^2 + b P + c over P in [q-min, q-max], "
        "in the ledger's integers (q in Wh, a in milli-ticks/kWh^2, b in ticks/kWh, c in "
        "tick*Wh; see docs/walkthrough.md, Units). Producers inject (0 <= q-min <= q-max), "
        "consumers withdraw (q-min <= q-max <= 0). The last declaration before the gate "
        "closes counts. "
        "--case FILE --peer NAME converts that case peer's curve (kW, currency) with "
        "market.units (1 h slots, tick 0.0001). A curve opens the slot if nothing did.",
    )
    node_flag(parser, key=True)
    parser.add_argument("--product", default="electricity", choices=PRODUCTS, help="what is traded")
    parser.add_argument("--slot", type=int, required=True, help="delivery slot index")
    parser.add_argument("--a", type=int, default=0, help="quadratic term, milli-ticks per kWh^2")
    parser.add_argument("--b", type=int, help="linear term, ticks per kWh")
    parser.add_argument("--c", type=int, default=0, help="constant term, tick*Wh")
    parser.add_argument("--q-min", type=int, help="lower bound, Wh (consumers negative)")
    parser.add_argument("--q-max", type=int, help="upper bound, Wh (consumers negative)")
    parser.add_argument("--case", metavar="FILE", help="take the curve from this case JSON")
    parser.add_argument("--peer", metavar="NAME", help="with --case: the case's peer")
    parser.add_argument("--wait", action="store_true", help="wait until committed")
    parser.set_defaults(handler=run_curve)


# -- settlements -------------------------------------------------------------------------------


def account_of(args: argparse.Namespace, *, required: bool) -> bytes | None:
    """``--account HEX``, else the account of ``--key``, else None (or an error if required).

    Raises:
        ConfigError: a malformed ``--account``, or neither flag when one is required.
    """
    if args.account:
        return parse_account(args.account)
    if args.key:
        return load_key(Path(args.key)).account_id
    if required:
        msg = "give --account HEX or --key KEYFILE (whose settlements)"
        raise ConfigError(msg)
    return None


def run_settlements(args: argparse.Namespace) -> int:
    """List an account's clearing settlements."""
    account = account_of(args, required=True)
    assert account is not None
    with connect(args, signed=False) as client:
        rows = client.settlements(account, limit=args.limit)
    rows = [{**r, "account": account} for r in rows]
    if args.slot is not None:
        rows = [r for r in rows if r["slot"] == args.slot]
    if args.csv:
        output.write_csv(args.csv, rows, SETTLEMENT_COLUMNS)
        if args.csv == "-":
            return 0
    if args.json:
        output.print_json({"account": account, "settlements": rows})
        return 0
    table = [[r["height"], r["product"], r["slot"], r["energy_wh"], r["payment"]] for r in rows]
    if table:
        print(output.table(["block", "product", "slot", "energy Wh", "payment tick*Wh"], table))
    print(f"{len(rows)} settlements of {account.hex()}")
    return 0


def add_settlements_command(commands: SubParsers) -> None:
    """Register ``p2pex settlements``."""
    parser = commands.add_parser(
        "settlements",
        help="list an account's clearing settlements",
        formatter_class=formatter(),
        description="List the clearing settlements of an account, newest last: per cleared "
        "slot the energy in Wh (injected > 0, withdrawn < 0) and the payment in tick*Wh "
        "(received > 0, paid < 0, penalties deducted).",
    )
    node_flag(parser, key=True, key_help="whose settlements: this key's account")
    parser.add_argument("--account", metavar="HEX", help="account id (64 hex digits)")
    parser.add_argument("--slot", type=int, help="only this slot")
    parser.add_argument(
        "--limit", type=positive_int, default=1000, help="the newest N (at most 10000)"
    )
    output.add_json_flag(parser)
    output.add_csv_flag(parser)
    parser.set_defaults(handler=run_settlements)
