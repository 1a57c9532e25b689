"""``coverage/show``: per event counter its averaged rates (last 5 s, last minute, last hour) and total.

Counters that never fired are not listed; OVS prints only how many there are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ovstop.errors import ParseError
from ovstop.parsers._text import require_text

COMMAND = "coverage/show"

_HEADER = "Event coverage"
_COUNTER = re.compile(r"^(\S+)\s+([\d.]+)/sec\s+([\d.]+)/sec\s+([\d.]+)/sec\s+total: (\d+)$")
_NEVER = re.compile(r"^(\d+) events never hit$")


@dataclass(frozen=True)
class CoverageCounter:
    name: str
    rate_5s: float
    rate_1m: float
    rate_1h: float
    total: int


@dataclass(frozen=True)
class Coverage:
    counters: tuple[CoverageCounter, ...]
    never_hit: int | None = None


def parse(text: str) -> Coverage:
    text = require_text(COMMAND, text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines[0].startswith(_HEADER):
        raise ParseError(f"{COMMAND}: output does not start with {_HEADER!r}: {lines[0][:60]!r}")
    counters: list[CoverageCounter] = []
    never_hit = None
    for line in lines[1:]:
        if m := _COUNTER.match(line):
            name, r5, r1m, r1h, total = m.groups()
            counters.append(CoverageCounter(name, float(r5), float(r1m), float(r1h), int(total)))
        elif m := _NEVER.match(line):
            never_hit = int(m.group(1))
        else:
            raise ParseError(f"{COMMAND}: unexpected line {line[:60]!r}")
    return Coverage(tuple(counters), never_hit)
