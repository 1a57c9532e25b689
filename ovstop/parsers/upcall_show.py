"""``upcall/show``: per datapath the flow-table figures of the udpif and the keys held by each revalidator."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ovstop.errors import ParseError
from ovstop.parsers._text import require_text, to_int

COMMAND = "upcall/show"

_DP = re.compile(r"^(\S+):$")
_FLOWS = re.compile(r"\((current|avg|max|limit) (\d+)\)")
_REVALIDATOR = re.compile(r"^\s+(\d+): \(keys (\d+)\)$")


@dataclass(frozen=True)
class UpcallDatapath:
    """``offloaded_flows`` is None when the switch does not print it (no hardware offload)."""

    name: str
    flows_current: int
    flows_avg: int
    flows_max: int
    flows_limit: int
    dump_duration_ms: int
    ufid_enabled: bool | None = None
    offloaded_flows: int | None = None
    revalidator_keys: dict[int, int] = field(default_factory=dict)


def _build(name: str, fields: dict[str, Any], keys: dict[int, int]) -> UpcallDatapath:
    for required in ("flows_current", "flows_avg", "flows_max", "flows_limit", "dump_duration_ms"):
        if required not in fields:
            raise ParseError(f"{COMMAND}: datapath {name} has no {required} figure")
    return UpcallDatapath(name=name, revalidator_keys=keys, **fields)


def parse(text: str) -> tuple[UpcallDatapath, ...]:
    text = require_text(COMMAND, text)
    done: list[UpcallDatapath] = []
    name: str | None = None
    fields: dict[str, object] = {}
    keys: dict[int, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if m := _DP.match(line):
            if name is not None:
                done.append(_build(name, fields, keys))
            name, fields, keys = m.group(1), {}, {}
            continue
        if name is None:
            raise ParseError(f"{COMMAND}: unexpected line before any datapath: {line[:60]!r}")
        label, _, value = (part.strip() for part in line.partition(":"))
        if m := _REVALIDATOR.match(line):
            keys[int(m.group(1))] = int(m.group(2))
        elif label == "flows":
            for key, number in _FLOWS.findall(value):
                fields[f"flows_{key}"] = int(number)
        elif label == "offloaded flows":
            fields["offloaded_flows"] = to_int(COMMAND, label, value)
        elif label == "dump duration":
            fields["dump_duration_ms"] = to_int(COMMAND, label, value.removesuffix("ms"))
        elif label == "ufid enabled":
            fields["ufid_enabled"] = value == "true"
    if name is None:
        raise ParseError(f"{COMMAND}: no datapath found")
    done.append(_build(name, fields, keys))
    return tuple(done)
