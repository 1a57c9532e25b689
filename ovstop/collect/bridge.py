"""Bridge-level aggregates: ports and traffic summed over each bridge's interfaces.

A sum covers the interfaces that report the counter; when none of a bridge's interfaces reports it (a
driver without drop counters, say), the bridge's series is absent and its row says None: a 0 there would
claim that nothing was dropped, which nobody measured.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from ovstop.collect.base import Sources, Tables
from ovstop.collect.interface import traffic_specs
from ovstop.collect.topology import attachments
from ovstop.model.labels import LabelMap
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of

INFO = "ovs_vswitchd_bridge_info"
N_PORTS = "ovs_vswitchd_bridge_n_ports"
BRIDGE_TRAFFIC = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped")


class BridgeCollector:
    """Per-bridge port counts, traffic sums and identity."""

    name = "bridge"
    source = "ovsdb"

    def __init__(self, label_map: LabelMap | None = None) -> None:
        self.label_map = label_map or LabelMap()
        ident = ("bridge", *self.label_map.names)
        every = traffic_specs("ovs_vswitchd_bridge", "bridge's interfaces (sum)", ("bridge",), ident)
        self.traffic = {k: every[k] for k in BRIDGE_TRAFFIC}
        self.n_bridges = MetricSpec(
            "ovs_vswitchd_bridge_n_bridges", Kind.GAUGE, "Number of bridges.", ("bridge", "n_bridges")
        )
        self.n_ports = MetricSpec(N_PORTS, Kind.GAUGE, "Ports on the bridge.", ("bridge", "n_ports"), ident)
        self.info = MetricSpec(
            INFO,
            Kind.INFO,
            "Bridge identity (value is always 1).",
            ("bridge", "info"),
            ("bridge", "datapath_type", "fail_mode", *self.label_map.names),
        )
        self.specs = (self.n_bridges, self.n_ports, self.info, *self.traffic.values())

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        sums: dict[str, dict[str, float]] = defaultdict(dict)  # bridge -> the counters some interface reports
        bridges = {}
        for att in attachments(sources):
            if not att.bridge_name:
                continue
            bridges[att.bridge_name] = att.bridge
            stats = att.interface.get("statistics") or {}
            bridge_sums = sums[att.bridge_name]
            for key in BRIDGE_TRAFFIC:
                if key in stats:
                    bridge_sums[key] = bridge_sums.get(key, 0.0) + float(stats[key])
        yield Sample(self.n_bridges, (), float(len(bridges)))
        rows = []
        for name, bridge in sorted(bridges.items()):
            extra = self.label_map.labels_for(bridge=name, external_ids=(bridge.get("external_ids") or {},))
            ident = labels_of(bridge=name, **extra)
            n_ports = len(bridge.get("ports") or ())
            yield Sample(self.n_ports, ident, float(n_ports))
            yield Sample(
                self.info,
                labels_of(
                    bridge=name,
                    datapath_type=bridge.get("datapath_type") or "system",
                    fail_mode=bridge.get("fail_mode") or "",
                    **extra,
                ),
                1.0,
            )
            for key, spec in self.traffic.items():
                if key in sums[name]:
                    yield Sample(spec, ident, sums[name][key])
            rows.append(
                {
                    "bridge": name,
                    "datapath_type": bridge.get("datapath_type") or "system",
                    "n_ports": n_ports,
                    **extra,
                    **{key: sums[name].get(key) for key in BRIDGE_TRAFFIC},
                }
            )
        tables.rows["bridges"] = rows
