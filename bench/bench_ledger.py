"""Benchmark of the ledger: signatures, block building, SQLite append, chain audit.

Run from the repository root::

    python -m bench.bench_ledger [--seed S] [--blocks B] [--block-size N] [--peers P]
                                 [--repeat R] [--workers W] [--write]

Workload (seeded): ``--peers`` keys place orders (PlaceOrder, ~150-byte
transactions) with increasing nonces; blocks of ``--block-size`` transactions
carry one trade record per 5 transactions and one settlement per 20 as
results, so the store writes index rows too.

Measured, each as min / median / max over ``--repeat`` runs after a warm-up:

1. raw Ed25519 rates on one core: signing with ``cryptography``, and
   verifying with ``cryptography`` (the yardstick the ledger issue names)
   and with libsodium (PyNaCl), which ``ledger.keys.verify_signature`` uses
   because it verifies about twice as fast;
2. ``sign_transaction`` and decode + ``verify_transaction`` rates;
3. building and signing one block of ``--block-size`` transactions
   (Merkle roots, header, signature; the transactions are already signed);
4. SQLite append rate (WAL, synchronous=FULL, one transaction per block) of
   ``--blocks`` blocks into a fresh database file, in blocks/s and
   transactions/s; then, with ``--long-blocks``, the rate per window of
   blocks as one chain grows (random-key index pages make it fall); and
   per block, as the operator's store writer appends, the commit of the
   block alone (``append(index_later=True)``) and the index rows after it
   (``index_trail()``), p50 / p99 / max;
5. the whole-chain audit of that database (every rule: decode, canonical
   checks, roots, signatures, nonces), in transactions/s, on one core
   (``audit_chain``) and on ``--workers`` processes (``audit_segment`` on
   height ranges in a process pool, ``merge_segments``); the per-core audit
   rate is reported as a fraction of a bare libsodium loop over the very
   same signatures, measured right before it (the strict yardstick: the
   primitive the audit itself calls), and of ``cryptography``'s raw rate.

The machine is shared with other jobs: the load average is recorded, and
the timings are noisy. ``--write`` stores the report in
``bench/results/ledger-<commit>.txt`` with the machine description.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_open

from bench.machine import describe, load_average, write_results
from ledger import (
    Block,
    PlaceOrder,
    SegmentAudit,
    SettlementRecord,
    SigningKey,
    SqliteBlockStore,
    TradeRecord,
    Transaction,
    TxKind,
    audit_chain,
    audit_segment,
    build_block,
    decode_transaction,
    merge_segments,
    sign_transaction,
    split_heights,
    verify_transaction,
)
from ledger.transactions import signing_message

CHAIN_ID = "p2pex-bench"
T0 = 1_700_000_000_000_000_000


def stats(values: Sequence[float]) -> str:
    """min / median / max of rates."""
    return (
        f"min {min(values):>11,.0f}  median {statistics.median(values):>11,.0f}"
        f"  max {max(values):>11,.0f}"
    )


def percentiles_ms(values: Sequence[float]) -> str:
    """p50 / p99 / max of durations in milliseconds."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered):.2f}  p99 {p99:.2f}  max {ordered[-1]:.2f}"


def repeat_rate(fn: Callable[[], int], repeat: int) -> list[float]:
    """Run fn (returns an operation count) after one warm-up; rates per CPU second.

    CPU time of this process (``time.process_time``), not wall time: the
    machine is shared, and a core taken by another job must not count
    against the code measured.
    """
    fn()
    rates = []
    for _ in range(repeat):
        start = time.process_time()
        count = fn()
        rates.append(count / (time.process_time() - start))
    return rates


def make_keys(seed: int, peers: int) -> tuple[SigningKey, list[SigningKey]]:
    rng = random.Random(seed)
    operator = SigningKey.from_seed(rng.randbytes(32))
    return operator, [SigningKey.from_seed(rng.randbytes(32)) for _ in range(peers)]


