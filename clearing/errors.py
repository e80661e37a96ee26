"""Exceptions of the optimal clearing.

Every error the package raises is a :class:`ClearingError`::

    ClearingError
    ├── InvalidCase                 the data cannot describe a market
    │   ├── InvalidNetwork          bad voltage, line data, duplicate names
    │   │   ├── NonRadialNetwork    a loop, or buses not connected to the root
    │   │   └── UnknownBus          a line or a peer refers to a bus that does not exist
    │   ├── InvalidPeer             bad cost, bounds, role, trading set or CHP region
    │   ├── UnknownPeer             a name that is not a peer of the case
    │   ├── EmptyMarket             no producer, no consumer, or no allowed trade
    │   ├── UnknownField            a key the case format does not have (a typo)
    │   └── GridImportError         a grid file or code cannot be turned into a case
    ├── InvalidOption               an unknown model name, a negative penalty, ...
    ├── ProblemTooLarge             the clearing would need more memory than allowed
    ├── SolverFailed                the solver status is not ``optimal``
    │   └── Infeasible              the data admit no feasible clearing
    ├── CongestionUnrelievable      no clearing keeps the named lines within capacity
    └── CertificateError            a certificate cannot be decoded or does not fit the case
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clearing.market import CongestionOutcome


class ClearingError(Exception):
    """Raised when clearing data is invalid or the clearing cannot be solved."""


class InvalidCase(ClearingError):
    """Raised when case data (network, peers, tariffs) cannot describe a market."""


class InvalidNetwork(InvalidCase):
    """Raised when network data is malformed (voltage, line data, duplicate names)."""


class NonRadialNetwork(InvalidNetwork):
    """Raised when the network is not a tree rooted at its root bus."""


class UnknownBus(InvalidNetwork):
    """Raised when a line or a peer refers to a bus the network does not have."""

    def __init__(self, message: str, *, bus: str) -> None:
        super().__init__(message)
        self.bus = bus


class InvalidPeer(InvalidCase):
    """Raised when a peer's role, cost, bounds, trading set or CHP region is invalid."""

    def __init__(self, message: str, *, peer: str) -> None:
        super().__init__(message)
        self.peer = peer


class UnknownPeer(InvalidCase):
    """Raised when a name is not a peer of the case."""

    def __init__(self, message: str, *, peer: str) -> None:
        super().__init__(message)
        self.peer = peer


class EmptyMarket(InvalidCase):
    """Raised when there is nothing to clear: no producer, no consumer or no allowed trade."""


class UnknownField(InvalidCase):
    """Raised when case data holds a key the case format does not define.

    Attributes:
        key: The unknown key.
        where: Which object held it (``case``, ``network``, ``peer 'C1'``, ...).
        allowed: The keys that object may have.
    """

    def __init__(self, message: str, *, key: str, where: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.key = key
        self.where = where
        self.allowed = allowed


class GridImportError(InvalidCase):
    """Raised when a MATPOWER file, pandapower network or SimBench code cannot become a case."""


class InvalidOption(ClearingError):
    """Raised when a clearing option is invalid (unknown model, negative penalty, ...)."""


class ProblemTooLarge(ClearingError):
    """Raised, before anything is built, when a clearing's memory estimate exceeds the limit.

    Attributes:
        peers: Peers of the case.
        pairs: Trade variables (electricity and heat pairs).
        estimate_bytes: Estimated peak memory of building and solving it.
        limit_bytes: The clearer's limit.
    """

    def __init__(
        self, message: str, *, peers: int, pairs: int, estimate_bytes: int, limit_bytes: int
    ) -> None:
        super().__init__(message)
        self.peers = peers
        self.pairs = pairs
        self.estimate_bytes = estimate_bytes
        self.limit_bytes = limit_bytes


class SolverFailed(ClearingError):
    """Raised when the solver ends with any status other than ``optimal``."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


class Infeasible(SolverFailed):
    """Raised when the clearing problem has no feasible point (status ``infeasible``)."""


class CongestionUnrelievable(ClearingError):
    """Raised when congestion cannot be relieved: hard limits on the named lines are infeasible.

    Attributes:
        lines: The lines no clearing keeps within capacity.
        outcome: The congestion procedure's rounds up to where it stopped.
    """

    def __init__(self, message: str, *, lines: tuple[str, ...], outcome: CongestionOutcome) -> None:
        super().__init__(message)
        self.lines = lines
        self.outcome = outcome


class CertificateError(ClearingError):
    """Raised when a certificate cannot be decoded or does not match the case."""
