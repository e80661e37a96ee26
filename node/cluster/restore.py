"""Restore a validator that fell behind the log's retained tail from a peer validator's store.

Every validator derives the same blocks, and the same log point after
each (positions and message sequences are functions of the log), so a
peer's chain file (blocks and attestations) and progress file are valid
for any validator of the cluster. ``restore_from_peer`` takes a
consistent snapshot of both with SQLite's online backup (the peer may
keep running) into the lagging validator's data directory; started
again, the validator resumes after the peer's head, which the log still
holds: the streams are purged only below every validator's final block
(``node.cluster.retention``).

    python -m node.cluster.restore PEER_DATA_DIR DATA_DIR
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from node.errors import ConfigError
from node.pipeline.chain import CHAIN_FILE

FILES = (CHAIN_FILE, "cluster.sqlite3")  # the chain (with attestations) and the log points


def restore_from_peer(peer_dir: Path, data_dir: Path) -> None:
    """Replace ``data_dir``'s chain and progress with a snapshot of ``peer_dir``'s.

    Requires: the validator of ``data_dir`` is stopped.

    Raises:
        ConfigError: ``peer_dir`` has no chain or progress file.
    """
    for name in FILES:
        if not (peer_dir / name).is_file():
            msg = f"{peer_dir} has no {name}: not a validator's data directory"
            raise ConfigError(msg)
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        target = data_dir / name
        for stale in (target, target.with_name(name + "-wal"), target.with_name(name + "-shm")):
            stale.unlink(missing_ok=True)
        source = sqlite3.connect(f"file:{peer_dir / name}?mode=ro", uri=True, timeout=30)
        try:
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m node.cluster.restore PEER_DATA_DIR DATA_DIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    try:
        restore_from_peer(Path(args[0]), Path(args[1]))
    except ConfigError as exc:
        print(f"p2pex: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