def make_transactions(
    rng: random.Random, keys: list[SigningKey], count: int, nonces: dict[int, int]
) -> list[bytes]:
    txs = []
    for _ in range(count):
        who = rng.randrange(len(keys))
        nonces[who] = nonces.get(who, 0) + 1
        nonce = nonces[who]
        side = "bid" if rng.random() < 0.5 else "ask"
        payload = PlaceOrder(
            "electricity",
            rng.randrange(96),
            side,
            rng.randrange(800, 1600),
            rng.randrange(100, 20_000),
            "GTC",
            0,
            False,
            "",
            nonce,
        )
        public = keys[who].public_key_bytes()
        tx = Transaction(TxKind.PLACE_ORDER, CHAIN_ID, public, nonce, payload)
        txs.append(sign_transaction(keys[who], tx).to_bytes())
    return txs


def make_results(rng: random.Random, txs: list[bytes], keys: list[SigningKey]) -> list[bytes]:
    results = []
    for index in range(0, len(txs), 5):
        maker, taker = rng.sample(keys, 2)
        results.append(
            TradeRecord(
                hashlib.sha256(txs[index]).digest(),
                "electricity",
                7,
                1200,
                500,
                maker.account_id,
                taker.account_id,
                index,
                index + 1,
            ).to_bytes()
        )
    for index in range(0, len(txs), 20):
        who = keys[index % len(keys)]
        results.append(SettlementRecord("heat", 7, who.account_id, 250, -300_000).to_bytes())
    return results


def make_chain(seed: int, blocks: int, size: int, peers: int) -> tuple[SigningKey, list[Block]]:
    rng = random.Random(seed)
    operator, keys = make_keys(seed, peers)
    nonces: dict[int, int] = {}
    chain: list[Block] = []
    parent = None
    for height in range(blocks):
        txs = make_transactions(rng, keys, size, nonces)
        block = build_block(
            operator,
            chain_id=CHAIN_ID,
            parent=parent,
            time_ns=T0 + height,
            transactions=txs,
            results=make_results(rng, txs, keys),
        )
        chain.append(block)
        parent = block.header
    return operator, chain


def bench_raw_ed25519(
    rng: random.Random, repeat: int, count: int = 3000
) -> tuple[list[float], list[float], list[float]]:
    keys = [SigningKey.from_seed(rng.randbytes(32)) for _ in range(50)]
    messages = [rng.randbytes(150) for _ in range(count)]
    signers = [keys[i % len(keys)] for i in range(count)]
    signatures = [signer.sign(m) for signer, m in zip(signers, messages, strict=True)]
    publics = [s.public_key_bytes() for s in signers]
    privates = [s.private_key() for s in signers]
    verifiers = [Ed25519PublicKey.from_public_bytes(p) for p in publics]

    def sign() -> int:
        for private, message in zip(privates, messages, strict=True):
            private.sign(message)
        return count

    def verify_cryptography() -> int:
        for verifier, signature, message in zip(verifiers, signatures, messages, strict=True):
            verifier.verify(signature, message)
        return count

    def verify_sodium() -> int:
        # libsodium, as ledger.keys.verify_signature (the ledger's validity rule)
        for public, signature, message in zip(publics, signatures, messages, strict=True):
            crypto_sign_open(signature + message, public)
        return count

    return (
        repeat_rate(sign, repeat),
        repeat_rate(verify_cryptography, repeat),
        repeat_rate(verify_sodium, repeat),
    )


def signature_checks(chain: Sequence[Block]) -> list[tuple[bytes, bytes, bytes]]:
    """(public key, signature, message) of every signature an audit of chain verifies."""
    checks = []
    for block in chain:
        checks.append((block.header.proposer, block.signature, block.header.signing_message()))
        for data in block.transactions:
            signed = decode_transaction(data)
            checks.append(
                (signed.transaction.sender, signed.signature, signing_message(signed.body))
            )
    return checks


def audit_file_segment(
    path: str, start: int, stop: int, proposer: bytes
) -> tuple[SegmentAudit, float]:
    """Process-pool worker: audit heights [start, stop) of a store file, read-only.

    Returns the segment audit and the CPU time the worker spent on it.
    """
    cpu = time.process_time()
    with SqliteBlockStore(path, readonly=True) as store:
        segment = audit_segment(
            store, start, stop, chain_id=CHAIN_ID, authorised_proposers={proposer}
        )
    return segment, time.process_time() - cpu


