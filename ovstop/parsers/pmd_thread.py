"""The per-thread record shared by ``pmd-perf-show`` and ``pmd-stats-show``, and their thread headers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ovstop.model.metric import Histogram

# "pmd thread numa_id 0 core_id 1:" / "main thread:" / (OVS >= 3.3) "main thread numa_id 0:".
THREAD_HEADER = re.compile(r"^(pmd|main) thread(?: numa_id (-?\d+))?(?: core_id (\d+))?:$")

COUNTERS = (
    "rx_packets",
    "recirculations",
    "passes",
    "phwol_hits",
    "mfex_opt_hits",
    "simple_match_hits",
    "emc_hits",
    "smc_hits",
    "megaflow_hits",
    "upcalls",
    "lost_upcalls",
    "tx_packets",
    "tx_batches",
    "iterations",
    "busy_iterations",
    "idle_iterations",
    "sleep_iterations",
    "used_cycles",
    "busy_cycles",
    "idle_cycles",
)
"""Canonical counter names; each parser fills the ones its command prints."""


@dataclass(frozen=True)
class PmdThread:
    """One datapath thread. ``thread`` is ``"pmd"`` or ``"main"``; ``counters`` use :data:`COUNTERS`
    names; ``ratios`` hold the averages the command prints (``subtable_lookups_per_hit`` …);
    ``histograms`` hold the seven pmd-perf histograms when ``pmd-perf-metrics`` is on."""

    thread: str
    numa: int | None
    core: int | None
    counters: dict[str, int] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, Histogram] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Stable thread label: ``pmd-c<core>`` or ``main``."""
        return "main" if self.thread == "main" else f"pmd-c{self.core}"


def header(match: re.Match[str]) -> PmdThread:
    numa, core = match.group(2), match.group(3)
    return PmdThread(
        thread=match.group(1),
        numa=int(numa) if numa is not None else None,
        core=int(core) if core is not None else None,
    )
