"""Tenant label configuration: parsing, errors, precedence, bounded cardinality."""

from __future__ import annotations

import re

import pytest

from ovstop.errors import OvstopError
from ovstop.model.labels import OVERFLOW_VALUE, LabelMap
from ovstop.runtime import Options, open_runtime

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
        "vpc": "vpc-b",
        "workload": "db",
    }
    # a rule wins over external_ids for the same label; other labels still come from external_ids
    assert label_map.labels_for("tap-a2", external_ids=({"vpc": "vpc-z", "workload": "web"},)) == {
        "vpc": "vpc-a",
        "workload": "web",
    }
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
        ('[labels]\nnames = ["bad-name"]', "not a Prometheus label name"),
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[labels]\nnames = ["vpc"]\nmax_values = "abc"', "labels.max_values must be an integer"),
        ('[labels]\nnames = ["vpc"]\nmax_values = 1.9e400', "labels.max_values must be an integer"),
        ('[labels]\nnames = ["vpc"]\nmax_values = 1.5', "labels.max_values must be an integer"),
        ('[labels]\nnames = ["vpc"]\nmax_values = 0', "labels.max_values must be an integer"),
        ('labels = "oops"', "labels must be a table"),
        ('[labels]\nnames = ["vpc"]\nexternal_ids = [1, 2]', "labels.external_ids must be a table"),
        ('[labels]\nnames = ["vpc"]\nexternal_ids = { vpc = 5 }', "labels.external_ids.vpc must be a list of strings"),
        ('[labels]\nnames = ["vpc"]\nrule = "x"', "labels.rule must be an array of tables"),
        ('[labels]\nnames = ["vpc"]\nrule = [1, 2]', "labels.rule 1 must be a table"),
        ('[labels]\nnames = ["vpc"]\n[[labels.rule]]\ninterface = 3\nvpc = "a"', "interface must be a string"),
        ('[labels]\nnames = ["__name__"]', "reserved"),
        ('[labels]\nnames = ["le"]', "reserved"),
        ('[labels]\nnames = "vpc"', "labels.names must be a list of strings"),
        ('[labels]\nnames = ["vpc", "vpc"]', "twice"),
        ('[labels]\nnames = ["vpc"]\nmax_value = 3', "unknown key labels.max_value"),
        ('[label]\nnames = ["vpc"]', "unknown key 'label'"),
    ],
)
def test_schema_errors_name_the_key(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(OvstopError, match=re.escape(message)) as info:
        LabelMap.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_non_utf8_file(tmp_path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[labels]\nnames = ["vpc"] # caf\xe9\n'.encode("latin-1"))
    with pytest.raises(OvstopError, match="not UTF-8"):
        LabelMap.load(path)


def test_a_name_ovstop_already_uses_is_refused(sandbox, tmp_path) -> None:
    """Before: ``names = ["interface"]`` was accepted and four collectors failed every round."""
    path = tmp_path / "labels.toml"
    path.write_text('[labels]\nnames = ["interface"]\n')
    options = Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False, labels=str(path))
    with pytest.raises(OvstopError, match="'interface' is already a label of ovs_vswitchd_"):
        open_runtime(options).close()
