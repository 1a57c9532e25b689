"""Datapath lookup counters, flow and mask counts from ``dpctl/show`` (every datapath in one call)."""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.unixctl_util import ReplyCollector
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.parsers import dpctl_show

_DP = ("datapath",)
HIT = MetricSpec(
    "ovs_vswitchd_datapath_hit_total",
    Kind.COUNTER,
    "Packets that matched a flow in the datapath.",
    ("datapath", "hit"),
    _DP,
)
MISSED = MetricSpec(
    "ovs_vswitchd_datapath_missed_total",
    Kind.COUNTER,
    "Packets that matched no datapath flow (upcalls).",
    ("datapath", "missed"),
    _DP,
)
LOST = MetricSpec(
    "ovs_vswitchd_datapath_lost_total",
    Kind.COUNTER,
    "Packets lost before reaching userspace.",
    ("datapath", "lost"),
    _DP,
)
N_FLOWS = MetricSpec(
    "ovs_vswitchd_datapath_n_flows", Kind.GAUGE, "Flows in the datapath.", ("datapath", "n_flows"), _DP
)
N_MASKS = MetricSpec(
    "ovs_vswitchd_datapath_n_masks",
    Kind.GAUGE,
    "Masks in the datapath's flow table (kernel datapath).",
    ("datapath", "n_masks"),
    _DP,
)
MASK_HIT = MetricSpec(
    "ovs_vswitchd_datapath_mask_hit_total",
    Kind.COUNTER,
    "Masks visited by lookups that hit (kernel datapath).",
    ("datapath", "mask_hit"),
    _DP,
)
CACHE_HIT = MetricSpec(
    "ovs_vswitchd_datapath_cache_hit_total",
    Kind.COUNTER,
    "Lookups answered by the mask cache (kernel datapath).",
    ("datapath", "cache_hit"),
    _DP,
)


class DatapathCollector(ReplyCollector):
    name = "datapath"
    specs = (HIT, MISSED, LOST, N_FLOWS, N_MASKS, MASK_HIT, CACHE_HIT)

    # The reply lists every port (1,000 lines at 1,000 ports); only the datapaths' own lines are read.
    command = "dpctl/show"

    def samples_of(self, text: str) -> Iterator[Sample]:
        for dp in dpctl_show.parse(text, ports=False):
            labels = labels_of(datapath=dp.name)
            values = (
                (HIT, dp.hit),
                (MISSED, dp.missed),
                (LOST, dp.lost),
                (N_FLOWS, dp.flows),
                (N_MASKS, dp.masks),
                (MASK_HIT, dp.mask_hit),
                (CACHE_HIT, dp.cache_hit),
            )
            for spec, value in values:
                if value is not None:
                    yield Sample(spec, labels, float(value))
