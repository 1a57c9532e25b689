"""Userspace-datapath thread statistics (``dpif-netdev/pmd-perf-show``, plus ``pmd-stats-show`` for the
busy/idle cycle counts on OVS < 4.0, where it is a command of its own) and the seven pmd-perf histograms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from ovstop.collect.base import Sources, Tables
from ovstop.collect.memo import SampleMemo
from ovstop.collect.unixctl_util import client_of, datapaths, version_at_least
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.parsers import pmd_perf_show, pmd_rxq_show, pmd_stats_show
from ovstop.parsers.pmd_thread import PmdThread

PERF = "dpif-netdev/pmd-perf-show"
STATS = "dpif-netdev/pmd-stats-show"
RXQ = pmd_rxq_show.COMMAND
_PREFIX = "ovs_vswitchd_poll_threads"
_THREAD = ("datapath", "thread", "numa", "core")

N_THREADS = MetricSpec(
    f"{_PREFIX}_n", Kind.GAUGE, "Datapath polling threads (PMDs and main).", ("poll_threads", "n"), ("datapath",)
)
HIT = MetricSpec(
    f"{_PREFIX}_hit_total",
    Kind.COUNTER,
    "Datapath passes that hit a cache (PHWOL, simple match, EMC, SMC or megaflow).",
    ("poll_threads", "hit"),
    _THREAD,
)

RXQ_USAGE = MetricSpec(
    f"{_PREFIX}_rxq_usage_ratio",
    Kind.GAUGE,
    "Share of its PMD's cycles an rx queue used over the last measurement window "
    "(pmd-rxq-show; absent until OVS has measured it).",
    ("poll_threads", "rxq_usage"),
    (*_THREAD, "port", "queue"),
)
# counter name -> (metric name suffix, help)
_COUNTERS = {
    "rx_packets": ("packets_total", "Packets received."),
    "recirculations": ("recirculations_total", "Packet recirculations."),
    "passes": ("passes_total", "Datapath passes (packets plus recirculations)."),
    "upcalls": ("missed_total", "Passes that missed every cache and made an upcall."),
    "lost_upcalls": ("lost_total", "Upcalls that failed."),
    "phwol_hits": ("phwol_hit_total", "Partial hardware offload hits."),
    "mfex_opt_hits": ("mfex_opt_hit_total", "Optimized miniflow extract hits."),
    "simple_match_hits": ("simple_match_hit_total", "Simple match cache hits."),
    "emc_hits": ("emc_hit_total", "Exact match cache hits."),
    "smc_hits": ("smc_hit_total", "Signature match cache hits."),
    "megaflow_hits": ("megaflow_hit_total", "Megaflow (dpcls) hits."),
    "tx_packets": ("tx_packets_total", "Packets sent."),
    "tx_batches": ("tx_batches_total", "Output batches sent."),
    "iterations": ("iterations_total", "Polling loop iterations."),
    "busy_iterations": ("busy_iterations_total", "Iterations that received packets."),
    "idle_iterations": ("idle_iterations_total", "Iterations that received nothing."),
    "sleep_iterations": ("sleep_iterations_total", "Iterations that slept."),
    "used_cycles": ("used_cycles_total", "TSC cycles used by the thread."),
    "busy_cycles": ("busy_cycles_total", "TSC cycles spent processing packets."),
    "idle_cycles": ("idle_cycles_total", "TSC cycles spent polling without packets."),
}
COUNTERS = {
    key: MetricSpec(f"{_PREFIX}_{suffix}", Kind.COUNTER, text, ("poll_threads", suffix.removesuffix("_total")), _THREAD)
    for key, (suffix, text) in _COUNTERS.items()
}
_HIT_KINDS = ("phwol_hits", "simple_match_hits", "emc_hits", "smc_hits", "megaflow_hits")
# ratio name -> (metric name suffix, help)
_RATIOS = {
    "subtable_lookups_per_hit": ("lookups_per_hit", "Subtables searched per megaflow hit (since start)."),
    "passes_per_packet": ("passes_per_packet", "Datapath passes per received packet (since start)."),
    "packets_per_batch": ("tx_packets_per_batch", "Packets per output batch (since start)."),
    "busy_cycles_per_packet": ("busy_cycles_per_packet", "Processing cycles per packet (since start)."),
}
RATIOS = {
    key: MetricSpec(f"{_PREFIX}_{suffix}", Kind.GAUGE, text, ("poll_threads", suffix), _THREAD)
    for key, (suffix, text) in _RATIOS.items()
}
_HISTOGRAM_HELP = {
    "cycles_per_iteration": "TSC cycles per polling iteration.",
    "packets_per_iteration": "Packets received per polling iteration.",
    "cycles_per_packet": "Processing cycles per packet, per busy iteration.",
    "packets_per_batch": "Packets per received batch.",
    "max_vhost_queue_length": "Fullest vhost-user queue seen per iteration.",
    "upcalls_per_iteration": "Upcalls per iteration.",
    "cycles_per_upcall": "TSC cycles per upcall.",
}
HISTOGRAMS = {
    name: MetricSpec(f"{_PREFIX}_{name}", Kind.HISTOGRAM, text, ("poll_threads", "histograms", name), _THREAD)
    for name, text in _HISTOGRAM_HELP.items()
}


def _merge(perf: tuple[PmdThread, ...], stats: tuple[PmdThread, ...]) -> list[PmdThread]:
    """pmd-perf-show's threads with the counters only pmd-stats-show has (cycles, recirculations, main)."""
    by_key = {(t.thread, t.numa, t.core): t for t in perf}
    merged = list(perf)
    for t in stats:
        same = by_key.get((t.thread, t.numa, t.core))
        if same is None:
            merged.append(t)
            continue
        for key, value in t.counters.items():
            same.counters.setdefault(key, value)
    return merged


