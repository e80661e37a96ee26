"""``p2pex chain verify | show | prove``: audit a chain from a data directory or a node."""

from __future__ import annotations

import argparse
import datetime
import hashlib
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.audit import (
    AuditReport,
    decode_inclusion_proof,
    prove_result,
    verify_inclusion_proof,
)
from ledger.block import decode_block, decode_header
from ledger.errors import LedgerError, StoreCorrupted
from ledger.integrity import prove_stored_transaction, verify_store
from ledger.results import decode_result
from ledger.sqlite_store import SqliteBlockStore
from ledger.store import BlockStore, MemoryBlockStore
from market import replay
from market.state import ExchangeState
from node.cli import output
from node.cli.arguments import positive_int
from node.client.clients import Client
from node.errors import BlockRefused, ConfigError, NodeError
from node.keys import load_key, parse_public_key
from node.pipeline import chain
from node.pipeline.parallel_audit import audit_file, default_workers

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def open_source(args: argparse.Namespace) -> BlockStore:
    """The chain to read: a data directory's store (read-only) or every block of a node."""
    if args.data_dir is not None:
        path = Path(args.data_dir) / chain.CHAIN_FILE
        if not path.exists():
            msg = f"no chain in {args.data_dir} ({path} is missing)"
            raise ConfigError(msg)
        try:
            return SqliteBlockStore(path, readonly=True)
        except StoreCorrupted:
            raise  # a damaged chain: the caller reports where
        except LedgerError as exc:
            raise ConfigError(str(exc)) from exc
    if args.node is None:
        msg = "give --data-dir DIR or --node HOST:PORT"
        raise ConfigError(msg)
    store = MemoryBlockStore()
    with Client.connect(args.node) as client:
        while True:
            blocks = client.blocks(store.height, 512)
            if not blocks:
                return store
            for data in blocks:
                store.append(decode_block(data))


def operator_key(args: argparse.Namespace) -> bytes | None:
    """The operator's public key: the flags, else the data directory's pin, else None.

    Raises:
        ConfigError: the flags name another key than the one pinned (verify
            against the pin, or say which one is meant with the flag alone).
    """
    pinned = chain.pinned_operator_key(Path(args.data_dir)) if args.data_dir else None
    given: bytes | None = None
    if args.operator_public_key:
        given = parse_public_key(args.operator_public_key)
    elif args.operator_key:
        given = load_key(Path(args.operator_key)).public_key_bytes()
    if given is not None and pinned is not None and given != pinned:
        print(
            f"p2pex: WARNING: {args.data_dir} is pinned to operator {pinned.hex()}; "
            f"verifying against the given key {given.hex()} instead",
            file=sys.stderr,
        )
    return given if given is not None else pinned


def _failed(args: argparse.Namespace, what: str, exc: LedgerError) -> int:
    """Report "<what>: FAILED at block N: Error: reason" for a damaged store; return 1."""
    height = getattr(exc, "height", None)
    where = f" at block {height}" if height is not None else ""
    message = f"FAILED{where}: {type(exc).__name__}: {exc}"
    if args.json:
        output.print_json({"ok": False, "first_bad_height": height, what: message})
    else:
        print(f"{what}: {message}")
    return 1


def run_verify(args: argparse.Namespace) -> int:
    """Audit every block and index row against the operator key, then replay the chain.

    With ``--json`` the outcome is one JSON document on stdout (progress and
    warnings go to stderr); else lines for people.
    """
    say = output.note if args.json else print
    try:
        store = open_source(args)
    except StoreCorrupted as exc:
        return _failed(args, "ledger audit", exc)
    try:
        if store.height == 0:
            _verified(args, {"ok": True, "blocks": 0, "audit": "OK: empty chain"})
            return 0
        workers = default_workers(store.height) if args.workers is None else args.workers
        auditor = None
        if args.data_dir is not None and workers > 1:
            path = Path(args.data_dir) / chain.CHAIN_FILE

            def auditor(chain_id: str, proposers: Collection[bytes]) -> AuditReport:
                say(f"ledger audit on {workers} processes ...")
                return audit_file(
                    path, chain_id=chain_id, authorised_proposers=proposers, workers=workers
                )

        verified = verify_store(
            store, operator=operator_key(args), chain_id=args.chain_id, auditor=auditor
        )
        for warning in verified.warnings:
            print(f"p2pex: {warning}", file=sys.stderr)
        report = verified.report
        audit: dict[str, Any] = {
            "ok": verified.ok,
            "blocks": report.blocks,
            "transactions": report.transactions,
            "head": report.head_hash,
            "audit": verified.describe(),
            "operator_pinned": verified.operator_pinned,
        }
        if verified.indexes is not None:
            checked = verified.indexes
            audit["indexes"] = (
                f"OK: {checked.blocks} block hashes, {checked.tx_rows} transaction "
                f"rows, {checked.account_rows} account rows"
            )
        if not verified.ok or verified.operator is None:
            _verified(args, {**audit, "ok": False, "first_bad_height": report.first_bad_height})
            return 1
        operator = verified.operator
        chain_id = args.chain_id or store.block_at(0).header.chain_id
        try:
            state = replay.replay_store(store, lambda: ExchangeState(chain_id, operator))
        except BlockRefused as exc:
            failed = f"FAILED at block {exc.height}: {exc.reason}"
            _verified(
                args, {**audit, "ok": False, "first_bad_height": exc.height, "replay": failed}
            )
            return 1
        except LedgerError as exc:
            return _failed(args, "replay", exc)
        replayed = f"OK: results and state digest match at every block ({store.height})"
        _verified(args, {**audit, "replay": replayed, "state_digest": state.state_digest()})
        return _verify_quorum(args, store, chain_id)
    finally:
        store.close()


