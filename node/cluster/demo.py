"""``p2pex demo --cluster``: the demo's scenario on three NATS servers and three validators.

The same community trades the same slots as in ``p2pex demo``; the only
difference is where the order comes from: a replicated JetStream log
instead of one operator process. The run ends as the demo does (identical
heads on every node, a full audit of every stored chain) plus the quorum
check: every block carries attestations by a majority of the validators.
The demo object is passed in (``node.demo.scenario.Demo``), so this module
does not import the demo's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ledger.attestation import default_quorum
from node.cluster.localcluster import LocalCluster
from node.cluster.quorum_audit import check_quorum

Audit = Callable[[Path, Path], tuple[bool, str]]  # (data dir, chain key) -> (ok, summary)


class Scenario(Protocol):
    """What the cluster run uses of ``node.demo.scenario.Demo``."""

    root: Path

    def progress(self, what: str) -> None: ...

    def trade(self, operator_key: Path, addresses: Sequence[str]) -> bool: ...

    def check_agreement(self, addresses: Sequence[str]) -> bool: ...


def run_on_cluster(demo: Scenario, audit: Audit) -> bool:
    """Run the scenario on a local cluster; True if every check held."""
    demo.progress(f"starting 3 NATS servers and 3 validators on 127.0.0.1 (in {demo.root})")
    cluster = LocalCluster(demo.root, validator_args=("--block-interval-ms", "20"))
    with cluster:
        addresses = cluster.addresses
        assert cluster.nats is not None
        demo.progress("NATS servers ready: " + ", ".join(cluster.nats.urls))
        demo.progress(
            "validators ready: " + ", ".join(f"{v.name} {v.address}" for v in cluster.validators)
        )
        ok = demo.trade(cluster.chain_key, addresses)
        ok = demo.check_agreement(addresses) and ok
    demo.progress("all validator and NATS processes stopped")
    return audit_cluster(demo, cluster, audit) and ok


def audit_cluster(demo: Scenario, cluster: LocalCluster, audit: Audit) -> bool:
    """Audit every validator's stored chain, then check every block's quorum."""
    from ledger.sqlite_store import SqliteBlockStore

    ok = True
    validators = [bytes.fromhex(key) for key in cluster.public_keys]
    quorum = default_quorum(len(validators))
    for node in cluster.validators:
        passed, summary = audit(node.data_dir, cluster.chain_key)
        path = node.data_dir / "chain.sqlite3"
        store = SqliteBlockStore(path, readonly=True)
        try:
            chain_id = store.block_at(0).header.chain_id
            report = check_quorum(
                path, store, chain_id=chain_id, validators=validators, quorum=quorum
            )
        finally:
            store.close()
        demo.progress(f"audit of {node.name}'s stored chain: {summary}; quorum {report.describe()}")
        ok = ok and passed and report.ok
    return ok
