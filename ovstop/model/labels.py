"""User-configured extra labels (``vpc``, ``workload`` …) for interface, tunnel and bridge series.

The label *names* are fixed by the configuration, so they cannot grow at run time; each name's
*values* are capped (``max_values``, default 64): values past the cap are reported as ``other``.
That keeps Prometheus cardinality bounded whatever the switch holds.

Configuration (TOML, ``--labels FILE``)::

    [labels]
    names = ["vpc", "workload"]
    max_values = 64
    # Values read from Interface (then Port, then Bridge) external_ids, first key found wins.
    external_ids = { vpc = ["vpc", "ovn-vpc"], workload = ["workload"] }

    # Rules by glob on the interface, port, bridge or OVN logical switch name; the first matching rule
    # wins per label.
    [[labels.rule]]
    interface = "tap-a*"
    vpc = "vpc-a"

    [[labels.rule]]
    logical_switch = "prod-*"
    workload = "prod"

OVN logical switches (and the datapaths, ports and bindings on them) are labelled the same way: rules
on ``logical_switch``, then the Logical_Switch's external_ids with the same keys.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovstop.errors import OvstopError
from ovstop.model.metric import MetricSpec

OVERFLOW_VALUE = "other"
_RULE_KEYS = ("interface", "port", "bridge", "logical_switch")
MAX_VALUES = 100_000
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
RESERVED_NAMES = frozenset({"le", "quantile"})
"""Label names Prometheus gives a meaning (histogram buckets, summary quantiles); ``__*`` is reserved too."""


def _table(value: Any, key: str, origin: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OvstopError(f"{origin}: {key} must be a table, not {type(value).__name__}")
    return value


def _strings(value: Any, key: str, origin: str, single: bool = False) -> tuple[str, ...]:
    """A list of strings (or, with ``single``, one string standing for a list of one)."""
    if single and isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OvstopError(
            f"{origin}: {key} must be a list of strings" + (" or a string" if single else "") + f", not {value!r:.60}"
        )
    return tuple(value)


def _names(value: Any, origin: str) -> tuple[str, ...]:
    names = _strings(value, "labels.names", origin)
    for name in names:
        if not LABEL_NAME.fullmatch(name):
            raise OvstopError(
                f"{origin}: labels.names: {name!r:.60} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            )
        if name.startswith("__") or name in RESERVED_NAMES:
            raise OvstopError(f"{origin}: labels.names: {name!r} is reserved by Prometheus")
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise OvstopError(f"{origin}: labels.names lists {duplicate!r} twice")
    return names


@dataclass(frozen=True)
class _Rule:
    match: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, str], ...]


@dataclass
class LabelMap:
    """Maps an interface/port/bridge to its extra labels."""

    names: tuple[str, ...] = ()
    external_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rules: tuple[_Rule, ...] = ()
    max_values: int = 64
    _seen: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> LabelMap:
        """Read a TOML label configuration; any mistake is one clear OvstopError naming the key."""
        try:
            text = Path(path).read_bytes().decode("utf-8")
        except OSError as exc:
            raise OvstopError(f"cannot read label config {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise OvstopError(f"label config {path} is not UTF-8 text (byte {exc.start})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise OvstopError(f"label config {path} is not valid TOML: {exc}") from None
        unknown = sorted(set(data) - {"labels"})
        if unknown:
            raise OvstopError(f"label config {path}: unknown key {unknown[0]!r} (expected a [labels] table)")
        return cls.from_dict(_table(data.get("labels", {}), "labels", str(path)), str(path))

    @classmethod
    def from_dict(cls, section: Mapping[str, Any], origin: str = "label config") -> LabelMap:
        """Build from the ``[labels]`` table, checking every key's type and value (see the module docstring)."""
        unknown = sorted(set(section) - {"names", "max_values", "external_ids", "rule"})
        if unknown:
            raise OvstopError(f"{origin}: unknown key labels.{unknown[0]}")
        names = _names(section.get("names", []), origin)
        max_values = section.get("max_values", 64)
        if not isinstance(max_values, int) or isinstance(max_values, bool) or not 1 <= max_values <= MAX_VALUES:
            raise OvstopError(
                f"{origin}: labels.max_values must be an integer from 1 to {MAX_VALUES}, not {max_values!r}"
            )
        ext: dict[str, tuple[str, ...]] = {}
        for name, keys in _table(section.get("external_ids", {}), "labels.external_ids", origin).items():
            if name not in names:
                raise OvstopError(f"{origin}: labels.external_ids maps '{name}', which is not in names")
            ext[name] = _strings(keys, f"labels.external_ids.{name}", origin, single=True)
        raw_rules = section.get("rule", [])
        if not isinstance(raw_rules, list):
            raise OvstopError(f"{origin}: labels.rule must be an array of tables ([[labels.rule]])")
        rules = []
        for i, raw in enumerate(raw_rules, start=1):
            where = f"labels.rule {i}"
            raw = _table(raw, where, origin)
            for key, value in raw.items():
                if not isinstance(value, str):
                    raise OvstopError(f"{origin}: {where}: {key} must be a string, not {type(value).__name__}")
            match = tuple((k, raw[k]) for k in _RULE_KEYS if k in raw)
            values = tuple((k, v) for k, v in raw.items() if k not in _RULE_KEYS)
            unknown = [k for k, _ in values if k not in names]
            if not match or unknown:
                raise OvstopError(
                    f"{origin}: {where} needs one of {'/'.join(_RULE_KEYS)} and only labels from names"
                    + (f" (unknown: {unknown})" if unknown else "")
                )
            rules.append(_Rule(match, values))
        return cls(names, ext, tuple(rules), max_values)

    def check_specs(self, specs: Iterable[MetricSpec], origin: str = "label config") -> None:
        """Refuse a configured name that a series given these labels already has (``interface`` …)."""
        for spec in specs:
            taken = [n for n in spec.labels if spec.labels.count(n) > 1 and n in self.names]
            if taken:
                raise OvstopError(
                    f"{origin}: label name '{taken[0]}' is already a label of {spec.name}; choose another name"
                )

    def labels_for(
        self,
        interface: str = "",
        port: str = "",
        bridge: str = "",
        external_ids: tuple[Mapping[str, str], ...] = (),
        logical_switch: str = "",
    ) -> dict[str, str]:
        """Extra labels for one object; every configured name is present (empty when unknown)."""
        if not self.names:
            return {}
        subject = {"interface": interface, "port": port, "bridge": bridge, "logical_switch": logical_switch}
        out: dict[str, str] = {}
        for rule in self.rules:
            if all(subject[k] and fnmatch.fnmatchcase(subject[k], pat) for k, pat in rule.match):
                for k, v in rule.values:
                    out.setdefault(k, v)
        for name, keys in self.external_ids.items():
            if name in out:
                continue
            for ids in external_ids:
                found = next((ids[k] for k in keys if ids.get(k)), None)
                if found:
                    out[name] = found
                    break
        return {name: self._bounded(name, out.get(name, "")) for name in self.names}

    def _bounded(self, name: str, value: str) -> str:
        seen = self._seen.setdefault(name, set())
        if value in seen or not value:
            return value
        if len(seen) >= self.max_values:
            return OVERFLOW_VALUE
        seen.add(value)
        return value
