"""Periodic optimal clearing: radial network, QP models, prices, flows, losses, certificates.

The chapter's P2P market (section 12.6, equations 12.1-12.38) on a radial
feeder: :func:`clear` solves one model, :func:`congestion_procedure` runs
12.6.3, :func:`pool_dispatch` gives the pool baseline, :func:`check_certificate`
verifies a recorded clearing without a solver, :func:`round_settlement`
turns a clearing into integer Wh and ticks, and :func:`settle_certificate`
does both from a recorded certificate (what the ledger records).
The ledger's integers are mapped onto a case's floats in one place, ``market.units``.
See docs/clearing.md.
At community scale, :func:`clear_auto` solves an all-pairs market in the
aggregated form (peer groups and bus-pair blocks, :mod:`clearing.aggregate`)
and any other in the per-pair form. See docs/community-clearing.md.
"""

from clearing.aggregate import AggregateClearer as AggregateClearer
from clearing.aggregate import AggregateClearing as AggregateClearing
from clearing.aggregate import ClearingForm as ClearingForm
from clearing.aggregate import CommunityClearing as CommunityClearing
from clearing.aggregate import clear_aggregated as clear_aggregated
from clearing.aggregate import clear_auto as clear_auto
from clearing.aggregate_certificate import AggregateCertificate as AggregateCertificate
from clearing.aggregate_certificate import (
    aggregate_certificate_from_plain as aggregate_certificate_from_plain,
)
from clearing.aggregate_certificate import (
    aggregate_certificate_to_plain as aggregate_certificate_to_plain,
)
from clearing.aggregate_certificate import (
    check_aggregate_certificate as check_aggregate_certificate,
)
from clearing.aggregate_problem import NotAggregable as NotAggregable
from clearing.assets import Battery as Battery
from clearing.assets import ChpUnit as ChpUnit
from clearing.assets import ElectricVehicle as ElectricVehicle
from clearing.assets import FuelCellChp as FuelCellChp
from clearing.assets import HeatPump as HeatPump
from clearing.assets import InflexibleLoad as InflexibleLoad
from clearing.assets import Photovoltaic as Photovoltaic
from clearing.assets import PowerToGas as PowerToGas
from clearing.assets import RampLimit as RampLimit
from clearing.case import Case as Case
from clearing.case import HeatCurve as HeatCurve
from clearing.case import Peer as Peer
from clearing.case import Role as Role
from clearing.case import load_case as load_case
from clearing.case import load_reference_case as load_reference_case
from clearing.case import reference_case_path as reference_case_path
from clearing.certificate import Certificate as Certificate
from clearing.certificate import CertificateReport as CertificateReport
from clearing.certificate import certificate_from_plain as certificate_from_plain
from clearing.certificate import certificate_to_plain as certificate_to_plain
from clearing.certificate import check_certificate as check_certificate
from clearing.chp import ChpRegion as ChpRegion
from clearing.errors import CertificateError as CertificateError
from clearing.errors import ClearingError as ClearingError
from clearing.errors import CongestionUnrelievable as CongestionUnrelievable
from clearing.errors import EmptyMarket as EmptyMarket
from clearing.errors import Infeasible as Infeasible
from clearing.errors import InvalidCase as InvalidCase
from clearing.errors import InvalidNetwork as InvalidNetwork
from clearing.errors import InvalidOption as InvalidOption
from clearing.errors import InvalidPeer as InvalidPeer
from clearing.errors import NonRadialNetwork as NonRadialNetwork
from clearing.errors import ProblemTooLarge as ProblemTooLarge
from clearing.errors import SolverFailed as SolverFailed
from clearing.errors import UnknownBus as UnknownBus
from clearing.errors import UnknownPeer as UnknownPeer
from clearing.horizon import HorizonCongestion as HorizonCongestion
from clearing.horizon import HorizonResult as HorizonResult
from clearing.horizon import clear_horizon as clear_horizon
from clearing.horizon import horizon_congestion_procedure as horizon_congestion_procedure
from clearing.horizon_bridge import case_for_slot as case_for_slot
from clearing.horizon_bridge import horizon_from_case as horizon_from_case
from clearing.horizon_case import HorizonCase as HorizonCase
from clearing.horizon_case import HorizonPeer as HorizonPeer
from clearing.horizon_case import PeerKind as PeerKind
from clearing.horizon_case import SlotCurve as SlotCurve
from clearing.horizon_case import SlotSignals as SlotSignals
from clearing.horizon_case import TradeTerms as TradeTerms
from clearing.horizon_certificate import HorizonCertificate as HorizonCertificate
from clearing.horizon_certificate import check_horizon_certificate as check_horizon_certificate
from clearing.horizon_certificate import (
    horizon_certificate_from_plain as horizon_certificate_from_plain,
)
from clearing.horizon_certificate import (
    horizon_certificate_to_plain as horizon_certificate_to_plain,
)
from clearing.horizon_errors import InvalidAsset as InvalidAsset
from clearing.horizon_errors import InvalidHorizon as InvalidHorizon
from clearing.horizon_problem import HorizonSpec as HorizonSpec
from clearing.horizon_problem import build_horizon_problem as build_horizon_problem
from clearing.horizon_problem import make_horizon_spec as make_horizon_spec
from clearing.horizon_rounding import round_horizon_settlement as round_horizon_settlement
from clearing.ieee33 import community_case as community_case
from clearing.market import CongestionOutcome as CongestionOutcome
from clearing.market import CongestionRound as CongestionRound
from clearing.market import CongestionStatus as CongestionStatus
from clearing.market import clear as clear
from clearing.market import congestion_procedure as congestion_procedure
from clearing.market import pool_dispatch as pool_dispatch
from clearing.memory import estimate_bytes as estimate_bytes
from clearing.network import Line as Line
from clearing.network import Network as Network
from clearing.network import load_network as load_network
from clearing.network import network_from_dict as network_from_dict
from clearing.report import format_case_report as format_case_report
from clearing.result import ClearingResult as ClearingResult
from clearing.rounding import PeerSettlement as PeerSettlement
from clearing.rounding import Settlement as Settlement
from clearing.rounding import TradeSettlement as TradeSettlement
from clearing.rounding import round_settlement as round_settlement
from clearing.settle import result_from_certificate as result_from_certificate
from clearing.settle import settle_certificate as settle_certificate
from clearing.solution import Solution as Solution
from clearing.solve import Clearer as Clearer
from clearing.spec import Model as Model
from clearing.spec import ModelSpec as ModelSpec