def _verified(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Print ``chain verify``'s outcome: one JSON document, or its lines."""
    if args.json:
        output.print_json(result)
        return
    print(f"ledger audit: {result['audit']}")
    if "indexes" in result:
        print(f"indexes: {result['indexes']}")
    if "replay" in result:
        print(f"replay: {result['replay']}")
    if "state_digest" in result:
        print(f"state digest {result['state_digest'].hex()}")


def _verify_quorum(args: argparse.Namespace, store: BlockStore, chain_id: str) -> int:
    """With ``--validators``: every block has a quorum of attestations (node.cluster)."""
    if not args.validators:
        return 0
    if args.data_dir is None:
        msg = "the quorum check reads the attestations of a --data-dir chain"
        raise ConfigError(msg)
    from ledger.attestation import default_quorum
    from node.cluster.quorum_audit import check_quorum

    validators = [parse_public_key(text) for text in args.validators.split(",") if text]
    quorum = args.quorum or default_quorum(len(validators))
    path = Path(args.data_dir) / chain.CHAIN_FILE
    report = check_quorum(path, store, chain_id=chain_id, validators=validators, quorum=quorum)
    output.note(f"quorum: {report.describe()}") if args.json else print(
        f"quorum: {report.describe()}"
    )
    return 0 if report.ok else 1


def run_show(args: argparse.Namespace) -> int:
    """Print block headers (the last N, or one height)."""
    store = open_source(args)
    try:
        heights = (
            [args.height]
            if args.height is not None
            else range(max(0, store.height - args.last), store.height)
        )
        shown = []
        for height in heights:
            block = store.block_at(height)
            h = block.header
            when = datetime.datetime.fromtimestamp(h.time_ns / 1e9, datetime.UTC)
            if args.json:
                shown.append(
                    {
                        "height": h.height,
                        "hash": h.hash,
                        "time_ns": h.time_ns,
                        "time": when.isoformat(),
                        "transactions": len(block.transactions),
                        "results": len(block.results),
                        "prev_hash": h.prev_hash,
                        "state_digest": h.state_digest,
                        "tx_root": h.tx_root,
                        "result_root": h.result_root,
                    }
                )
                continue
            print(
                f"block {h.height} {h.hash.hex()} time {when.isoformat()} "
                f"txs {len(block.transactions)} results {len(block.results)} "
                f"prev {h.prev_hash.hex()[:16]} state {h.state_digest.hex()[:16]}"
            )
        if args.json:
            output.print_json({"blocks": shown})
        return 0
    finally:
        store.close()


def _leaf_name(args: argparse.Namespace) -> str:
    return f"transaction {args.tx}" if args.tx else f"result {args.result}"


def _proof_target(args: argparse.Namespace) -> dict[str, Any]:
    """The ``prove`` arguments: ``tx_id``, or ``height`` and ``index`` of a result."""
    try:
        if args.tx:
            return {"tx_id": bytes.fromhex(args.tx)}
        height, _, index = args.result.partition(":")
        return {"height": int(height), "index": int(index)}
    except ValueError as exc:
        msg = "--tx takes a hex transaction id, --result HEIGHT:INDEX"
        raise ConfigError(msg) from exc


def run_prove(args: argparse.Namespace) -> int:
    """Print and check an inclusion proof (transaction or result) against its block header."""
    target = _proof_target(args)
    if args.node is not None:
        with Client.connect(args.node) as client:
            reply = client.call("prove", target)
        proof = decode_inclusion_proof(reply["proof"])
        header = decode_header(reply["header"])
        leaf = reply["leaf"]
    else:
        try:
            store = open_source(args)
        except StoreCorrupted as exc:
            return _failed(args, "proof", exc)
        try:
            if "tx_id" in target:
                # trusts no index: the leaf must hash to the id, the proof reach tx_root
                proven = prove_stored_transaction(store, target["tx_id"])
                proof, leaf, header = proven.proof, proven.leaf, proven.header
            else:
                proof = prove_result(store, target["height"], target["index"])
                leaf = store.block_at(target["height"]).results[target["index"]]
                header = store.block_at(proof.height).header
        except StoreCorrupted as exc:
            return _failed(args, "proof", exc)
        finally:
            store.close()
    if "tx_id" in target and hashlib.sha256(leaf).digest() != target["tx_id"]:
        msg = f"the leaf given for {_leaf_name(args)} hashes to {hashlib.sha256(leaf).hexdigest()}"
        raise NodeError(msg)
    verify_inclusion_proof(header, proof, leaf)
    tree = "tx_root" if "tx_id" in target else "result_root"
    root = header.tx_root if "tx_id" in target else header.result_root
    if args.json:
        output.print_json(
            {
                "ok": True,
                "leaf": _leaf_name(args),
                "height": header.height,
                "block": header.hash,
                "tree": tree,
                "root": root,
                "index": proof.index,
                "size": proof.size,
                "path": list(proof.path),
                "record": None if "tx_id" in target else str(decode_result(leaf)),
            }
        )
        return 0
    print(_leaf_name(args))
    if "tx_id" not in target:
        print(f"record {decode_result(leaf)}")
    print(f"block {header.height} {header.hash.hex()} {tree} {root.hex()}")
    print(f"leaf {proof.index} of {proof.size}, path:")
    for node in proof.path:
        print(f"  {node.hex()}")
    print(f"proof OK: the {_leaf_name(args).split()[0]} is in the block")
    return 0


def _source_flags(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", type=Path, help="a node's data directory (read-only)")
    where.add_argument("--node", metavar="HOST:PORT", help="fetch the chain from a running node")


def add_chain_command(commands: SubParsers) -> None:
    """Register ``p2pex chain verify | show | prove``."""
    parser = commands.add_parser(
        "chain",
        help="verify, show and prove the chain",
        description="Audit the hash-chained ledger of a node's data directory or of a "
        "running node.",
    )
    sub = parser.add_subparsers(title="chain commands", metavar="COMMAND")
    verify = sub.add_parser(
        "verify",
        help="check every block and replay the market state machine",
        description="Check every block (signatures, hash links, Merkle roots, nonces) with "
        "the ledger audit, then replay every transaction through the state machine and "
        "compare the results and the state digest with each block. Exit code 1 on failure.",
    )
    _source_flags(verify)
    verify.add_argument(
        "--operator-key",
        type=Path,
        help="operator key file (PEM); default: the key pinned in the data directory "
        "(operator.pub), else the genesis signer is trusted, with a warning",
    )
    verify.add_argument("--operator-public-key", metavar="HEX")
    verify.add_argument("--chain-id", help="default: the genesis block's")
    verify.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="processes for the ledger audit of a --data-dir chain (default: every core for "
        "chains of 32 blocks or more; 1 audits in this process); the replay is serial",
    )
    output.add_json_flag(verify)
    verify.add_argument(
        "--validators",
        metavar="HEX,...",
        help="validators' public keys: also check that every block has a quorum of their "
        "attestations (a chain ordered on a replicated log; see docs/cluster.md)",
    )
    verify.add_argument(
        "--quorum", type=positive_int, help="attestations a block needs (default: a majority)"
    )
    verify.set_defaults(handler=run_verify)
    show = sub.add_parser(
        "show", help="print block headers", description="Print block headers, newest last."
    )
    _source_flags(show)
    show.add_argument("--last", type=int, default=10, help="how many of the newest blocks")
    show.add_argument("--height", type=int, help="one block")
    output.add_json_flag(show)
    show.set_defaults(handler=run_show)
    prove = sub.add_parser(
        "prove",
        help="print and check a Merkle inclusion proof of a transaction or a result",
        description="Print the RFC 6962 inclusion proof of a transaction (or of one result "
        "record: a trade, a settlement...) and check it against the block header's root.",
    )
    _source_flags(prove)
    what = prove.add_mutually_exclusive_group(required=True)
    what.add_argument("--tx", metavar="TX_ID", help="transaction id (hex)")
    what.add_argument("--result", metavar="HEIGHT:INDEX", help="result INDEX of block HEIGHT")
    output.add_json_flag(prove)
    prove.set_defaults(handler=run_prove)

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=usage)
