"""Micro-benchmarks of the ledger's hot paths (pytest-benchmark).

Run: ``pytest bench/micro_ledger.py --benchmark-enable`` (never collected by a
plain ``pytest``: ``bench/`` is excluded). Seeded workload from
``bench.bench_ledger``: blocks of 1,000 PlaceOrder transactions from 1,000 keys.
"""

from __future__ import annotations

import hashlib

import pytest

from bench.bench_ledger import CHAIN_ID, make_chain
from ledger import (
    MemoryBlockStore,
    audit_chain,
    decode_block,
    decode_transaction,
    merkle_root,
    validate_block,
)
from ledger.transactions import parse_transaction


@pytest.fixture(scope="module")
def chain():
    """(operator key, two blocks)."""
    return make_chain(1, 2, 1000, 1000)


def test_parse_transaction(benchmark, chain):
    data = chain[1][0].transactions[0]
    benchmark(parse_transaction, data)


def test_decode_transaction(benchmark, chain):
    data = chain[1][0].transactions[0]
    benchmark(decode_transaction, data)


def test_merkle_root_1000(benchmark, chain):
    benchmark(merkle_root, chain[1][0].transactions)


def test_decode_block_1000(benchmark, chain):
    data = chain[1][0].to_bytes()
    benchmark(decode_block, data)


def test_validate_block_1000(benchmark, chain):
    operator, blocks = chain
    proposers = {operator.public_key_bytes()}
    benchmark(validate_block, blocks[0], None, chain_id=CHAIN_ID, authorised_proposers=proposers)


def test_audit_two_blocks(benchmark, chain):
    operator, blocks = chain
    store = MemoryBlockStore()
    for block in blocks:
        store.append(block)
    proposers = {operator.public_key_bytes()}
    report = benchmark(audit_chain, store, chain_id=CHAIN_ID, authorised_proposers=proposers)
    assert report.ok


def test_transaction_id(benchmark, chain):
    data = chain[1][0].transactions[0]
    benchmark(lambda: hashlib.sha256(data).digest())
