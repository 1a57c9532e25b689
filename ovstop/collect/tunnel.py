"""Per-tunnel traffic and health with the remote endpoint (remote_ip, key) as labels.

Tunnel status follows what OVS itself reports: BFD state when BFD is enabled, else CFM fault when CFM
is, else the interface's link state (carrier).
"""

from __future__ import annotations

from typing import Any

from ovstop.collect.base import Sources, Tables
from ovstop.collect.interface import traffic_specs
from ovstop.collect.memo import Memo, Part, renewed
from ovstop.collect.topology import NO_COUNTERS, Attachment, attachments, interface_statistics
from ovstop.model.labels import LabelMap
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.sources.ovsdb_counters import Counters

PREFIX = "ovs_vswitchd_tunnel"
TUNNEL_TRAFFIC = (
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
)


def tunnel_status(iface: dict[str, Any]) -> tuple[bool, str]:
    """(up, how it is known): BFD first, then CFM, then carrier."""
    bfd = iface.get("bfd_status") or {}
    if bfd.get("state"):
        return bfd["state"] == "up", f"bfd {bfd['state']}"
    fault = iface.get("cfm_fault")
    if fault is not None:
        return not fault, "cfm fault" if fault else "cfm ok"
    link = iface.get("link_state")
    return link == "up", f"carrier {link or 'unknown'}"


def tunnel_flaps(iface: dict[str, Any]) -> int | None:
    """Times the tunnel's BFD (else CFM) session changed state; None without either."""
    bfd = iface.get("bfd_status") or {}
    if bfd.get("flap_count", "").isdigit():
        return int(bfd["flap_count"])
    count = iface.get("cfm_flap_count")
    return count if isinstance(count, int) else None


class TunnelCollector:
    """Traffic and status of every tunnel interface (geneve, vxlan, gre …)."""

    name = "tunnel"
    source = "ovsdb"

    def __init__(self, label_map: LabelMap | None = None) -> None:
        self.label_map = label_map or LabelMap()
        ident = ("bridge", "tunnel", "type", "remote_ip", "key", "chassis", *self.label_map.names)
        every = traffic_specs(PREFIX, "tunnel", ("tunnel",), ident)
        self.traffic = {k: every[k] for k in TUNNEL_TRAFFIC}
        self.up = MetricSpec(
            "ovs_vswitchd_tunnel_up",
            Kind.GAUGE,
            "Tunnel status: 1 up, 0 down (BFD, else CFM, else carrier).",
            ("tunnel", "up"),
            ident,
        )
        self.flaps = MetricSpec(
            "ovs_vswitchd_tunnel_flaps_total",
            Kind.COUNTER,
            "BFD (else CFM) state changes of the tunnel.",
            ("tunnel", "flaps"),
            ident,
        )
        self.specs = (*self.traffic.values(), self.up, self.flaps)

        self._memo: Memo[Part] = Memo()  # by interface uuid

    def make(
        self, att: Attachment, stats: Counters, chassis: str, made_of: tuple[Any, ...], known: Part | None
    ) -> Part:
        """The tunnel's samples and table row, keeping of ``known`` (last round's) every sample that is unchanged."""
        previous = known.previous() if known is not None else {}
        iface = att.interface
        opts = iface.get("options") or {}
        extra = self.label_map.labels_for(att.name, str(att.port.get("name", "")), att.bridge_name, att.external_ids())
        remote_ip = opts.get("remote_ip", "")
        ident = labels_of(
            bridge=att.bridge_name,
            tunnel=att.name,
            type=iface.get("type"),
            remote_ip=remote_ip,
            key=opts.get("key", ""),
            chassis=chassis,
            **extra,
        )
        samples = [
            renewed(previous.get(spec.name), spec, ident, float(stats[key]))
            for key, spec in self.traffic.items()
            if key in stats
        ]
        up, how = tunnel_status(iface)
        samples.append(renewed(previous.get(self.up.name), self.up, ident, 1.0 if up else 0.0))
        if (flaps := tunnel_flaps(iface)) is not None:
            samples.append(renewed(previous.get(self.flaps.name), self.flaps, ident, float(flaps)))
        row = {
            "tunnel": att.name,
            "bridge": att.bridge_name,
            "type": iface.get("type"),
            "remote_ip": remote_ip,
            "local_ip": opts.get("local_ip", ""),
            "key": opts.get("key", ""),
            "up": up,
            "status": how,
            **extra,
            **{k: stats[k] for k in TUNNEL_TRAFFIC if k in stats},
        }
        return Part(made_of, tuple(samples), row)

    def collect(self, sources: Sources, tables: Tables) -> list[Sample]:
        """Last round's very list while the replica and the chassis are unchanged; else a tunnel whose rows and
        chassis are unchanged gives last round's samples, and a changed one its unchanged samples."""
        ovn = sources.ovn
        chassis_by_ip = ovn.chassis_by_ip if ovn is not None else {}
        joined = attachments(sources)
        statistics = interface_statistics(sources)
        memo = self._memo
        if memo.renew(joined, statistics, equal=(dict(chassis_by_ip),)):  # a copy: compared with the next round's
            for att in joined.tunnels:
                key = att.interface["_uuid"]
                stats = statistics.get(key, NO_COUNTERS)
                chassis = chassis_by_ip.get((att.interface.get("options") or {}).get("remote_ip", ""), "")
                made_of = (att.interface, stats, att.port, att.bridge, chassis)
                known = memo.known(key)
                if known is None or known.made_of != made_of:
                    known = self.make(att, stats, chassis, made_of, known)
                memo.put(key, known)
            memo.close()
        tables.rows["tunnels"] = memo.rows
        return memo.samples
