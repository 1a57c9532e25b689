"""Collector (source "ebpf") turning the capture thread's in-kernel aggregates into samples."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from typing import Any

from ovstop.collect.base import Sources, Tables
from ovstop.ebpf import kernel_drops
from ovstop.ebpf.capture import CaptureThread
from ovstop.ebpf.hooks import DEEP_OFF
from ovstop.ebpf.program import FLOW_HITS_MAX
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.model.store import Snapshot

UPCALL_LATENCY = MetricSpec(
    "ovs_vswitchd_upcall_latency_seconds",
    Kind.HISTOGRAM,
    'Kernel upcall latency, ovs_dp_upcall entry to return, per datapath in_port (port="all": every port).',
    ("upcall", "latency"),
    ("port",),
    "seconds",
)
LOOKUP_HIT = MetricSpec(
    "ovs_vswitchd_flow_lookup_hit_total",
    Kind.COUNTER,
    "Datapath flow table lookups that found a flow, counted by eBPF since capture started.",
    ("flow_lookup", "hit"),
)
LOOKUP_MISS = MetricSpec(
    "ovs_vswitchd_flow_lookup_miss_total",
    Kind.COUNTER,
    "Datapath flow table lookups that found no flow (each one becomes an upcall).",
    ("flow_lookup", "miss"),
)
LOOKUP_MASK_HIT = MetricSpec(
    "ovs_vswitchd_flow_lookup_mask_hit_total",
    Kind.COUNTER,
    "Masks tried by datapath flow lookups (n_mask_hit summed).",
    ("flow_lookup", "mask_hit"),
)
LOOKUP_CACHE_HIT = MetricSpec(
    "ovs_vswitchd_flow_lookup_cache_hit_total",
    Kind.COUNTER,
    "Datapath flow lookups answered by the mask cache (n_cache_hit summed).",
    ("flow_lookup", "cache_hit"),
)
EVENTS = MetricSpec("ovstop_ebpf_events_total", Kind.COUNTER, "eBPF events received by ovstop.", ("ebpf", "events"))
EVENTS_LOST = MetricSpec(
    "ovstop_ebpf_events_lost_total",
    Kind.COUNTER,
    "eBPF events dropped because the ring buffer was full.",
    ("ebpf", "events_lost"),
)
EVENTS_SAMPLED_OUT = MetricSpec(
    "ovstop_ebpf_events_sampled_out_total",
    Kind.COUNTER,
    "eBPF events skipped by 1-in-N sampling or the per-second rate limit.",
    ("ebpf", "sampled_out"),
)
DECODE_ERRORS = MetricSpec(
    "ovstop_ebpf_decode_errors_total",
    Kind.COUNTER,
    "eBPF event records ovstop could not decode (dropped).",
    ("ebpf", "decode_errors"),
)
DELIVERY_ERRORS = MetricSpec(
    "ovstop_ebpf_delivery_errors_total",
    Kind.COUNTER,
    "Decoded eBPF events that could not be stored or recorded (e.g. the recording's disk is full).",
    ("ebpf", "delivery_errors"),
)

PROGRAM_SECONDS = MetricSpec(
    "ovstop_bpf_program_run_seconds_total",
    Kind.COUNTER,
    "Time the kernel spent running each of ovstop's BPF programs (kernel BPF statistics, on while capture runs).",
    ("ebpf", "program", "run_seconds"),
    ("program",),
    unit="seconds",
)
PROGRAM_RUNS = MetricSpec(
    "ovstop_bpf_program_runs_total",
    Kind.COUNTER,
    "Times the kernel ran each of ovstop's BPF programs.",
    ("ebpf", "program", "runs"),
    ("program",),
)

LOOKUP_SPECS = {"hit": LOOKUP_HIT, "miss": LOOKUP_MISS, "mask_hit": LOOKUP_MASK_HIT, "cache_hit": LOOKUP_CACHE_HIT}
TOP_MISSES = 50


class EbpfCollector:
    """Samples from a running :class:`CaptureThread`; also fills tables ``flow_lookup_hits`` (per
    UFID), ``flow_lookup_misses`` (top missed in_port/key-hash pairs) and ``kernel_drops`` (counted or why not)."""

    name = "ebpf"
    source = "ebpf"
    specs = (
        UPCALL_LATENCY,
        LOOKUP_HIT,
        LOOKUP_MISS,
        LOOKUP_MASK_HIT,
        LOOKUP_CACHE_HIT,
        EVENTS,
        EVENTS_LOST,
        EVENTS_SAMPLED_OUT,
        DECODE_ERRORS,
        DELIVERY_ERRORS,
        PROGRAM_SECONDS,
        PROGRAM_RUNS,
        kernel_drops.KERNEL_DROPS,
    )

    def __init__(self, capture: CaptureThread) -> None:
        self.capture = capture
        self._delivery_errors = 0

    def collect(self, sources: Sources, tables: Tables) -> Iterable[Sample]:
        agg = self.capture.read_aggregates()
        samples = [Sample(UPCALL_LATENCY, labels_of(port=p), h) for p, h in agg.latency.items()]
        samples.append(Sample(UPCALL_LATENCY, labels_of(port="all"), agg.latency_total))
        samples += [Sample(LOOKUP_SPECS[k], (), float(v)) for k, v in agg.lookup.items()]
        samples.append(Sample(EVENTS, (), float(self.capture.events_seen)))
        samples.append(Sample(EVENTS_LOST, (), float(agg.counters["events_lost"] + self.capture.perf_lost)))
        samples.append(Sample(EVENTS_SAMPLED_OUT, (), float(agg.counters["sampled_out"])))
        samples.append(Sample(DECODE_ERRORS, (), float(self.capture.decode_errors)))
        failed = self.capture.delivery_errors
        samples.append(Sample(DELIVERY_ERRORS, (), float(failed)))
        if failed > self._delivery_errors:  # degraded while events keep failing, up again once they pass
            tables.warnings[self.source] = f"events not delivered: {self.capture.delivery_error}"
        self._delivery_errors = failed
        for program, (run_ns, runs) in self.capture.program_stats().items():
            samples.append(Sample(PROGRAM_SECONDS, labels_of(program=program), run_ns / 1e9))
            samples.append(Sample(PROGRAM_RUNS, labels_of(program=program), float(runs)))
        tables.rows["flow_lookup_hits"] = [
            {"ufid": ufid, "hits": n} for ufid, n in sorted(agg.flow_hits.items(), key=lambda kv: -kv[1])
        ]
        samples += self._kernel_drops(tables)
        top = sorted(agg.flow_misses.items(), key=lambda kv: -kv[1])[:TOP_MISSES]
        tables.rows["flow_lookup_misses"] = [
            {"in_port": port, "key_hash": f"0x{key_hash:08x}", "misses": n} for (port, key_hash), n in top
        ]
        return samples

    def _kernel_drops(self, tables: Tables) -> list[Sample]:
        """Drops by OVS reason and input port; table ``kernel_drops`` says whether they are counted, or why not."""
        counts = self.capture.read_kernel_drops()
        drop_layout = self.capture.view.drop_layout if self.capture.view is not None else None
        if counts is None or drop_layout is None:
            tables.rows["kernel_drops"] = [{"counted": False, "reason": self.capture.drops_reason}]
            return []
        tables.rows["kernel_drops"] = [{"counted": True, "reason": ""}]
        ports = {index: name for index, name in socket.if_nameindex()}
        return kernel_drops.samples(counts, drop_layout, ports)


def flow_lookup_hits(snap: Snapshot, row: Mapping[str, Any]) -> int | str:
    """The kernel lookups that found this datapath flow since capture started, or why that is not known."""
    if not str(row.get("datapath") or "").startswith("system@"):
        return "userspace datapath (eBPF counts kernel lookups only)"
    if "flow_lookup_hits" not in snap.tables:
        ebpf = snap.health.get("ebpf")
        return f"no capture ({ebpf.reason if ebpf is not None and ebpf.reason else 'eBPF capture is not running'})"
    if not snap.find(LOOKUP_HIT.name):
        return f"deep probes off: flow_lookup is a {DEEP_OFF}"
    hits = {r["ufid"]: r["hits"] for r in snap.tables["flow_lookup_hits"]}
    if row.get("ufid") in hits:
        return int(hits[row["ufid"]])
    if len(hits) >= FLOW_HITS_MAX:
        return f"not counted: the kernel's hit map is full ({FLOW_HITS_MAX} flows), this one may have been evicted"
    return 0
