"""Object counts from ``memory/show``, including the handler and revalidator thread counts."""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.unixctl_util import ReplyCollector
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.parsers import memory_show

HANDLERS = MetricSpec("ovs_vswitchd_handler_n_threads", Kind.GAUGE, "Upcall handler threads.", ("handler", "n_threads"))
REVALIDATORS = MetricSpec(
    "ovs_vswitchd_revalidator_n_threads", Kind.GAUGE, "Revalidator threads.", ("revalidator", "n_threads")
)
PORTS = MetricSpec("ovs_vswitchd_memory_ports", Kind.GAUGE, "Ports held in memory.", ("memory", "ports"))
RULES = MetricSpec("ovs_vswitchd_memory_rules", Kind.GAUGE, "OpenFlow rules held in memory.", ("memory", "rules"))
UKEYS = MetricSpec(
    "ovs_vswitchd_memory_udpif_keys", Kind.GAUGE, "Datapath flow keys held by udpif.", ("memory", "udpif_keys")
)
OFCONNS = MetricSpec("ovs_vswitchd_memory_ofconns", Kind.GAUGE, "OpenFlow connections.", ("memory", "ofconns"))
OTHER = MetricSpec(
    "ovs_vswitchd_memory_objects",
    Kind.GAUGE,
    "Other memory/show figures (IDL cells per table, …), by key.",
    ("memory", "objects"),
    ("key",),
)
_KNOWN = {
    "handlers": HANDLERS,
    "revalidators": REVALIDATORS,
    "ports": PORTS,
    "rules": RULES,
    "udpif keys": UKEYS,
    "ofconns": OFCONNS,
}


class MemoryCollector(ReplyCollector):
    name = "memory"
    specs = (HANDLERS, REVALIDATORS, PORTS, RULES, UKEYS, OFCONNS, OTHER)

    command = "memory/show"

    def samples_of(self, text: str) -> Iterator[Sample]:
        for key, value in memory_show.parse(text).items():
            spec = _KNOWN.get(key)
            if spec is not None:
                yield Sample(spec, (), float(value))
            else:
                yield Sample(OTHER, labels_of(key=key), float(value))
