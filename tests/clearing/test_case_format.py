"""The case format: its JSON schema, and the loader's refusal of unknown keys."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import pytest

from clearing import InvalidCase, load_case, reference_case_path
from clearing.case import case_from_dict
from clearing.errors import UnknownField
from clearing.fields import (
    CASE_FIELDS,
    CHP_FIELDS,
    HEAT_FIELDS,
    LINE_FIELDS,
    NETWORK_FIELDS,
    PEER_FIELDS,
    TARIFF_FIELDS,
)
from tests.clearing.schema_subset import errors

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema():
    path = Path(str(resources.files("clearing") / "cases" / "case.schema.json"))
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def reference():
    return json.loads(reference_case_path().read_text(encoding="utf-8"))


def test_shipped_case_follows_the_schema(schema, reference):
    assert errors(reference, schema, schema) == []


def test_schema_check_can_fail(schema, reference):
    bad = copy.deepcopy(reference)
    bad["peers"][0]["role"] = "buyer"
    bad["network"]["lines"][0]["capacity_kv"] = 5
    del bad["peers"][1]["p_max"]
    found = errors(bad, schema, schema)
    assert len(found) == 3, found
    assert any("'buyer'" in e for e in found)
    assert any("capacity_kv" in e for e in found)
    assert any("missing 'p_max'" in e for e in found)


def test_schema_keys_match_the_loader(schema):
    d = schema["$defs"]
    assert tuple(schema["properties"]) == CASE_FIELDS
    assert tuple(schema["properties"]["tariff"]["properties"]) == TARIFF_FIELDS
    assert tuple(d["network"]["properties"]) == NETWORK_FIELDS
    assert tuple(d["line"]["properties"]) == LINE_FIELDS
    assert tuple(d["peer"]["properties"]) == PEER_FIELDS
    assert tuple(d["heat"]["properties"]) == HEAT_FIELDS
    assert tuple(d["chp"]["properties"]) == CHP_FIELDS


def test_documented_example_loads_and_follows_the_schema(schema):
    text = (ROOT / "docs" / "case-format.md").read_text(encoding="utf-8")
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    example = json.loads(block)
    assert errors(example, schema, schema) == []
    case = case_from_dict(example)
    assert len(case.peers) == 3


@pytest.mark.parametrize(
    ("where", "key", "want_where"),
    [
        (lambda d: d, "tarrif", "case"),
        (lambda d: d["tariff"], "gamma", "tariff"),
        (lambda d: d["network"], "voltage", "network"),
        (lambda d: d["network"]["lines"][2], "capacity_kv", "line 'L3'"),
        (lambda d: d["peers"][0], "pmax", "peer 'C1'"),
        (lambda d: d["peers"][0]["heat"], "hmax", "peer 'C1' heat"),
        (lambda d: d["peers"][11]["chp"], "E", "peer 'G12' chp"),
    ],
)
def test_unknown_key_is_refused_by_name(reference, where, key, want_where):
    where(reference)[key] = 1.0
    with pytest.raises(UnknownField) as info:
        case_from_dict(reference)
    assert info.value.key == key
    assert info.value.where == want_where
    assert repr(key) in str(info.value)
    assert isinstance(info.value, InvalidCase)


def test_unknown_key_message_suggests_the_close_one(reference, tmp_path):
    reference["peers"][3]["p_mx"] = -3.0
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(reference), encoding="utf-8")
    want = r"peer 'C4': unknown field 'p_mx' \(did you mean 'p_max'\?\)"
    with pytest.raises(UnknownField, match=want):
        load_case(path)


def test_round_trip_stays_inside_the_format(reference):
    case = case_from_dict(reference)
    assert case_from_dict(case.to_dict()) == case
