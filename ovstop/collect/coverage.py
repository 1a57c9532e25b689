"""Event coverage counters from ``coverage/show``, and the drop counters among them under drop names."""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.unixctl_util import ReplyCollector
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.parsers import coverage_show

COVERAGE = MetricSpec(
    "ovs_vswitchd_coverage_total",
    Kind.COUNTER,
    "Times an internal event happened, per coverage counter.",
    ("coverage",),
    ("counter",),
)
DATAPATH_DROPS = MetricSpec(
    "ovs_vswitchd_datapath_drops_total",
    Kind.COUNTER,
    "Packets the userspace datapath dropped while executing actions, per reason (coverage datapath_drop_*).",
    ("datapath", "drops"),
    ("reason",),
)
ACTION_DROPS = MetricSpec(
    "ovs_vswitchd_drop_action_total",
    Kind.COUNTER,
    "Packets dropped by the OpenFlow pipeline's translation, per reason (coverage drop_action_*).",
    ("datapath", "drop_action"),
    ("reason",),
)
CONNTRACK_FULL = MetricSpec(
    "ovs_vswitchd_conntrack_full_total",
    Kind.COUNTER,
    "New connections the userspace connection tracker refused because it was full (coverage conntrack_full).",
    ("conntrack", "full"),
)
DROP_PREFIXES = {"datapath_drop_": DATAPATH_DROPS, "drop_action_": ACTION_DROPS}


def drop_samples(counter: str, total: float) -> Iterator[Sample]:
    """The drop-named series a coverage counter also feeds (none for most counters)."""
    for prefix, spec in DROP_PREFIXES.items():
        if counter.startswith(prefix):
            yield Sample(spec, labels_of(reason=counter.removeprefix(prefix)), total)
    if counter == "conntrack_full":
        yield Sample(CONNTRACK_FULL, (), total)


class CoverageCollector(ReplyCollector):
    """One series per counter that has fired; OVS does not list counters that never did."""

    name = "coverage"
    specs = (COVERAGE, DATAPATH_DROPS, ACTION_DROPS, CONNTRACK_FULL)

    command = "coverage/show"

    def samples_of(self, text: str) -> Iterator[Sample]:
        for c in coverage_show.parse(text).counters:
            yield Sample(COVERAGE, labels_of(counter=c.name), float(c.total))
            yield from drop_samples(c.name, float(c.total))
