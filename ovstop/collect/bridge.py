"""Bridge-level aggregates: ports and traffic summed over each bridge's interfaces.

A sum covers the interfaces that report the counter; when none of a bridge's interfaces reports it (a
driver without drop counters, say), the bridge's series is absent and its row says None: a 0 there would
claim that nothing was dropped, which nobody measured.
"""

from __future__ import annotations

from itertools import repeat
from operator import itemgetter
from typing import Any

from ovstop.collect.base import Sources, Tables
from ovstop.collect.interface import traffic_specs
from ovstop.collect.memo import Memo, Part, renewed
from ovstop.collect.topology import NO_COUNTERS, attachments, interface_statistics
from ovstop.model.labels import LabelMap
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.sources.ovsdb_counters import Counters

INFO = "ovs_vswitchd_bridge_info"
N_PORTS = "ovs_vswitchd_bridge_n_ports"
BRIDGE_TRAFFIC = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped")

Row = dict[str, Any]


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

        self._memo: Memo[Part] = Memo()  # by bridge name
        self._samples: list[Sample] = []  # the number of bridges, then the memo's

    def make(self, name: str, bridge: Row, statistics: list[Counters], known: Part | None) -> Part:
        """The bridge's samples and table row, keeping of ``known`` (last round's) every sample that is unchanged."""
        previous = known.previous() if known is not None else {}
        extra = self.label_map.labels_for(bridge=name, external_ids=(bridge.get("external_ids") or {},))
        ident = labels_of(bridge=name, **extra)
        n_ports = len(bridge.get("ports") or ())
        sums = {}
        for key in BRIDGE_TRAFFIC:
            if not statistics:
                break
            try:  # every interface reports it, most often: summed at C speed
                sums[key] = float(sum(map(itemgetter(key), statistics)))
            except KeyError:
                reported = [stats[key] for stats in statistics if key in stats]
                if reported:
                    sums[key] = float(sum(reported))
        info = labels_of(
            bridge=name,
            datapath_type=bridge.get("datapath_type") or "system",
            fail_mode=bridge.get("fail_mode") or "",
            **extra,
        )
        samples = [
            renewed(previous.get(self.n_ports.name), self.n_ports, ident, float(n_ports)),
            renewed(previous.get(self.info.name), self.info, info, 1.0),
            *(
                renewed(previous.get(spec.name), spec, ident, sums[key])
                for key, spec in self.traffic.items()
                if key in sums
            ),
        ]
        row = {
            "bridge": name,
            "datapath_type": bridge.get("datapath_type") or "system",
            "n_ports": n_ports,
            **extra,
            **{key: sums.get(key) for key in BRIDGE_TRAFFIC},
        }
        return Part((bridge, statistics), tuple(samples), row)

    def collect(self, sources: Sources, tables: Tables) -> list[Sample]:
        """Last round's very list while the replica is unchanged; else a bridge whose row and interfaces are
        unchanged gives last round's samples, and a changed one its unchanged samples (see :func:`renewed`)."""
        joined = attachments(sources)
        statistics = interface_statistics(sources)
        memo = self._memo
        if memo.renew(joined, statistics):
            members = joined.bridges
            for name, (bridge, uuids) in members.items():
                every = list(map(statistics.get, uuids, repeat(NO_COUNTERS)))
                known = memo.known(name)
                if known is None or known.made_of != (bridge, every):
                    known = self.make(name, bridge, every, known)
                memo.put(name, known)
            memo.close()
            n_bridges = self._samples[0] if self._samples else None
            self._samples = [renewed(n_bridges, self.n_bridges, (), float(len(members))), *memo.samples]
        tables.rows["bridges"] = memo.rows
        return self._samples
