"""The header's figures, computed from one snapshot (no Textual): identity, source health, headline rates."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ovstop.collect import bridge, datapath, interface, memory, process, sampler, system, upcall
from ovstop.ebpf import collector as ebpf_collector
from ovstop.model.store import Snapshot, SourceHealth
from ovstop.tui.format import DASH, num, pct

# The series the header reads, named by the collectors' own specs.
HIT = datapath.HIT.name
MISSED = datapath.MISSED.name
LOST = datapath.LOST.name
RX_PACKETS = interface.traffic_name(interface.PREFIX, "rx_packets")
"""Interface counters reach OVSDB only every 5 s (stats-update-interval), so their 1 s rate is mostly 0: the
headline packet rate is what the datapath looked up (hit + missed), interfaces only when that is unknown."""
FLOWS = upcall.CURRENT.name
FLOW_LIMIT = upcall.LIMIT.name
DP_FLOWS = datapath.N_FLOWS.name
UKEYS = upcall.UKEYS.name
HANDLERS = memory.HANDLERS.name
REVALIDATORS = memory.REVALIDATORS.name
STARTED = process.START.name
INFO = system.INFO.name
BRIDGE_INFO = bridge.INFO
SELF_CPU = sampler.SELF_CPU.name
SELF_RSS = sampler.SELF_RSS.name
BPF_SECONDS = ebpf_collector.PROGRAM_SECONDS.name
SOURCES = ("unixctl", "ovsdb", "ebpf")


@dataclass(frozen=True)
class Headline:
    host: str
    ovs_version: str
    datapaths: str
    pps: float | None
    hit: float | None
    missed: float | None
    lost: float | None
    hit_ratio: str
    flows: str
    revalidators: str
    handlers: str
    ovs_uptime: float | None
    """Seconds ovs-vswitchd had been running at the snapshot's time."""
    health: tuple[tuple[str, str, str], ...]
    """(source, state: up/degraded/down/off, reason)"""
    stale_since: float | None
    self_cost: str
    """ovstop's own CPU (% of one core, over the last interval) and resident memory; empty when unknown."""


def _datapath_types(snap: Snapshot) -> str:
    types = {s.label("datapath_type") for s in snap.find(BRIDGE_INFO)}
    types |= {s.label("datapath").partition("@")[0] for s in snap.find(HIT)}
    return ",".join(sorted(t for t in types if t)) or DASH


def _flows(snap: Snapshot) -> str:
    current = snap.total(FLOWS)
    if current is None:
        current = snap.total(DP_FLOWS)
    limit = snap.total(FLOW_LIMIT)
    if current is None:
        return DASH
    return f"{num(current)}/{num(limit)}" if limit is not None else num(current)


def _state(h: SourceHealth) -> str:
    if h.off:
        return "off"
    if not h.up:
        return "down"
    return "degraded" if h.reason else "up"


def headline(snap: Snapshot, events_reason: str = "") -> Headline:
    """What the header shows for ``snap``. ``events_reason`` says why eBPF is off when it has no health."""
    meta = snap.meta
    info = snap.find(INFO)
    version = meta.get("ovs_version") or (info[0].label("version") if info else "") or DASH
    hit, missed = snap.rate_total(HIT), snap.rate_total(MISSED)
    seen = (hit or 0.0) + (missed or 0.0)
    health: list[tuple[str, str, str]] = []
    for name in (*SOURCES, *(n for n in snap.health if n not in SOURCES)):
        h: SourceHealth | None = snap.health.get(name)
        if h is not None:
            health.append((name, _state(h), h.reason))
        elif name == "ebpf":
            health.append((name, "off", events_reason or "not running"))
    down = [h.last_ok or 0.0 for h in snap.health.values() if not h.up and not h.off]
    revalidators = snap.total(REVALIDATORS)
    if revalidators is None and snap.find(UKEYS):
        revalidators = float(len({s.label("revalidator") for s in snap.find(UKEYS)}))
    handlers = snap.total(HANDLERS)
    return Headline(
        host=str(meta.get("hostname") or DASH),
        ovs_version=str(version),
        datapaths=_datapath_types(snap),
        pps=seen if hit is not None or missed is not None else snap.rate_total(RX_PACKETS),
        hit=hit,
        missed=missed,
        lost=snap.rate_total(LOST),
        hit_ratio=pct(hit, seen) if hit is not None else DASH,
        flows=_flows(snap),
        revalidators=num(revalidators) if revalidators is not None else DASH,
        handlers=num(handlers) if handlers is not None else DASH,
        ovs_uptime=snap.timestamp - started if isinstance(started := snap.value(STARTED), float) else None,
        health=tuple(health),
        stale_since=min(down) if down else None,
        self_cost=_self_cost(snap),
    )


def _self_cost(snap: Snapshot) -> str:
    cpu, rss, bpf = snap.rate_total(SELF_CPU), snap.total(SELF_RSS), snap.rate_total(BPF_SECONDS)
    if rss is None:
        return ""
    text = f"ovstop cpu {cpu * 100:.1f}% rss {num(rss)}B" if cpu is not None else f"ovstop rss {num(rss)}B"
    # What the kernel spends in ovstop's BPF programs, per second of wall time (all of them, all CPUs).
    return text + (f" bpf {bpf * 1e3:.2f}ms/s" if bpf is not None else "")


def clock_text(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "never"
