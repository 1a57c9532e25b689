"""Per-interface metrics from the OVSDB Interface table (statistics, state, identity)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ovstop.collect.base import Sources, Tables
from ovstop.collect.demand import INTERFACES
from ovstop.collect.topology import Attachment, attachments
from ovstop.model.labels import LabelMap
from ovstop.model.metric import Kind, Labels, MetricSpec, Sample, labels_of

SOURCE = "ovsdb"
PREFIX = "ovs_vswitchd_interface"

# OVSDB statistics key -> metric suffix (RFC names). Keys a driver does not report are simply absent.
STATISTICS: tuple[tuple[str, str, str], ...] = (
    ("rx_packets", "rx_packets_total", "Packets received"),
    ("tx_packets", "tx_packets_total", "Packets transmitted"),
    ("rx_bytes", "rx_bytes_total", "Bytes received"),
    ("tx_bytes", "tx_bytes_total", "Bytes transmitted"),
    ("rx_dropped", "rx_dropped_total", "Received packets dropped"),
    ("tx_dropped", "tx_dropped_total", "Transmitted packets dropped"),
    ("rx_errors", "rx_errors_total", "Receive errors"),
    ("tx_errors", "tx_errors_total", "Transmit errors"),
    ("rx_crc_err", "rx_crc_errors_total", "Received packets with CRC errors"),
    ("rx_frame_err", "rx_frame_errors_total", "Received packets with frame alignment errors"),
    ("rx_over_err", "rx_over_errors_total", "Receive overruns"),
    ("rx_missed_errors", "rx_missed_errors_total", "Packets the NIC missed"),
    ("collisions", "collisions_total", "Collisions"),
)
_SUFFIX = {key: suffix for key, suffix, _ in STATISTICS}

_Labelled = tuple[tuple[Any, ...], dict[str, str], Labels, Sample]
"""What an interface's labels are made of, then its extra labels, series labels and info sample."""


def traffic_name(prefix: str, key: str) -> str:
    """The metric name of statistics ``key`` under ``prefix``, e.g. ``ovs_vswitchd_interface_rx_packets_total``."""
    return f"{prefix}_{_SUFFIX[key]}"


def traffic_specs(prefix: str, what: str, path: tuple[str, ...], labels: tuple[str, ...]) -> dict[str, MetricSpec]:
    """Counter specs for the statistics keys, e.g. prefix ``ovs_vswitchd_interface``."""
    return {
        key: MetricSpec(traffic_name(prefix, key), Kind.COUNTER, f"{doc} by the {what}.", (*path, suffix), labels)
        for key, suffix, doc in STATISTICS
    }


class InterfaceCollector:
    """Interface counters and state; extra labels (vpc, workload …) from the label map."""

    name = INTERFACES
    source = SOURCE

    def __init__(self, label_map: LabelMap | None = None) -> None:
        self.label_map = label_map or LabelMap()
        extra = self.label_map.names
        ident = ("bridge", "interface", *extra)
        self.traffic = traffic_specs(PREFIX, "interface", ("interface",), ident)
        p = ("interface",)
        self.info = MetricSpec(
            "ovs_vswitchd_interface_info",
            Kind.INFO,
            "Interface identity (value is always 1).",
            (*p, "info"),
            ("bridge", "port", "interface", "type", "ofport", *extra),
        )
        self.admin = MetricSpec(
            "ovs_vswitchd_interface_admin_state",
            Kind.GAUGE,
            "Administrative state: 1 up, 0 down.",
            (*p, "admin_state"),
            ident,
        )
        self.link = MetricSpec(
            "ovs_vswitchd_interface_link_state", Kind.GAUGE, "Link state: 1 up, 0 down.", (*p, "link_state"), ident
        )
        self.mtu = MetricSpec(
            "ovs_vswitchd_interface_mtu", Kind.GAUGE, "MTU in bytes.", (*p, "mtu"), ident, unit="bytes"
        )
        self.speed = MetricSpec(
            "ovs_vswitchd_interface_link_speed", Kind.GAUGE, "Link speed in bits per second.", (*p, "link_speed"), ident
        )
        self.resets = MetricSpec(
            "ovs_vswitchd_interface_link_resets_total",
            Kind.COUNTER,
            "Times the link state changed.",
            (*p, "link_resets"),
            ident,
        )
        self.ofport = MetricSpec(
            "ovs_vswitchd_interface_of_port", Kind.GAUGE, "OpenFlow port number.", (*p, "of_port"), ident
        )
        self.specs = (
            *self.traffic.values(),
            self.info,
            self.admin,
            self.link,
            self.mtu,
            self.speed,
            self.resets,
            self.ofport,
        )
        # (spec, Interface column): the up/down states, then the numbers.
        self._states = ((self.admin, "admin_state"), (self.link, "link_state"))
        self._numbers = (
            (self.mtu, "mtu"),
            (self.speed, "link_speed"),
            (self.resets, "link_resets"),
            (self.ofport, "ofport"),
        )
        self._labels: dict[tuple[str, str], _Labelled] = {}

    def extra_labels(self, att: Attachment) -> dict[str, str]:
        port = str(att.port.get("name", ""))
        return self.label_map.labels_for(att.name, port, att.bridge_name, att.external_ids())

    def labels(self, att: Attachment, cache: dict[tuple[str, str], _Labelled]) -> _Labelled:
        """``att``'s extra labels, series labels and info sample, put in ``cache`` (the next round's).

        Last round's, when what they are made of (port name, type, ofport, external_ids) is unchanged, as
        it is for nearly every interface in nearly every round: no new tuples for 1,000 interfaces. The
        replica's rows are new dicts when they change, never edited, so comparing them is cheap and sound.
        """
        iface = att.interface
        key = (att.bridge_name, att.name)
        inputs = (str(att.port.get("name", "")), iface.get("type") or "system", iface.get("ofport"), att.external_ids())
        known = self._labels.get(key)
        if known is None or known[0] != inputs:
            (bridge, name), (port, kind, ofport, _) = key, inputs
            extra = self.extra_labels(att)
            ident = labels_of(bridge=bridge, interface=name, **extra)
            info = labels_of(
                bridge=bridge,
                port=port,
                interface=name,
                type=kind,
                ofport=ofport if ofport is not None else "",
                **extra,
            )
            known = (inputs, extra, ident, Sample(self.info, info, 1.0))
        cache[key] = known
        return known

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        rows = []
        cache: dict[tuple[str, str], _Labelled] = {}
        for att in attachments(sources):
            iface = att.interface
            _, extra, ident, info = self.labels(att, cache)
            stats = iface.get("statistics") or {}
            for key, spec in self.traffic.items():
                if key in stats:
                    yield Sample(spec, ident, float(stats[key]))
            ofport = iface.get("ofport")
            yield info
            for spec, col in self._states:
                state = iface.get(col)
                if state is not None:
                    yield Sample(spec, ident, 1.0 if state == "up" else 0.0)
            for spec, col in self._numbers:
                number = iface.get(col)
                if number is not None:
                    yield Sample(spec, ident, float(number))
            rows.append(
                {
                    "bridge": att.bridge_name,
                    "interface": att.name,
                    "type": iface.get("type") or "system",
                    "ofport": ofport,
                    "link_state": iface.get("link_state"),
                    **extra,
                    **{k: stats[k] for k in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes") if k in stats},
                }
            )
        tables.rows["interfaces"] = rows
        self._labels = cache
