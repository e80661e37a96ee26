"""Optimality certificates: KKT on every model, perturbations rejected, plain round trip."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from clearing import (
    CertificateError,
    Clearer,
    certificate_from_plain,
    certificate_to_plain,
    check_certificate,
    clear,
    load_reference_case,
    pool_dispatch,
)
from tests.clearing.helpers import y_feeder_case

MODELS = [
    ("basic", {}),
    ("loss", {"alpha": 0.01}),
    ("congestion", {}),
    ("loss+congestion", {"alpha": 0.005}),
    ("heat", {}),
    ("heat", {"alpha": 0.005, "beta": 0.005}),
    ("basic", {"line_limits": True}),
    ("heat", {"line_limits": True}),
]


@pytest.fixture(scope="module")
def reference():
    return load_reference_case()


@pytest.fixture(scope="module")
def results(reference):
    clearer = Clearer()
    return [clear(reference, m, clearer=clearer, **kw) for m, kw in MODELS]


def only_ints_and_strings(value) -> bool:
    if isinstance(value, list):
        return all(only_ints_and_strings(v) for v in value)
    return isinstance(value, int | str) and not isinstance(value, bool)


@pytest.mark.parametrize("k", range(len(MODELS)), ids=[f"{m}-{kw}" for m, kw in MODELS])
def test_every_model_passes_kkt_before_and_after_the_plain_round_trip(reference, results, k):
    result = results[k]
    report = check_certificate(reference, result.certificate)
    assert report.ok, report.failures
    plain = certificate_to_plain(result.certificate)
    assert only_ints_and_strings(plain)
    # what the ledger stores must survive a JSON-like re-encoding unchanged
    plain = json.loads(json.dumps(plain))
    back = certificate_from_plain(plain)
    assert certificate_to_plain(back) == plain
    report = check_certificate(reference, back)
    assert report.ok, report.failures
    # a margin: the worst check uses well under the allowance
    assert max(report.residuals.values()) < 0.1


def test_pool_certificate(reference):
    pool = pool_dispatch(reference)
    grid_only = reference.without([p.name for p in reference.peers if p.role.value == "producer"])
    grid_only = dataclasses.replace(
        grid_only, peers=tuple(dataclasses.replace(p, partners=None) for p in grid_only.peers)
    )
    assert check_certificate(grid_only, pool.certificate).ok


def perturbed(cert, field, index, delta):
    values = getattr(cert.solution, field).copy()
    values[index] += delta
    return dataclasses.replace(cert, solution=dataclasses.replace(cert.solution, **{field: values}))


@pytest.mark.parametrize(
    ("field", "delta", "check"),
    [
        ("P", 0.5, "primal.link"),  # kW: the peer's balance 12.1 breaks
        ("p", 1.0, "primal"),  # a trade without its mirror
        ("pi", 0.01, "stationarity"),  # a price that is not the marginal cost
        ("tau", -0.01, "stationarity"),
        ("up", 0.05, "complementarity"),  # a multiplier on a slack bound
    ],
)
def test_perturbed_solutions_are_rejected(results, reference, field, delta, check):
    cert = results[0].certificate
    index = int(np.argmax(np.abs(getattr(cert.solution, field))))
    if field == "up":
        index = reference.names.index("G16")  # a producer far from its bound
    report = check_certificate(reference, perturbed(cert, field, index, delta))
    assert not report.ok
    assert any(f.startswith(check) for f in report.failures), report.failures


def test_a_swapped_spec_is_rejected(reference, results):
    cert = results[1].certificate  # loss model with alpha = 0.01
    wrong = dataclasses.replace(
        cert, spec=dataclasses.replace(cert.spec, alpha=tuple(0.0 for _ in cert.spec.alpha))
    )
    assert not check_certificate(reference, wrong).ok


def test_certificate_must_fit_the_case(reference, results):
    other = y_feeder_case()
    with pytest.raises(CertificateError, match="peers differ"):
        check_certificate(other, results[0].certificate)
    cert = results[0].certificate
    short = dataclasses.replace(
        cert, solution=dataclasses.replace(cert.solution, tau=cert.solution.tau[:-1])
    )
    with pytest.raises(CertificateError, match="tau has"):
        check_certificate(reference, short)
    bad_line = dataclasses.replace(cert, spec=dataclasses.replace(cert.spec, penalised=("L99",)))
    with pytest.raises(CertificateError, match="L99"):
        check_certificate(reference, bad_line)


@pytest.mark.parametrize(
    ("mutate", "text"),
    [
        (lambda p: p[:5], "11 items"),
        (lambda p: [2, *p[1:]], "version"),
        (lambda p: [*p[:4], 2, *p[5:]], "heat must be 0 or 1"),
        (lambda p: [*p[:7], [1.5], *p[8:]], "alpha must be a list of ints"),
        (lambda p: [*p[:3], [1], *p[4:]], "names must be a list of strings"),
        (lambda p: [*p[:10], p[10][:-1]], "value lists"),
    ],
)
def test_malformed_plain_certificates(results, mutate, text):
    plain = certificate_to_plain(results[0].certificate)
    with pytest.raises(CertificateError, match=text):
        certificate_from_plain(mutate(plain))


def test_non_finite_values_cannot_be_encoded(results):
    cert = perturbed(results[0].certificate, "P", 0, float("nan"))
    with pytest.raises(CertificateError, match="non-finite"):
        certificate_to_plain(cert)


def test_options_must_match_the_tariff_when_the_model_is_given(reference):
    # the reference tariff: alpha = beta = 0.005
    clearer = Clearer()
    loss = clear(reference, "loss", clearer=clearer)
    assert check_certificate(reference, loss.certificate, model="loss").ok
    report = check_certificate(reference, loss.certificate, model="basic")
    assert not report.ok and any("alpha differs" in f for f in report.failures)
    other = clear(reference, "loss", alpha=0.02, clearer=clearer)
    assert check_certificate(reference, other.certificate).ok  # optimal for its own options
    assert not check_certificate(reference, other.certificate, model="loss").ok
    grown = clear(reference, "congestion", beta=0.02, clearer=clearer)  # 4 x the tariff
    assert check_certificate(reference, grown.certificate, model="congestion").ok
    uneven = clear(reference, "congestion", beta={"C1": 0.02}, clearer=clearer)
    report = check_certificate(reference, uneven.certificate, model="congestion")
    assert any("beta" in f for f in report.failures)