__all__ = [
    "AggregateCertificate",
    "AggregateClearer",
    "AggregateClearing",
    "Battery",
    "Case",
    "Certificate",
    "CertificateError",
    "CertificateReport",
    "ChpRegion",
    "ChpUnit",
    "Clearer",
    "ClearingError",
    "ClearingForm",
    "ClearingResult",
    "CommunityClearing",
    "CongestionOutcome",
    "CongestionRound",
    "CongestionStatus",
    "CongestionUnrelievable",
    "ElectricVehicle",
    "EmptyMarket",
    "FuelCellChp",
    "HeatCurve",
    "HeatPump",
    "HorizonCase",
    "HorizonCertificate",
    "HorizonCongestion",
    "HorizonPeer",
    "HorizonResult",
    "HorizonSpec",
    "Infeasible",
    "InflexibleLoad",
    "InvalidAsset",
    "InvalidCase",
    "InvalidHorizon",
    "InvalidNetwork",
    "InvalidOption",
    "InvalidPeer",
    "Line",
    "Model",
    "ModelSpec",
    "Network",
    "NonRadialNetwork",
    "NotAggregable",
    "Peer",
    "PeerKind",
    "PeerSettlement",
    "Photovoltaic",
    "PowerToGas",
    "ProblemTooLarge",
    "RampLimit",
    "Role",
    "Settlement",
    "SlotCurve",
    "SlotSignals",
    "Solution",
    "SolverFailed",
    "TradeSettlement",
    "TradeTerms",
    "UnknownBus",
    "UnknownPeer",
    "aggregate_certificate_from_plain",
    "aggregate_certificate_to_plain",
    "build_horizon_problem",
    "case_for_slot",
    "certificate_from_plain",
    "certificate_to_plain",
    "check_aggregate_certificate",
    "check_certificate",
    "check_horizon_certificate",
    "clear",
    "clear_aggregated",
    "clear_auto",
    "clear_horizon",
    "community_case",
    "congestion_procedure",
    "estimate_bytes",
    "format_case_report",
    "horizon_certificate_from_plain",
    "horizon_certificate_to_plain",
    "horizon_congestion_procedure",
    "horizon_from_case",
    "load_case",
    "load_network",
    "load_reference_case",
    "make_horizon_spec",
    "network_from_dict",
    "pool_dispatch",
    "reference_case_path",
    "result_from_certificate",
    "round_horizon_settlement",
    "round_settlement",
    "settle_certificate",
]