class _Replies(NamedTuple):
    """One netdev datapath's replies in a round; the collector's memo compares them whole with last round's."""

    datapath: str
    perf: str
    """pmd-perf-show, "" when the daemon lacks it or no PMD thread polls the datapath (it prints nothing)."""
    stats: str | None
    """pmd-stats-show where it is a command of its own (OVS < 4.0), else None."""
    rxq: str | None
    """pmd-rxq-show when PMD threads poll the datapath, else None (no thread header to parse)."""


class PmdCollector:
    name = "pmd"
    source = "unixctl"
    specs = (N_THREADS, HIT, *COUNTERS.values(), *RATIOS.values(), *HISTOGRAMS.values(), RXQ_USAGE)

    def __init__(self) -> None:
        self._memo: SampleMemo[tuple[_Replies, ...]] = SampleMemo()

    def collect(self, sources: Sources, tables: Tables) -> list[Sample]:
        client = client_of(sources)
        if not client.has(PERF) and not client.has(STATS):
            return []
        separate_stats = client.has(STATS) and not version_at_least(client, 4, 0)
        replies = []
        for dp in datapaths(client):
            if not dp.startswith("netdev@"):
                continue
            name = dp.partition("@")[2]
            perf = client.call(PERF, name) if client.has(PERF) else ""
            polled_by_pmds = bool(perf.strip())  # pmd-perf-show lists PMD threads only, never the main thread
            stats = client.call(STATS, name) if separate_stats else None
            rxq = client.call(RXQ, name) if client.has(RXQ) and polled_by_pmds else None
            replies.append(_Replies(dp, perf, stats, rxq))
        return self._memo.samples(tuple(replies), self._samples)

    def _samples(self, replies: tuple[_Replies, ...]) -> Iterator[Sample]:
        for dp, perf, stats, rxq in replies:
            threads = list(pmd_perf_show.parse(perf)) if perf.strip() else []
            if stats is not None:
                threads = _merge(tuple(threads), pmd_stats_show.parse(stats))
            yield Sample(N_THREADS, labels_of(datapath=dp), float(len(threads)))
            for t in threads:
                yield from self._thread(dp, t)
            for q in pmd_rxq_show.parse(rxq) if rxq is not None else ():
                if q.usage is not None:
                    t = q.thread
                    yield Sample(
                        RXQ_USAGE,
                        labels_of(datapath=dp, thread=t.label, numa=t.numa, core=t.core, port=q.port, queue=q.queue),
                        q.usage,
                    )

    def _thread(self, dp: str, t: PmdThread) -> Iterator[Sample]:
        labels = labels_of(datapath=dp, thread=t.label, numa=t.numa, core=t.core)
        for key, spec in COUNTERS.items():
            if key in t.counters:
                yield Sample(spec, labels, float(t.counters[key]))
        if any(k in t.counters for k in _HIT_KINDS):
            yield Sample(HIT, labels, float(sum(t.counters.get(k, 0) for k in _HIT_KINDS)))
        for key, spec in RATIOS.items():
            if key in t.ratios:
                yield Sample(spec, labels, t.ratios[key])
        for name, hist in t.histograms.items():
            if name in HISTOGRAMS:
                yield Sample(HISTOGRAMS[name], labels, hist)
