"""udpif flow-table figures and per-revalidator keys from ``upcall/show``."""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.unixctl_util import ReplyCollector
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.parsers import upcall_show

_DP = ("datapath",)
CURRENT = MetricSpec(
    "ovs_vswitchd_upcall_flows_current",
    Kind.GAUGE,
    "Datapath flows held by udpif now.",
    ("upcall", "flows", "current"),
    _DP,
)
AVG = MetricSpec(
    "ovs_vswitchd_upcall_flows_avg",
    Kind.GAUGE,
    "Average datapath flows over recent dumps.",
    ("upcall", "flows", "avg"),
    _DP,
)
MAX = MetricSpec(
    "ovs_vswitchd_upcall_flows_max", Kind.GAUGE, "Most datapath flows seen.", ("upcall", "flows", "max"), _DP
)
LIMIT = MetricSpec(
    "ovs_vswitchd_upcall_flows_limit", Kind.GAUGE, "Current datapath flow limit.", ("upcall", "flows", "limit"), _DP
)
OFFLOADED = MetricSpec(
    "ovs_vswitchd_upcall_flows_offloaded",
    Kind.GAUGE,
    "Datapath flows offloaded to hardware.",
    ("upcall", "flows", "offloaded"),
    _DP,
)
DUMP = MetricSpec(
    "ovs_vswitchd_upcall_dump_duration_seconds",
    Kind.GAUGE,
    "Duration of the last revalidator flow dump.",
    ("upcall", "dump_duration"),
    _DP,
    unit="seconds",
)
UKEYS = MetricSpec(
    "ovs_vswitchd_upcall_ukeys",
    Kind.GAUGE,
    "Flow keys held by each revalidator.",
    ("upcall", "ukeys"),
    ("datapath", "revalidator"),
)


class UpcallCollector(ReplyCollector):
    name = "upcall"
    specs = (CURRENT, AVG, MAX, LIMIT, OFFLOADED, DUMP, UKEYS)

    command = "upcall/show"

    def samples_of(self, text: str) -> Iterator[Sample]:
        for dp in upcall_show.parse(text):
            labels = labels_of(datapath=dp.name)
            yield Sample(CURRENT, labels, float(dp.flows_current))
            yield Sample(AVG, labels, float(dp.flows_avg))
            yield Sample(MAX, labels, float(dp.flows_max))
            yield Sample(LIMIT, labels, float(dp.flows_limit))
            yield Sample(DUMP, labels, dp.dump_duration_ms / 1000.0)
            if dp.offloaded_flows is not None:
                yield Sample(OFFLOADED, labels, float(dp.offloaded_flows))
            for revalidator, keys in dp.revalidator_keys.items():
                yield Sample(UKEYS, labels_of(datapath=dp.name, revalidator=revalidator), float(keys))
