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
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovstop.errors import OvstopError

OVERFLOW_VALUE = "other"
_RULE_KEYS = ("interface", "port", "bridge", "logical_switch")


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
        """Read a TOML label configuration; any mistake is one clear OvstopError."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise OvstopError(f"cannot read label config {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise OvstopError(f"label config {path} is not valid TOML: {exc}") from None
        return cls.from_dict(data.get("labels", {}), str(path))

    @classmethod
    def from_dict(cls, section: Mapping[str, Any], origin: str = "label config") -> LabelMap:
        names = tuple(section.get("names", ()))
        bad = [n for n in names if not isinstance(n, str) or not n.isidentifier()]
        if bad:
            raise OvstopError(f"{origin}: label names must be identifiers, not {bad}")
        ext: dict[str, tuple[str, ...]] = {}
        for name, keys in dict(section.get("external_ids", {})).items():
            if name not in names:
                raise OvstopError(f"{origin}: external_ids maps '{name}', which is not in names")
            ext[name] = (keys,) if isinstance(keys, str) else tuple(keys)
        rules = []
        for i, raw in enumerate(section.get("rule", ())):
            match = tuple((k, str(raw[k])) for k in _RULE_KEYS if k in raw)
            values = tuple((k, str(v)) for k, v in raw.items() if k not in _RULE_KEYS)
            unknown = [k for k, _ in values if k not in names]
            if not match or unknown:
                raise OvstopError(
                    f"{origin}: rule {i + 1} needs one of {'/'.join(_RULE_KEYS)} and only labels from names"
                    + (f" (unknown: {unknown})" if unknown else "")
                )
            rules.append(_Rule(match, values))
        max_values = int(section.get("max_values", 64))
        return cls(names, ext, tuple(rules), max_values)

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