def machine() -> list[str]:
    return describe()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--long-blocks",
        type=int,
        default=150,
        help="blocks appended one by one to show the rate as the chain grows (0: skip)",
    )
    parser.add_argument(
        "--write", action="store_true", help="write bench/results/ledger-<commit>.txt"
    )
    args = parser.parse_args(argv)

    out: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    say("p2pex ledger benchmark")
    described = machine()
    for line in described:
        say(line)
    say(
        f"workload: seed {args.seed}, {args.blocks} blocks x {args.block_size} transactions, "
        f"{args.peers} peers, repeat {args.repeat}, {args.workers} workers"
    )
    say()
    rng = random.Random(args.seed)

    sign_rates, crypto_rates, verify_rates = bench_raw_ed25519(rng, args.repeat)
    say(f"raw Ed25519 sign, cryptography   (ops/s, CPU)  {stats(sign_rates)}")
    say(f"raw Ed25519 verify, cryptography (ops/s, CPU)  {stats(crypto_rates)}")
    say(f"raw Ed25519 verify, libsodium    (ops/s, CPU)  {stats(verify_rates)}")

    operator, keys = make_keys(args.seed, args.peers)
    sample = make_transactions(random.Random(args.seed), keys, 2000, {})
    parsed = [decode_transaction(tx) for tx in sample]

    def resign() -> int:
        for signed in parsed:
            key = key_of[signed.transaction.sender]
            sign_transaction(key, signed.transaction)
        return len(parsed)

    key_of = {k.public_key_bytes(): k for k in keys}
    say(f"sign_transaction        (tx/s, CPU)   {stats(repeat_rate(resign, args.repeat))}")

    def decode_verify() -> int:
        for tx in sample:
            verify_transaction(decode_transaction(tx), chain_id=CHAIN_ID)
        return len(sample)

    say(f"decode + verify tx      (tx/s, CPU)   {stats(repeat_rate(decode_verify, args.repeat))}")

    block_txs = (
        sample[: args.block_size]
        if args.block_size <= len(sample)
        else make_transactions(random.Random(args.seed), keys, args.block_size, {})
    )
    block_results = make_results(random.Random(args.seed), block_txs, keys)
    build_times = []
    for _ in range(args.repeat + 1):
        start = time.process_time()
        build_block(
            operator,
            chain_id=CHAIN_ID,
            parent=None,
            time_ns=T0,
            transactions=block_txs,
            results=block_results,
        )
        build_times.append((time.process_time() - start) * 1e3)
    build_times = build_times[1:]
    say(
        f"build + sign block of {len(block_txs)} tx (ms, CPU)  min {min(build_times):.2f}  "
        f"median {statistics.median(build_times):.2f}  max {max(build_times):.2f}"
    )

    print(f"preparing {args.blocks} blocks ...", flush=True)
    operator, chain = make_chain(args.seed, args.blocks, args.block_size, args.peers)
    proposer = operator.public_key_bytes()
    total_tx = sum(len(b.transactions) for b in chain)

    with tempfile.TemporaryDirectory(prefix="p2pex-bench-") as tmp:
        append_block_rates, append_tx_rates = [], []
        path = ""
        for run in range(args.repeat + 1):
            path = os.path.join(tmp, f"chain-{run}.db")
            with SqliteBlockStore(path) as store:
                start = time.perf_counter()
                for block in chain:
                    store.append(block)
                elapsed = time.perf_counter() - start
            if run:  # the first run is the warm-up
                append_block_rates.append(len(chain) / elapsed)
                append_tx_rates.append(total_tx / elapsed)
        say(f"SQLite append FULL      (blocks/s, wall) {stats(append_block_rates)}")
        say(f"SQLite append FULL      (tx/s, wall)     {stats(append_tx_rates)}")

        # As the operator's store writer appends: the block committed first
        # (what a client waits for), its index rows after.
        commit_ms: list[float] = []
        index_ms: list[float] = []
        for run in range(args.repeat):
            with SqliteBlockStore(os.path.join(tmp, f"later-{run}.db")) as store:
                for block in chain:
                    start = time.perf_counter()
                    store.append(block, index_later=True)
                    committed = time.perf_counter()
                    store.index_trail()
                    commit_ms.append((committed - start) * 1e3)
                    index_ms.append((time.perf_counter() - committed) * 1e3)
        say(f"append(index_later): commit (ms/block, wall) {percentiles_ms(commit_ms)}")
        say(f"then index_trail()          (ms/block, wall) {percentiles_ms(index_ms)}")

        # The yardstick: the very signature checks the audit must make (every
        # transaction and every header), with the keys already loaded, in a
        # bare loop. CPU time of this process is used for both sides, and the
        # two runs alternate, so that other jobs on the shared machine skew
        # them alike.
        triples = signature_checks(chain)
        serial_rates, wall_rates, raw_rates, ratios = [], [], [], []
        with SqliteBlockStore(path, readonly=True) as store:
            for run in range(args.repeat + 1):
                cpu = time.process_time()
                for public, signature, message in triples:
                    crypto_sign_open(signature + message, public)
                raw_cpu = time.process_time() - cpu
                wall = time.perf_counter()
                cpu = time.process_time()
                report = audit_chain(store, chain_id=CHAIN_ID, authorised_proposers={proposer})
                audit_cpu = time.process_time() - cpu
                wall = time.perf_counter() - wall
                assert report.ok and report.transactions == total_tx, report.describe()
                if run:
                    raw_rates.append(total_tx / raw_cpu)
                    serial_rates.append(total_tx / audit_cpu)
                    wall_rates.append(total_tx / wall)
                    ratios.append(raw_cpu / audit_cpu)
        say(f"raw verify of the audit's signatures (tx/s, CPU)  {stats(raw_rates)}")
        say(f"audit, 1 core           (tx/s, CPU)   {stats(serial_rates)}")
        say(f"audit, 1 core           (tx/s, wall)  {stats(wall_rates)}")
        say(
            "audit rate / raw verify rate, 1 core (CPU)  "
            f"min {min(ratios):.3f}  median {statistics.median(ratios):.3f}  max {max(ratios):.3f}"
            "  (target >= 0.90)"
        )
        for name, rates in (("libsodium", verify_rates), ("cryptography", crypto_rates)):
            say(
                f"audit rate / raw {name} verify rate (step 1), CPU medians: "
                f"{statistics.median(serial_rates) / statistics.median(rates):.3f}"
            )

        parallel_rates, worker_rates = [], []
        ranges = split_heights(len(chain), args.workers * 2)
        with ProcessPoolExecutor(args.workers) as pool:
            for run in range(args.repeat + 1):
                start = time.perf_counter()
                parts = list(
                    pool.map(
                        audit_file_segment,
                        [path] * len(ranges),
                        [a for a, _ in ranges],
                        [b for _, b in ranges],
                        [proposer] * len(ranges),
                    )
                )
                report = merge_segments([segment for segment, _ in parts])
                elapsed = time.perf_counter() - start
                assert report.ok and report.transactions == total_tx, report.describe()
                if run:
                    parallel_rates.append(total_tx / elapsed)
                    worker_rates.append(total_tx / sum(cpu for _, cpu in parts))
        say(f"audit, {args.workers} processes (tx/s, wall)  {stats(parallel_rates)}")
        say(f"audit, per worker CPU   (tx/s, CPU)   {stats(worker_rates)}")
        speedup = statistics.median(parallel_rates) / statistics.median(wall_rates)
        say(f"audit speed-up          x{speedup:.2f} on {args.workers} processes (wall, medians)")
        if args.long_blocks:
            long_chain = chain
            if args.long_blocks > len(chain):
                print(f"preparing {args.long_blocks} blocks ...", flush=True)
                long_chain = make_chain(args.seed, args.long_blocks, args.block_size, args.peers)[1]
            window = max(1, args.long_blocks // 6)
            rates = []
            with SqliteBlockStore(os.path.join(tmp, "long.db")) as store:
                start = time.perf_counter()
                for count, block in enumerate(long_chain[: args.long_blocks], start=1):
                    store.append(block)
                    if count % window == 0:
                        now = time.perf_counter()
                        rates.append((count, window * args.block_size / (now - start)))
                        start = now
            say(
                f"SQLite append FULL on a growing chain (tx/s, wall, per {window} blocks): "
                + ", ".join(
                    f"{rate:,.0f} up to {count * args.block_size // 1000}k tx"
                    for count, rate in rates
                )
            )
    say(f"load average at end: {load_average()}")

    if args.write:
        write_results("ledger", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
