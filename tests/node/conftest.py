"""Fixtures for node tests: local networks of real node processes, always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.keys import SigningKey
from node.localnet import LocalNet


@pytest.fixture
def make_net(tmp_path: Path) -> Iterator[Callable[..., LocalNet]]:
    """Start ``LocalNet``s under tmp_path; every node is stopped even if the test fails."""
    nets: list[LocalNet] = []

    def start(**kwargs: object) -> LocalNet:
        net = LocalNet(tmp_path / f"net{len(nets)}", **kwargs)  # type: ignore[arg-type]
        nets.append(net)
        return net.start()

    yield start
    for net in nets:
        net.stop()
        for node in net.nodes:
            node.kill()


def peer_key(n: int) -> SigningKey:
    """A deterministic test key."""
    return SigningKey.from_seed(n.to_bytes(4, "big") * 8)
