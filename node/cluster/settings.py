"""A validator's settings beside a node's configuration, and their command-line flags."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ledger.attestation import default_quorum
from node.config import parse_address
from node.errors import ConfigError
from node.keys import parse_public_key
from node.pipeline.jetstream import DEFAULT_STREAM


@dataclass(frozen=True, slots=True)
class ValidatorSettings:
    """What a validator adds to a node's configuration."""

    nats_urls: tuple[str, ...]
    validator_key: Path  # this validator's attestation key (PEM)
    validators: tuple[bytes, ...]  # every validator's public key
    quorum: int = 0  # 0: more than two thirds of the validators
    log_stream: str = DEFAULT_STREAM
    replicas: int = 3  # stream replicas
    tick_ms: int = 0  # 0: half the block interval
    purge_step: int = 256  # purge the streams once everyone moved this many messages (0: never)
    log_max_msgs: int = 0  # JetStream's own bound on the log stream (0: none)
    log_max_age_s: float = 0.0  # ... and on its messages' age (0: none)
    peers: tuple[str, ...] = ()  # other validators' client addresses, to catch up from

    def effective_quorum(self) -> int:
        """The configured quorum, or the default for the number of validators."""
        return self.quorum or default_quorum(len(self.validators))


def add_validator_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``python -m node.roles.validator`` beyond a node's."""
    parser.add_argument("--nats", help="NATS server URLs, comma-separated")
    parser.add_argument("--validator-key", type=Path, help="this validator's attestation key")
    parser.add_argument("--validators", help="every validator's public key (hex), comma-separated")
    parser.add_argument("--quorum", type=int, default=0, help="attestations for finality")
    parser.add_argument("--log-stream", default=DEFAULT_STREAM, help="the JetStream stream")
    parser.add_argument("--replicas", type=int, default=3, help="stream replicas")
    parser.add_argument(
        "--tick-ms", type=int, default=0, help="tick period (0: half the block interval)"
    )
    parser.add_argument(
        "--purge-step",
        type=int,
        default=256,
        help="purge the streams below every validator's final block once that moved this "
        "many log messages (0: never)",
    )
    parser.add_argument(
        "--log-max-msgs", type=int, default=0, help="JetStream's bound on the log (0: none)"
    )
    parser.add_argument(
        "--log-max-age-s", type=float, default=0.0, help="... on its messages' age (0: none)"
    )
    parser.add_argument(
        "--peers",
        default="",
        help="other validators' client addresses (host:port, comma-separated): a validator "
        "behind the log's retained tail catches up from them",
    )


def settings_from_args(args: argparse.Namespace) -> ValidatorSettings:
    """The validator settings of the command line."""
    if not args.nats or args.validator_key is None or not args.validators:
        msg = "a validator needs --nats, --validator-key and --validators"
        raise ConfigError(msg)
    peers = tuple(address for address in (args.peers or "").split(",") if address)
    for address in peers:
        parse_address(address)  # a ConfigError for a malformed one
    return ValidatorSettings(
        nats_urls=tuple(url for url in args.nats.split(",") if url),
        validator_key=args.validator_key,
        validators=tuple(parse_public_key(text) for text in args.validators.split(",") if text),
        quorum=args.quorum,
        log_stream=args.log_stream,
        replicas=args.replicas,
        tick_ms=args.tick_ms,
        purge_step=args.purge_step,
        log_max_msgs=args.log_max_msgs,
        log_max_age_s=args.log_max_age_s,
        peers=peers,
    )
