"""Node configuration: a TOML file, overridden by command-line flags.

Example file (every key optional except where the role needs it)::

    role = "operator"             # or "replica"
    data_dir = "data/operator"
    listen = "127.0.0.1:7400"     # port 0 picks a free port (see port_file)
    operator_key = "operator.pem" # operator: signing key; replica: to learn its public key
    chain_id = "p2pex-local"
    block_interval_ms = 50        # cut a block this long after its first transaction came ...
    block_max_txs = 500           # ... or as soon as it holds this many
    verify_workers = 1            # operator: processes checking signatures (0: on the event loop)
    gc_freeze_interval_s = 1.0    # collect young objects and freeze survivors this often (0: off)
    gc_full_interval_s = 600.0    # a full collection this often (0: never; see node/gc_policy.py)
    loop_slice_us = 100           # Linux: ask a short scheduling slice for the event loop (0: off)
    slot_length_ms = 0            # > 0: close slot s's gate at s * slot_length_ms (Unix ms)
    clearing_model = "loss+congestion"  # basic, loss, congestion, loss+congestion or heat
    upstream_wait_s = 10.0        # replica with an empty store: give up if its upstream is
                                  # unreachable this long after start-up
    max_frame = 8388608           # bytes
    idle_timeout_s = 300
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from node.errors import ConfigError
from node.roles.sched_hint import MAX_SLICE_US, MIN_SLICE_US
from node.wire.protocol import DEFAULT_MAX_FRAME

ROLES = ("operator", "replica")
# The models ``clearing.clear`` takes (``clearing.spec.Model``; importing it here
# would load the solver stack into every command; tests/node keep the two equal).
CLEARING_MODELS = ("basic", "loss", "congestion", "loss+congestion", "heat")


def parse_address(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` into a pair.

    >>> parse_address("127.0.0.1:7400")
    ('127.0.0.1', 7400)

    Raises:
        ConfigError: not ``HOST:PORT`` with a port in 0..65535.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        msg = f"address {text!r} is not HOST:PORT"
        raise ConfigError(msg)
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a node process needs to start."""

    role: str = "operator"
    data_dir: Path = Path("p2pex-data")
    listen: str = "127.0.0.1:7400"
    upstream: str | None = None  # replica: HOST:PORT of the operator or another replica
    operator_key: Path | None = None  # PEM file of the operator's signing key
    operator_public_key: str | None = None  # hex; a replica may give this instead of the key
    chain_id: str = "p2pex-local"
    block_interval_ms: int = 50
    block_max_txs: int = 500
    verify_workers: int = 1
    gc_freeze_interval_s: float = 1.0
    gc_full_interval_s: float = 600.0
    loop_slice_us: int = 100  # see node/sched_hint.py
    slot_length_ms: int = 0
    clearing_model: str = "loss+congestion"  # one of CLEARING_MODELS: the penalised QP
    upstream_wait_s: float = 10.0  # replica, empty store: unreachable upstream this long -> exit
    max_frame: int = DEFAULT_MAX_FRAME
    idle_timeout_s: float = 300.0
    port_file: Path | None = None  # the node writes its actual port here once it listens

    def validate(self) -> NodeConfig:
        """Return ``self`` after checking every field.

        Raises:
            ConfigError: a field is out of range or the role lacks what it needs.
        """
        if self.role not in ROLES:
            msg = f"role {self.role!r}, want one of {ROLES}"
            raise ConfigError(msg)
        parse_address(self.listen)
        if self.role == "replica":
            if self.upstream is None:
                msg = "a replica needs an upstream (HOST:PORT)"
                raise ConfigError(msg)
            parse_address(self.upstream)
            if self.operator_key is None and self.operator_public_key is None:
                msg = "a replica needs the operator's key file or public key"
                raise ConfigError(msg)
        if self.role == "operator" and self.operator_key is None:
            msg = "an operator needs its signing key (operator_key)"
            raise ConfigError(msg)
        for name in ("block_interval_ms", "block_max_txs", "max_frame"):
            if getattr(self, name) < 1:
                msg = f"{name} must be at least 1, got {getattr(self, name)}"
                raise ConfigError(msg)
        if (
            min(self.slot_length_ms, self.verify_workers) < 0
            or min(self.gc_freeze_interval_s, self.gc_full_interval_s) < 0
            or self.idle_timeout_s <= 0
        ):
            msg = (
                "slot_length_ms, verify_workers and the gc intervals must be >= 0, "
                "idle_timeout_s > 0"
            )
            raise ConfigError(msg)
        if self.loop_slice_us != 0 and not MIN_SLICE_US <= self.loop_slice_us <= MAX_SLICE_US:
            msg = (
                f"loop_slice_us must be 0 (off) or {MIN_SLICE_US}-{MAX_SLICE_US}, "
                f"got {self.loop_slice_us}"
            )
            raise ConfigError(msg)
        if self.clearing_model not in CLEARING_MODELS:
            msg = (
                f"clearing_model {self.clearing_model!r} is not a model; "
                f"want one of {', '.join(CLEARING_MODELS)}"
            )
            raise ConfigError(msg)
        if self.upstream_wait_s <= 0:
            msg = f"upstream_wait_s must be > 0, got {self.upstream_wait_s}"
            raise ConfigError(msg)
        if not self.chain_id:
            msg = "chain_id must not be empty"
            raise ConfigError(msg)
        return self


_PATH_FIELDS = {"data_dir", "operator_key", "port_file"}


def config_from_mapping(values: dict[str, Any], base: NodeConfig | None = None) -> NodeConfig:
    """Return ``base`` (or the defaults) updated with ``values``; ``None`` values are skipped.

    Raises:
        ConfigError: an unknown key or a value of the wrong type.
    """
    config = base or NodeConfig()
    known = {f.name: f for f in fields(NodeConfig)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key not in known:
            msg = f"unknown configuration key {key!r}"
            raise ConfigError(msg)
        default = getattr(NodeConfig(), key)
        if key in _PATH_FIELDS:
            value = Path(value)
        elif isinstance(default, bool | int) and not isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int):
                msg = f"{key} must be an integer, got {value!r}"
                raise ConfigError(msg)
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                msg = f"{key} must be a number, got {value!r}"
                raise ConfigError(msg)
            value = float(value)
        elif not isinstance(value, str):
            msg = f"{key} must be a string, got {value!r}"
            raise ConfigError(msg)
        changes[key] = value
    return replace(config, **changes)


def load_config(path: Path | None, overrides: dict[str, Any]) -> NodeConfig:
    """Read a TOML file (if given), apply ``overrides`` and validate.

    Relative paths in the file are taken relative to the file's directory.

    Raises:
        ConfigError: unreadable file, bad TOML, unknown key, bad value.
    """
    config = NodeConfig()
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            msg = f"cannot read configuration {path}: {exc}"
            raise ConfigError(msg) from exc
        for key in _PATH_FIELDS & values.keys():
            if isinstance(values[key], str):
                values[key] = str(path.parent / values[key])
        config = config_from_mapping(values, config)
    return config_from_mapping(overrides, config).validate()
