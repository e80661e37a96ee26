"""``p2pex demo --cluster``: the demo's scenario on three NATS servers and three validators.

The same community trades the same slots as in ``p2pex demo``; the only
difference is where the order comes from: a replicated JetStream log
instead of one operator process. The run ends as the demo does (identical
heads on every node, a full audit of every stored chain) plus the quorum
check: every block carries attestations by a majority of the validators.
"""

from __future__ import annotations

from ledger.attestation import default_quorum
from node.cluster.localcluster import LocalCluster
from node.cluster.quorum_audit import check_quorum
from node.demo.scenario import EXIT_FAILED, EXIT_OK, Demo, audit_data_dir


class ClusterDemo(Demo):
    """The demo on a local validator cluster."""

    def run(self) -> int:
        """Run the whole demo; return the exit code."""
        self.progress(f"starting 3 NATS servers and 3 validators on 127.0.0.1 (in {self.root})")
        cluster = LocalCluster(self.root, validator_args=("--block-interval-ms", "20"))
        with cluster:
            addresses = cluster.addresses
            assert cluster.nats is not None
            self.progress("NATS servers ready: " + ", ".join(cluster.nats.urls))
            self.progress(
                "validators ready: "
                + ", ".join(f"{v.name} {v.address}" for v in cluster.validators)
            )
            ok = self.trade(cluster.chain_key, addresses)
            ok = self.check_agreement(addresses) and ok
        self.progress("all validator and NATS processes stopped")
        ok = self.audit_cluster(cluster) and ok
        self.say("")
        self.say("demo OK" if ok else "demo FAILED")
        return EXIT_OK if ok else EXIT_FAILED

    def audit_cluster(self, cluster: LocalCluster) -> bool:
        """Audit every validator's stored chain, then check every block's quorum."""
        from ledger.sqlite_store import SqliteBlockStore

        ok = True
        validators = [bytes.fromhex(key) for key in cluster.public_keys]
        quorum = default_quorum(len(validators))
        for node in cluster.validators:
            passed, summary = audit_data_dir(node.data_dir, cluster.chain_key)
            path = node.data_dir / "chain.sqlite3"
            store = SqliteBlockStore(path, readonly=True)
            try:
                chain_id = store.block_at(0).header.chain_id
                report = check_quorum(
                    path, store, chain_id=chain_id, validators=validators, quorum=quorum
                )
            finally:
                store.close()
            self.progress(
                f"audit of {node.name}'s stored chain: {summary}; quorum {report.describe()}"
            )
            ok = ok and passed and report.ok
        return ok
