"""Per-tunnel traffic and health with the remote endpoint (remote_ip, key) as labels.

Tunnel status follows what OVS itself reports: BFD state when BFD is enabled, else CFM fault when CFM
is, else the interface's link state (carrier).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ovstop.collect.base import Sources, Tables, renewed
from ovstop.collect.interface import traffic_specs
from ovstop.collect.topology import Attachment, attachments
from ovstop.model.labels import LabelMap
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of

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


@dataclass(frozen=True, slots=True)
class _Made:
    """One tunnel's share of a round, kept for the next: what it was made of and what it gave."""

    interface: dict[str, Any]
    port: dict[str, Any]
    bridge: dict[str, Any]
    chassis: str
    samples: tuple[Sample, ...]
    row: dict[str, Any]


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

        self._made: dict[str, _Made] = {}  # interface uuid -> its share of the last round
        self._joined: tuple[list[Attachment], dict[str, str]] | None = None  # the join and chassis last read
        self._samples: list[Sample] = []
        self._rows: list[dict[str, Any]] = []

    def make(self, att: Attachment, chassis: str, known: _Made | None) -> _Made:
        """The tunnel's samples and table row, keeping of ``known`` (last round's) every sample that is unchanged."""
        previous = {s.spec.name: s for s in known.samples} if known is not None else {}
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
        stats = iface.get("statistics") or {}
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
        return _Made(iface, att.port, att.bridge, chassis, tuple(samples), row)

    def collect(self, sources: Sources, tables: Tables) -> list[Sample]:
        """Last round's very list while the replica and the chassis are unchanged; else a tunnel whose rows and
        chassis are unchanged gives last round's samples, and a changed one its unchanged samples."""
        ovn = sources.ovn
        chassis_by_ip = ovn.chassis_by_ip if ovn is not None else {}
        joined = attachments(sources)
        if self._joined is None or self._joined[0] is not joined or self._joined[1] != chassis_by_ip:
            made: dict[str, _Made] = {}
            for att in joined:
                if not att.is_tunnel:
                    continue
                iface = att.interface
                chassis = chassis_by_ip.get((iface.get("options") or {}).get("remote_ip", ""), "")
                known = self._made.get(iface["_uuid"])
                if (
                    known is None
                    or known.interface is not iface
                    or known.port is not att.port
                    or known.bridge is not att.bridge
                    or known.chassis != chassis
                ):
                    known = self.make(att, chassis, known)
                made[iface["_uuid"]] = known
            self._made, self._joined = made, (joined, dict(chassis_by_ip))
            self._samples = [s for m in made.values() for s in m.samples]
            self._rows = [m.row for m in made.values()]
        tables.rows["tunnels"] = self._rows
        return self._samples
