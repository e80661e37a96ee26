"""A market on a replicated log, on one machine: NATS servers and validators as subprocesses.

``LocalCluster(root, validators=3)`` creates the chain key and one
attestation key per validator under ``root`` (if missing), starts a
3-server NATS JetStream cluster (``NatsCluster``) and one validator
process per key, each with its own data directory and client port on
127.0.0.1, and stops everything on leaving the ``with`` block (validators,
then NATS servers; SIGTERM, then SIGKILL), also when the body raises.
``cluster.validators[i].kill()`` / ``.start()`` and
``cluster.nats.servers[j].kill()`` / ``.start()`` crash and restart one
part. A validator (re)started once the others have ports is given their
addresses (``--peers``): behind the log's retained tail, it catches up
from them (``node.cluster.catchup``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from node.cluster.nats_servers import NatsCluster, check_installed
from node.localnet import DEFAULT_READY_TIMEOUT, NodeProcess


class ValidatorProcess(NodeProcess):
    """One validator subprocess (``python -m node.roles.validator``)."""

    def __init__(
        self,
        name: str,
        data_dir: Path,
        *,
        chain_key: Path,
        validator_key: Path,
        validators: list[str],
        nats_urls: list[str],
        extra_args: tuple[str, ...] = (),
        peers: Callable[[], list[str]] | None = None,
    ) -> None:
        super().__init__(name, "validator", data_dir, operator_key=chain_key, extra_args=extra_args)
        self.validator_key = validator_key
        self.validators = validators
        self.nats_urls = nats_urls
        # the other validators' addresses at each start (known once they ran): to catch up from
        self.peers = peers or list

    def command(self) -> list[str]:
        """The command line that starts this validator."""
        return [
            sys.executable,
            "-m",
            "node.roles.validator",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--operator-key",
            str(self.operator_key),
            "--port-file",
            str(self.port_file),
            "--nats",
            ",".join(self.nats_urls),
            "--validator-key",
            str(self.validator_key),
            "--validators",
            ",".join(self.validators),
            *(["--peers", ",".join(peers)] if (peers := self.peers()) else []),
            *self.extra_args,
        ]


class LocalCluster:
    """``servers`` NATS servers and ``validators`` validator processes under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        validators: int = 3,
        servers: int = 3,
        validator_args: tuple[str, ...] = (),
        own_args: dict[int, tuple[str, ...]] | None = None,
    ) -> None:
        self.root = root
        self.own_args = own_args or {}  # validator index -> its extra flags
        self.n_validators = validators
        self.n_servers = servers
        self.validator_args = validator_args
        self.chain_key = root / "operator.pem"
        self.validator_keys = [root / f"validator{i + 1}.pem" for i in range(validators)]
        self.nats: NatsCluster | None = None
        self.validators: list[ValidatorProcess] = []
        self.public_keys: list[str] = []

    @property
    def addresses(self) -> list[str]:
        """Every validator's client address (a client may use any)."""
        return [v.address for v in self.validators]

    def _peers_of(self, index: int) -> Callable[[], list[str]]:
        """The addresses of the validators other than ``index`` that have a port yet."""

        def peers() -> list[str]:
            return [v.address for i, v in enumerate(self.validators) if i != index and v.port]

        return peers

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT) -> LocalCluster:
        """Create the keys if needed, start the NATS servers, then the validators."""
        from node.keys import ensure_key_file  # late: keeps this module light to import

        check_installed()
        self.root.mkdir(parents=True, exist_ok=True)
        ensure_key_file(self.chain_key)
        self.public_keys = [
            ensure_key_file(path).public_key_bytes().hex() for path in self.validator_keys
        ]
        try:
            self.nats = NatsCluster(self.root / "nats", self.n_servers)
            self.nats.start()
            for i, key in enumerate(self.validator_keys):
                validator = ValidatorProcess(
                    f"validator{i + 1}",
                    self.root / f"validator{i + 1}",
                    chain_key=self.chain_key,
                    validator_key=key,
                    validators=self.public_keys,
                    nats_urls=self.nats.urls,
                    extra_args=self.validator_args + self.own_args.get(i, ()),
                    peers=self._peers_of(i),
                )
                self.validators.append(validator)
                validator.launch()
            for validator in self.validators:
                validator.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every validator, then every NATS server; never raises for a dead process."""
        for validator in self.validators:  # all at once: each takes a moment to close
            if validator.running and validator.process is not None:
                validator.process.send_signal(signal.SIGTERM)
        for validator in self.validators:
            validator.stop()
        if self.nats is not None:
            self.nats.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m node.cluster.localcluster DIR``: run a local cluster until Ctrl-C / SIGTERM."""
    import argparse
    import threading

    parser = argparse.ArgumentParser(prog="python -m node.cluster.localcluster")
    parser.add_argument("root", type=Path, help="keys, NATS data and validators' chains go here")
    parser.add_argument("--validators", type=int, default=3)
    parser.add_argument("--servers", type=int, default=3, help="NATS servers")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalCluster(args.root, validators=args.validators, servers=args.servers) as cluster:
        assert cluster.nats is not None
        print("NATS servers: " + ",".join(cluster.nats.urls))
        for validator, key in zip(cluster.validators, cluster.public_keys, strict=True):
            print(f"{validator.name} {validator.address} key {key}")
        print("validators: " + ",".join(cluster.public_keys), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
