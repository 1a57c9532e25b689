"""``dpif-netdev/pmd-stats-show`` (OVS < 4.0 format; 4.0 made it an alias of ``pmd-perf-show``)."""

from __future__ import annotations

import re

from ovstop.errors import ParseError
from ovstop.parsers._text import require_text, to_float, to_int
from ovstop.parsers.pmd_thread import THREAD_HEADER, PmdThread, header

COMMAND = "dpif-netdev/pmd-stats-show"

_LINE = re.compile(r"^  ([^:]+):\s+(\S+)")
# Printed label -> canonical counter name. Older releases print subsets (no phwol/mfex/simple match).
_COUNTERS = {
    "packets received": "rx_packets",
    "packet recirculations": "recirculations",
    "phwol hits": "phwol_hits",
    "mfex opt hits": "mfex_opt_hits",
    "simple match hits": "simple_match_hits",
    "emc hits": "emc_hits",
    "smc hits": "smc_hits",
    "megaflow hits": "megaflow_hits",
    "miss with success upcall": "upcalls",
    "miss with failed upcall": "lost_upcalls",
    "idle cycles": "idle_cycles",
    "processing cycles": "busy_cycles",
}
_RATIOS = {
    "avg. datapath passes per packet": "passes_per_packet",
    "avg. subtable lookups per megaflow hit": "subtable_lookups_per_hit",
    "avg. packets per output batch": "packets_per_batch",
    "avg cycles per packet": "cycles_per_packet",
    "avg processing cycles per packet": "busy_cycles_per_packet",
}


def parse(text: str) -> tuple[PmdThread, ...]:
    """Threads in output order; unknown lines are ignored, a value that is not a number is an error."""
    text = require_text(COMMAND, text)
    threads: list[PmdThread] = []
    for line in text.splitlines():
        if m := THREAD_HEADER.match(line.strip()):
            threads.append(header(m))
            continue
        m = _LINE.match(line)
        if not m:
            continue
        if not threads:
            raise ParseError(f"{COMMAND}: statistics before any thread header: {line[:60]!r}")
        label, value = m.group(1).strip(), m.group(2)
        if label in _COUNTERS:
            threads[-1].counters[_COUNTERS[label]] = to_int(COMMAND, label, value)
        elif label in _RATIOS:
            threads[-1].ratios[_RATIOS[label]] = to_float(COMMAND, label, value)
    if not threads:
        raise ParseError(f"{COMMAND}: no thread found")
    for t in threads:
        if "rx_packets" in t.counters:
            t.counters["passes"] = t.counters["rx_packets"] + t.counters.get("recirculations", 0)
    return tuple(threads)
