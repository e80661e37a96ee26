"""Settling from a certificate: the public path the operator and replicas share."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from clearing import (
    CertificateError,
    certificate_from_plain,
    certificate_to_plain,
    clear,
    load_reference_case,
    result_from_certificate,
    round_settlement,
    settle_certificate,
)
from tests.clearing.helpers import two_peer_case


@pytest.mark.parametrize(
    ("model", "kw"),
    [("basic", {}), ("loss+congestion", {"alpha": 0.01}), ("heat", {"alpha": 0.0, "beta": 0.0})],
)
def test_settling_a_decoded_certificate_matches_rounding_the_result(model, kw):
    case = load_reference_case()
    result = clear(case, model, **kw)
    decoded = certificate_from_plain(certificate_to_plain(result.certificate))
    settled = settle_certificate(case, decoded)
    # the certificate's fixed point moves values by at most 1e-9: same Wh and ticks
    assert settled == round_settlement(case, result)
    rebuilt = result_from_certificate(case, decoded)
    assert rebuilt.status == "certified"
    np.testing.assert_allclose(rebuilt.trades, result.trades, atol=1e-8)
    assert rebuilt.overloaded == result.overloaded


def test_a_certificate_for_other_peers_is_refused():
    case = two_peer_case()
    cert = clear(case, "basic").certificate
    other = dataclasses.replace(cert, names=("C", "G"))
    with pytest.raises(CertificateError, match="peers"):
        settle_certificate(case, other)


def test_a_certificate_with_too_few_trades_is_refused():
    case = two_peer_case()
    cert = clear(case, "basic").certificate
    short = dataclasses.replace(cert.solution, p=cert.solution.p[:0])
    with pytest.raises(CertificateError, match="field p"):
        settle_certificate(case, dataclasses.replace(cert, solution=short))


def test_certificate_options_naming_an_unknown_line_are_refused():
    case = two_peer_case()
    cert = clear(case, "basic").certificate
    spec = dataclasses.replace(cert.spec, penalised=("L99",))
    with pytest.raises(CertificateError, match="options"):
        result_from_certificate(case, dataclasses.replace(cert, spec=spec))
