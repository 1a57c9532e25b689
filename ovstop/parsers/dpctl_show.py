"""``dpctl/show -s``: per datapath lookup, mask and cache counters and per-port statistics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ovstop.errors import ParseError
from ovstop.parsers._text import key_values, opt_int, require_text, to_float, to_int

COMMAND = "dpctl/show"

_DP = re.compile(r"^(\S+):$")
_PORT = re.compile(r"^  port (\d+): (\S+)(?: \((.*)\))?$")
_CACHE_SIZE = re.compile(r"^    (\S+): size:(\d+)$")
# Per-port statistic lines: the prefix of each token names the direction ("RX", "TX", "UPCALL").
_STAT_PREFIX = {"RX packets": "rx", "TX packets": "tx", "UPCALL packets": "upcall"}
_STAT_KEYS = {
    "rx": {
        "packets": "rx_packets",
        "errors": "rx_errors",
        "dropped": "rx_dropped",
        "overruns": "rx_over_errors",
        "frame": "rx_frame_errors",
    },
    "tx": {
        "packets": "tx_packets",
        "errors": "tx_errors",
        "dropped": "tx_dropped",
        "aborted": "tx_aborted_errors",
        "carrier": "tx_carrier_errors",
    },
    "upcall": {"packets": "upcall_packets", "errors": "upcall_errors"},
}
_BYTES = re.compile(r"^    RX bytes:(\S+)(?: \([^)]*\))?\s+TX bytes:(\S+)")


@dataclass(frozen=True)
class DpctlPort:
    """A datapath port; ``stats`` maps netdev_stats names (``rx_packets`` …) to values, None for ``?``."""

    port_no: int
    name: str
    type: str
    config: dict[str, str] = field(default_factory=dict)
    stats: dict[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class DpctlDatapath:
    """Datapath counters; mask and cache figures are None on datapaths that do not report them
    (the userspace datapath prints neither)."""

    name: str
    hit: int
    missed: int
    lost: int
    flows: int
    mask_hit: int | None = None
    masks: int | None = None
    mask_hit_per_pkt: float | None = None
    cache_hit: int | None = None
    cache_hit_rate: float | None = None
    caches: dict[str, int] = field(default_factory=dict)
    ports: tuple[DpctlPort, ...] = ()


def _port_stats(line: str, stats: dict[str, int | None]) -> bool:
    """Fold one statistics line into ``stats``; False when the line is not a statistics line."""
    body = line.strip()
    if m := _BYTES.match(line):
        stats["rx_bytes"] = opt_int(COMMAND, "RX bytes", m.group(1))
        stats["tx_bytes"] = opt_int(COMMAND, "TX bytes", m.group(2))
        return True
    if body.startswith("collisions:"):
        stats["collisions"] = opt_int(COMMAND, "collisions", body.partition(":")[2].strip())
        return True
    for prefix, direction in _STAT_PREFIX.items():
        if body.startswith(prefix + ":"):
            tokens = key_values(body[len(prefix) - len("packets") :])
            for key, name in _STAT_KEYS[direction].items():
                if key in tokens:
                    stats[name] = opt_int(COMMAND, name, tokens[key])
            return True
    return False


class _Builder:
    """Accumulates one datapath's fields while its lines go by."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fields: dict[str, Any] = {}
        self.caches: dict[str, int] = {}
        self.ports: list[DpctlPort] = []

    def build(self) -> DpctlDatapath:
        for required in ("hit", "missed", "lost", "flows"):
            if required not in self.fields:
                raise ParseError(f"{COMMAND}: datapath {self.name} has no {required!r} figure")
        return DpctlDatapath(name=self.name, caches=self.caches, ports=tuple(self.ports), **self.fields)


def _header_line(dp: _Builder, body: str) -> bool:
    """Parse ``lookups:``/``flows:``/``masks:``/``cache:`` lines; False for anything else."""
    key, _, rest = body.partition(":")
    kv = key_values(rest)
    if key == "lookups":
        for name in ("hit", "missed", "lost"):
            if name not in kv:
                raise ParseError(f"{COMMAND}: lookups line without {name}: {body[:60]!r}")
            dp.fields[name] = to_int(COMMAND, name, kv[name])
    elif key == "flows":
        dp.fields["flows"] = to_int(COMMAND, "flows", rest.strip())
    elif key == "masks":
        dp.fields["mask_hit"] = to_int(COMMAND, "masks hit", kv.get("hit", ""))
        dp.fields["masks"] = to_int(COMMAND, "masks total", kv.get("total", ""))
        dp.fields["mask_hit_per_pkt"] = to_float(COMMAND, "masks hit/pkt", kv.get("hit/pkt", ""))
    elif key == "cache":
        dp.fields["cache_hit"] = to_int(COMMAND, "cache hit", kv.get("hit", ""))
        dp.fields["cache_hit_rate"] = to_float(COMMAND, "cache hit-rate", kv.get("hit-rate", "").rstrip("%"))
    else:
        return key == "caches"
    return True


_DATAPATH_START = re.compile(r"\n(?=\S)")


def _without_ports(text: str) -> str:
    """``text`` without its port lines: each datapath's own figures come before its first ``port`` line, and
    every line up to the next datapath's (the next line not indented) is a port's."""
    sections = _DATAPATH_START.split(text)
    return "\n".join(s[:cut] if (cut := s.find("\n  port ")) >= 0 else s for s in sections)


def parse(text: str, ports: bool = True) -> tuple[DpctlDatapath, ...]:
    """Datapaths in output order (with or without ``-s``).

    Without ``ports`` the port lines and their statistics are cut off unread (``ports`` left empty): the
    datapath's own figures of a 1,000-port reply without a Python step per line.
    """
    text = require_text(COMMAND, text)
    if not ports:
        text = _without_ports(text)
    builders: list[_Builder] = []
    port: DpctlPort | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if m := _DP.match(line):
            builders.append(_Builder(m.group(1)))
            port = None
            continue
        if not builders or not line.startswith("  "):
            raise ParseError(f"{COMMAND}: unexpected line {line[:60]!r}")
        dp = builders[-1]
        if m := _PORT.match(line):
            inner = m.group(3) or "system"
            ptype, _, items = inner.partition(": ")
            config = dict(i.partition("=")[::2] for i in items.split(", ") if "=" in i) if items else {}
            port = DpctlPort(int(m.group(1)), m.group(2), ptype, config)
            dp.ports.append(port)
        elif line.startswith("    ") and port is not None and _port_stats(line, port.stats):
            continue
        elif m := _CACHE_SIZE.match(line):
            dp.caches[m.group(1)] = int(m.group(2))
        elif not line.startswith("    "):
            _header_line(dp, line.strip())
    if not builders:
        raise ParseError(f"{COMMAND}: no datapath found")
    return tuple(b.build() for b in builders)
