"""ovs-vswitchd as a process: start time (for uptime), CPU time and resident memory, from /proc.

The pid is the one in the control socket's name (``ovs-vswitchd.<pid>.ctl``), so this follows a restart.
When that pid is not visible (another PID namespace), the series are simply absent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ovstop.collect.base import Sources, Tables
from ovstop.model.metric import Kind, MetricSpec, Sample

START = MetricSpec(
    "ovs_vswitchd_process_start_time_seconds",
    Kind.GAUGE,
    "Start time of ovs-vswitchd since the Unix epoch.",
    ("process", "start_time"),
    unit="seconds",
)
CPU = MetricSpec(
    "ovs_vswitchd_process_cpu_seconds_total",
    Kind.COUNTER,
    "User and system CPU time ovs-vswitchd has used.",
    ("process", "cpu_seconds"),
    unit="seconds",
)
RSS = MetricSpec(
    "ovs_vswitchd_process_resident_memory_bytes",
    Kind.GAUGE,
    "Resident memory of ovs-vswitchd.",
    ("process", "resident_memory"),
    unit="bytes",
)

_CTL_PID = re.compile(r"\.(\d+)\.ctl$")
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def read_stat(pid: int | str) -> tuple[float, float, float] | None:
    """(start time since the epoch, CPU seconds, resident bytes) of a process from /proc; None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name, which may itself hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, start_ticks, rss_pages = int(fields[11]), int(fields[12]), int(fields[19]), int(fields[21])
    return _BOOT + start_ticks / _TICKS, (utime + stime) / _TICKS, float(rss_pages * _PAGE)


_BOOT = _boot_time()


class ProcessCollector:
    name = "process"
    source = "unixctl"
    specs = (START, CPU, RSS)

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        client = sources.unixctl
        match = _CTL_PID.search(client.connected_path) if client is not None else None
        if match is None:
            return
        stat = read_stat(match.group(1))
        if stat is None:
            return
        start, cpu, rss = stat
        yield Sample(START, (), start)
        yield Sample(CPU, (), cpu)
        yield Sample(RSS, (), rss)
