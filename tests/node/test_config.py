"""Node configuration (file + flags), the embedded sequencer and the fake clock."""

from __future__ import annotations

import asyncio

import pytest

from node.clock import FakeClock
from node.config import NodeConfig, load_config, parse_address
from node.errors import ConfigError
from node.pipeline.sequencer import EmbeddedSequencer


def test_file_then_flags(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text(
        'role = "replica"\nupstream = "127.0.0.1:9000"\noperator_key = "op.pem"\n'
        "block_interval_ms = 20\nidle_timeout_s = 5\n",
        encoding="utf-8",
    )
    config = load_config(path, {"block_interval_ms": 75, "listen": "127.0.0.1:0", "chain_id": None})
    assert config.role == "replica"
    assert config.block_interval_ms == 75  # the flag wins
    assert config.operator_key == tmp_path / "op.pem"  # relative to the file
    assert config.idle_timeout_s == 5.0
    assert config.chain_id == NodeConfig().chain_id


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"role": "boss"}, "role 'boss'"),
        ({"role": "replica", "operator_key": "k"}, "needs an upstream"),
        ({"role": "replica", "upstream": "h:1"}, "operator's key"),
        ({"role": "operator"}, "needs its signing key"),
        ({"operator_key": "k", "block_max_txs": 0}, "block_max_txs must be at least 1"),
        ({"operator_key": "k", "listen": "nowhere"}, "not HOST:PORT"),
        ({"operator_key": "k", "colour": "red"}, "unknown configuration key"),
        ({"operator_key": "k", "max_frame": "big"}, "must be an integer"),
        ({"operator_key": "k", "slot_length_ms": -1}, "slot_length_ms"),
        ({"operator_key": "k", "loop_slice_us": 50}, "loop_slice_us must be 0"),
        ({"operator_key": "k", "loop_slice_us": 200_000}, "loop_slice_us must be 0"),
    ],
)
def test_bad_configuration_is_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, values)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("role = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(bad, {})


def test_parse_address():
    assert parse_address("[::1]:80") == ("[::1]", 80)
    with pytest.raises(ConfigError):
        parse_address("host:99999")


def test_embedded_sequencer_keeps_order_and_times_out():
    async def main():
        seq = EmbeddedSequencer()
        assert await seq.next_batch(10, 0.01) == []
        for i in range(5):
            assert seq.append(bytes([i])) == i
        assert await seq.next_batch(3, None) == [(0, b"\x00"), (1, b"\x01"), (2, b"\x02")]
        waiter = asyncio.create_task(seq.next_batch(10, None))
        await asyncio.sleep(0)
        assert await waiter == [(3, b"\x03"), (4, b"\x04")]
        waiter = asyncio.create_task(seq.next_batch(10, 5))
        await asyncio.sleep(0.01)
        seq.append(b"x")
        assert await waiter == [(5, b"x")]

    asyncio.run(main())


def test_fake_clock_never_goes_back():
    clock = FakeClock(10)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(5)
    clock.set(20)
    assert clock.time_ns() == 20
