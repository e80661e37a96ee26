"""Node configuration (file + flags), the embedded sequencer and the fake clock."""

from __future__ import annotations

import asyncio

import pytest

from node.clock import FakeClock
from node.config import NodeConfig, load_config, parse_address
from node.errors import ConfigError
from node.pipeline.sequencer import EmbeddedLog


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


def test_embedded_log_keeps_order_positions_and_tells_its_reader():
    async def main():
        log = EmbeddedLog()
        told = []
        log.on_append(lambda: told.append(log.committed))
        assert log.read(0, 10) == []
        positions = [await log.append(bytes([i])) for i in range(5)]
        assert positions == [0, 1, 2, 3, 4]
        assert told == [1, 2, 3, 4, 5]  # every append is final in the log at once
        assert log.read(0, 3) == [b"\x00", b"\x01", b"\x02"]
        assert log.read(3, 10) == [b"\x03", b"\x04"]
        log.release(3)
        assert len(log) == 2
        assert log.read(3, 1) == [b"\x03"]
        with pytest.raises(ValueError, match="released"):
            log.read(2, 1)
        assert await log.append(b"x") == 5  # positions go on after a release
        assert log.read(5, 10) == [b"x"]

    asyncio.run(main())


def test_fake_clock_fires_timers_in_order_and_never_early():
    clock = FakeClock(0)
    fired = []
    late = clock.call_at(2.0, lambda: fired.append("late"))
    clock.call_at(1.0, lambda: fired.append("early"))
    cancelled = clock.call_at(1.5, lambda: fired.append("cancelled"))
    cancelled.cancel()
    clock.advance(999_999_999)
    assert fired == []
    clock.advance(1)
    assert fired == ["early"]
    assert clock.pending_timers() == 1
    late.cancel()
    clock.advance(10**9)
    assert fired == ["early"]
    assert clock.pending_timers() == 0


def test_fake_clock_never_goes_back():
    clock = FakeClock(10)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(5)
    clock.set(20)
    assert clock.time_ns() == 20
