"""``dpif-netdev/pmd-perf-show``: per-thread counters and, with ``pmd-perf-metrics=true``, the seven
histograms (31 bounded bins plus a ``>`` overflow bin each), which become :class:`Histogram` values."""

from __future__ import annotations

import functools
import math
import re

from ovstop.errors import ParseError
from ovstop.model.metric import Histogram
from ovstop.parsers._text import require_text, to_float, to_int
from ovstop.parsers.pmd_thread import THREAD_HEADER, PmdThread, header

COMMAND = "dpif-netdev/pmd-perf-show"

_LINE = re.compile(r"^  (?:- )?([A-Za-z][^:]*):\s*(\d+)(?:\s+\((.*)\))?\s*$")
_DURATION = re.compile(r"^Measurement duration: ([\d.]+) s$")
_COUNTERS = {
    "Iterations": "iterations",
    "Used TSC cycles": "used_cycles",
    "idle iterations": "idle_iterations",
    "busy iterations": "busy_iterations",
    "sleep iterations": "sleep_iterations",
    "Rx packets": "rx_packets",
    "Datapath passes": "passes",
    "PHWOL hits": "phwol_hits",
    "MFEX Opt hits": "mfex_opt_hits",
    "Simple Match hits": "simple_match_hits",
    "EMC hits": "emc_hits",
    "SMC hits": "smc_hits",
    "Megaflow hits": "megaflow_hits",
    "Upcalls": "upcalls",
    "Lost upcalls": "lost_upcalls",
    "Tx packets": "tx_packets",
    "Tx batches": "tx_batches",
}
_RATIO = re.compile(r"([\d.]+) (us/it|cycles/pkt|passes/pkt|subtbl lookups/hit|us/upcall|pkts/batch)")
_RATIO_NAMES = {
    "us/it": "us_per_iteration",
    "cycles/pkt": "busy_cycles_per_packet",
    "passes/pkt": "passes_per_packet",
    "subtbl lookups/hit": "subtable_lookups_per_hit",
    "us/upcall": "us_per_upcall",
    "pkts/batch": "packets_per_batch",
}
HISTOGRAMS = {
    "cycles/it": "cycles_per_iteration",
    "packets/it": "packets_per_iteration",
    "cycles/pkt": "cycles_per_packet",
    "pkts/batch": "packets_per_batch",
    "max vhost qlen": "max_vhost_queue_length",
    "vhost qlen": "max_vhost_queue_length",
    "upcalls/it": "upcalls_per_iteration",
    "cycles/upcall": "cycles_per_upcall",
}
"""Printed histogram column title -> histogram name (the averages row titles ``max vhost qlen`` as
``vhost qlen``)."""


def _column_names(line: str) -> list[str]:
    titles = re.split(r"\s{2,}", line.strip())
    return [HISTOGRAMS.get(t, re.sub(r"\W+", "_", t).strip("_")) for t in titles]


@functools.lru_cache(maxsize=64)
def _bounds(walls: tuple[str, ...], name: str) -> tuple[float, ...]:
    """A histogram's upper bounds from its printed walls (``>`` for the overflow bin). OVS prints the same
    walls every time: the same tuple is given back, read once."""
    bounds = tuple(math.inf if wall == ">" else float(to_int(COMMAND, "histogram bound", wall)) for wall in walls)
    for wall, low, high in zip(walls[1:], bounds, bounds[1:], strict=False):
        if high < low:
            raise ParseError(f"{COMMAND}: histogram {name} bounds go down at {wall}")
    if not bounds or bounds[-1] != math.inf:
        raise ParseError(f"{COMMAND}: histogram {name} has no overflow bin")
    return bounds


def _counts(texts: tuple[str, ...]) -> tuple[int, ...]:
    """A histogram's counts; a ParseError names the first that is not an integer."""
    try:
        return tuple(map(int, texts))
    except ValueError:
        return tuple(to_int(COMMAND, "histogram count", text) for text in texts)


def _histograms(lines: list[str], start: int, thread: PmdThread) -> int:
    """Parse the block after a ``Histograms`` line into ``thread``; returns the index after it."""
    if start >= len(lines):
        raise ParseError(f"{COMMAND}: histogram block without a header")
    names = _column_names(lines[start])
    width = 2 * len(names)
    rows: list[list[str]] = []
    i = start + 1
    while i < len(lines) and not lines[i].startswith("---"):
        tokens = lines[i].split()
        if len(tokens) != width:
            raise ParseError(f"{COMMAND}: histogram row has {len(tokens)} fields, expected {width}")
        rows.append(tokens)
        i += 1
    # Column by column: each histogram's walls, then its counts (a thousand numbers a round with two threads).
    columns = list(zip(*rows, strict=True)) if rows else [()] * width
    for col, name in enumerate(names):
        thread.histograms[name] = Histogram(_bounds(columns[2 * col], name), _counts(columns[2 * col + 1]))
    # Dashes, a title row and one row of averages (the averages of the whole run, not of the bins).
    if i + 2 < len(lines):
        avg_names = _column_names(lines[i + 1])
        values = lines[i + 2].split()
        if len(values) == len(avg_names):
            for name, value in zip(avg_names, values, strict=True):
                thread.ratios[f"avg_{name}"] = to_float(COMMAND, f"average {name}", value)
            return i + 3
    return i + 1


def parse(text: str) -> tuple[PmdThread, ...]:
    """Threads in output order; every thread carries ``ratios["duration_s"]`` when the output has it."""
    text = require_text(COMMAND, text)
    lines = text.splitlines()
    threads: list[PmdThread] = []
    duration: float | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if m := _DURATION.match(line.strip()):
            duration = to_float(COMMAND, "measurement duration", m.group(1))
        elif m := THREAD_HEADER.match(line.strip()):
            threads.append(header(m))
            if duration is not None:
                threads[-1].ratios["duration_s"] = duration
            duration = None
        elif line.strip() == "Histograms":
            if not threads:
                raise ParseError(f"{COMMAND}: histograms before any thread header")
            i = _histograms(lines, i, threads[-1])
        elif (m := _LINE.match(line)) and m.group(1) in _COUNTERS:
            if not threads:
                raise ParseError(f"{COMMAND}: statistics before any thread header: {line[:60]!r}")
            threads[-1].counters[_COUNTERS[m.group(1)]] = to_int(COMMAND, m.group(1), m.group(2))
            for value, unit in _RATIO.findall(m.group(3) or ""):
                threads[-1].ratios[_RATIO_NAMES[unit]] = to_float(COMMAND, unit, value)
    if not threads:
        raise ParseError(f"{COMMAND}: no thread found")
    return tuple(threads)
