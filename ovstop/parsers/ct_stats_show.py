"""``dpctl/ct-stats-show [-m]``: connection totals per protocol, and per TCP state with ``-m``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ovstop.errors import ParseError
from ovstop.parsers._text import require_text, to_int

COMMAND = "dpctl/ct-stats-show"

_HEADER = "Connections Stats:"
_COUNT = re.compile(r"^(\w+): (\d+)$")
_STATE = re.compile(r"^\[(\w+)\]=(\d+)$")


@dataclass(frozen=True)
class CtStats:
    """``protocols`` maps the printed protocol name, lower-cased (``tcp``, ``udp``, ``icmp`` …), to its
    connection count; protocols with no connection are not printed by OVS and so are absent."""

    total: int
    protocols: dict[str, int] = field(default_factory=dict)
    tcp_states: dict[str, int] = field(default_factory=dict)


def parse(text: str) -> CtStats:
    text = require_text(COMMAND, text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines[0] != _HEADER:
        raise ParseError(f"{COMMAND}: output does not start with {_HEADER!r}: {lines[0][:60]!r}")
    total = None
    protocols: dict[str, int] = {}
    states: dict[str, int] = {}
    for line in lines[1:]:
        if m := _COUNT.match(line):
            if m.group(1) == "Total":
                total = int(m.group(2))
            else:
                protocols[m.group(1).lower()] = int(m.group(2))
        elif m := _STATE.match(line):
            states[m.group(1)] = to_int(COMMAND, "TCP state count", m.group(2))
        elif not line.startswith("Conn per"):
            raise ParseError(f"{COMMAND}: unexpected line {line[:60]!r}")
    if total is None:
        raise ParseError(f"{COMMAND}: no Total line")
    return CtStats(total, protocols, states)
