"""Tenant label configuration: parsing, errors, precedence, bounded cardinality."""

from __future__ import annotations

import pytest

from ovstop.errors import OvstopError
from ovstop.model.labels import OVERFLOW_VALUE, LabelMap

CONFIG = """
[labels]
names = ["vpc", "workload"]
max_values = 8
external_ids = { vpc = ["vpc", "ovn-vpc"], workload = "workload" }

[[labels.rule]]
interface = "tap-a*"
vpc = "vpc-a"

[[labels.rule]]
bridge = "br-side"
workload = "side"
"""


@pytest.fixture
def label_map(tmp_path) -> LabelMap:
    path = tmp_path / "labels.toml"
    path.write_text(CONFIG)
    return LabelMap.load(path)


def test_rules_then_external_ids(label_map: LabelMap) -> None:
    assert label_map.labels_for("tap-a1", bridge="br0") == {"vpc": "vpc-a", "workload": ""}
    assert label_map.labels_for("p1", bridge="br0", external_ids=({"ovn-vpc": "vpc-b", "workload": "db"},)) == {
        "vpc": "vpc-b", "workload": "db"}
    # a rule wins over external_ids for the same label; other labels still come from external_ids
    assert label_map.labels_for("tap-a2", external_ids=({"vpc": "vpc-z", "workload": "web"},)) == {
        "vpc": "vpc-a", "workload": "web"}
    assert label_map.labels_for("x", bridge="br-side") == {"vpc": "", "workload": "side"}


def test_value_cardinality_is_bounded() -> None:
    label_map = LabelMap.from_dict({"names": ["vpc"], "max_values": 2, "external_ids": {"vpc": "vpc"}})
    values = [label_map.labels_for(f"p{i}", external_ids=({"vpc": f"vpc-{i}"},))["vpc"] for i in range(5)]
    assert values[:2] == ["vpc-0", "vpc-1"]
    assert values[2:] == [OVERFLOW_VALUE] * 3
    assert label_map.labels_for("p0", external_ids=({"vpc": "vpc-0"},))["vpc"] == "vpc-0"


def test_no_config_means_no_labels() -> None:
    assert LabelMap().labels_for("p1", external_ids=({"vpc": "a"},)) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[labels\n", "not valid TOML"),
        ('[labels]\nnames = ["bad-name"]', "identifiers"),
        ('[labels]\nnames = ["vpc"]\nexternal_ids = { zone = "z" }', "not in names"),
        ('[labels]\nnames = ["vpc"]\n[[labels.rule]]\nvpc = "a"', "needs one of"),
        ('[labels]\nnames = ["vpc"]\n[[labels.rule]]\ninterface = "a"\ntenant = "b"', "unknown"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(OvstopError, match=message) as info:
        LabelMap.load(path)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(OvstopError, match="cannot read label config"):
        LabelMap.load(tmp_path / "nope.toml")
