"""Per-interface metrics from the OVSDB Interface table (statistics, state, identity)."""

from __future__ import annotations

import operator
from collections.abc import Hashable
from dataclasses import dataclass
from itertools import chain, compress, count, repeat
from typing import Any

from ovstop.collect.base import Parts, Sources, Tables
from ovstop.collect.demand import INTERFACES
from ovstop.collect.memo import Memo, Part, renewed
from ovstop.collect.topology import NO_COUNTERS, Attachment, Join, attachments, interface_statistics
from ovstop.model.labels import LabelMap
from ovstop.model.metric import Kind, Labels, MetricSpec, Sample, labels_of
from ovstop.sources.ovsdb_counters import Counters

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


_ROW_TRAFFIC = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes")
"""The statistics an interface's table row shows."""

_traffic_of = operator.attrgetter("traffic")


@dataclass(slots=True, eq=False)
class _Made(Part):
    """An interface's part. What is not made of its statistics (labels, the settled samples, the row without
    traffic) is kept as it is when only its statistics moved: every few seconds for every busy interface.
    ``samples`` is empty: the collector lays the traffic and settled samples out as :class:`Parts`."""

    labelled: _Labelled
    traffic: tuple[Sample, ...]
    """The samples made of statistics."""
    traffic_keys: tuple[str, ...]
    """The statistics key of each traffic sample."""
    traffic_numbers: tuple[int, ...]
    """The statistics each traffic sample was made of."""
    settled: tuple[Sample, ...]
    """The samples not made of statistics: the info sample, the states, the numbers."""
    base_row: dict[str, Any]


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
        self._traffic_items = tuple(self.traffic.items())
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
        self._memo: Memo[_Made] = Memo()  # by interface uuid
        self._joined: Join | None = None  # the join of the last round
        self._statistics: list[Counters] = []  # the last round's statistics of each attachment of the join
        self._settled_parts: list[tuple[Sample, ...]] = []  # last round's settled samples, interface by interface
        self._settled_samples: list[Sample] = []
        self._output = Parts(([], []))

    def extra_labels(self, att: Attachment) -> dict[str, str]:
        port = str(att.port.get("name", ""))
        return self.label_map.labels_for(att.name, port, att.bridge_name, att.external_ids())

    def labels(self, att: Attachment, known: _Labelled | None) -> _Labelled:
        """``att``'s extra labels, series labels and info sample: ``known`` (last round's) when what they are
        made of (names, type, ofport, external_ids) is unchanged, as it is when only statistics moved."""
        iface = att.interface
        inputs = (
            att.bridge_name,
            att.name,
            str(att.port.get("name", "")),
            iface.get("type") or "system",
            iface.get("ofport"),
            att.external_ids(),
        )
        if known is not None and known[0] == inputs:
            return known
        bridge, name, port, kind, ofport, _ = inputs
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
        return (inputs, extra, ident, Sample(self.info, info, 1.0))

    def make(self, att: Attachment, stats: Counters, known: _Made | None) -> _Made:
        """``att``'s samples and table row, keeping of ``known`` (last round's) every sample that is unchanged,
        and all that is not made of statistics when only they moved (the same attachment: the join is made
        anew whenever a row changed)."""
        if known is not None and known.made_of[0] is att:
            labelled, settled, base = known.labelled, known.settled, known.base_row
            if stats.keys() == known.made_of[1].keys():  # the same statistics, some of them moved: most often
                keys = known.traffic_keys
                numbers = tuple(map(stats.__getitem__, keys))
                traffic = self._moved(known, numbers, labelled[2])
            else:
                keys, numbers, traffic = self._traffic(stats, labelled[2], known)
        else:
            labelled = self.labels(att, known.labelled if known is not None else None)
            settled, base = self._settled(att, labelled, known)
            keys, numbers, traffic = self._traffic(stats, labelled[2], known)
        row = dict(base)
        for key in _ROW_TRAFFIC:
            if (number := stats.get(key)) is not None:
                row[key] = number
        # The part's samples are not kept whole: the collector lays them out as Parts (see collect).
        return _Made((att, stats), (), row, labelled, traffic, keys, numbers, settled, base)

    @staticmethod
    def _moved(known: _Made, numbers: tuple[int, ...], ident: Labels) -> tuple[Sample, ...]:
        """``known``'s traffic samples with a new one for each statistic that moved to ``numbers`` (found at C
        speed: a busy interface moves 3 or 4 of its 8 to 13 statistics every few seconds)."""
        traffic = list(known.traffic)
        for i in compress(count(), map(operator.ne, numbers, known.traffic_numbers)):
            traffic[i] = Sample(traffic[i].spec, ident, float(numbers[i]))
        return tuple(traffic)

    def _traffic(
        self, stats: Counters, ident: Labels, known: _Made | None
    ) -> tuple[tuple[str, ...], tuple[int, ...], tuple[Sample, ...]]:
        """The keys of ``stats`` that are traffic statistics, their numbers and their samples, each of ``known``'s
        (last round's) that is unchanged kept."""
        # Last round's traffic samples are in the order of the keys too: walked beside them, not looked up.
        before = iter(known.traffic if known is not None else ())
        old = next(before, None)
        keys: list[str] = []
        numbers: list[int] = []
        traffic: list[Sample] = []
        for key, spec in self._traffic_items:
            if old is not None and old.spec is spec:
                previous, old = old, next(before, None)
            else:
                previous = None
            number = stats.get(key)
            if number is None:
                continue
            value = float(number)
            if previous is None or previous.value != value or previous.labels != ident:
                previous = Sample(spec, ident, value)
            keys.append(key)
            numbers.append(number)
            traffic.append(previous)
        return tuple(keys), tuple(numbers), tuple(traffic)

    def _settled(
        self, att: Attachment, labelled: _Labelled, known: _Made | None
    ) -> tuple[tuple[Sample, ...], dict[str, Any]]:
        """The samples and the row of ``att`` not made of its statistics."""
        iface = att.interface
        _, extra, ident, info = labelled
        previous = {s.spec.name: s for s in known.settled} if known is not None else {}
        samples = [info]
        for spec, col in self._states:
            state = iface.get(col)
            if state is not None:
                samples.append(renewed(previous.get(spec.name), spec, ident, 1.0 if state == "up" else 0.0))
        for spec, col in self._numbers:
            number = iface.get(col)
            if number is not None:
                samples.append(renewed(previous.get(spec.name), spec, ident, float(number)))
        row = {
            "bridge": att.bridge_name,
            "interface": att.name,
            "type": iface.get("type") or "system",
            "ofport": iface.get("ofport"),
            "link_state": iface.get("link_state"),
            **extra,
        }
        return tuple(samples), row

    def collect(self, sources: Sources, tables: Tables) -> Parts:
        """The identity and state samples, then the traffic samples, as two lists (:class:`Parts`).

        Each is last round's very list while what it is made of is unchanged: the first while the replica's
        rows are (only the statistics move, every few seconds, on a busy switch), both while the statistics
        are too. Otherwise an interface whose rows are unchanged gives last round's samples, and a changed
        one its unchanged samples (see :func:`renewed`). At 1,000 ports a round that rebuilt every sample
        took 13 ms of CPU, most rounds for nothing; one that hands the store the 7,000 unchanged identity
        samples of 1,000 interfaces a few ms.
        """
        joined = attachments(sources)
        statistics = interface_statistics(sources)
        memo = self._memo
        if memo.renew(joined, statistics):
            uuids = joined.interface_uuids
            now = list(map(statistics.get, uuids, repeat(NO_COUNTERS)))
            if joined is self._joined:
                self._joined = None  # until the round is made whole: one that fails part-way is made anew next
                parts = self._restated(joined, now)
            else:
                known_of, put = memo.known, memo.put
                for key, att, stats in zip(uuids, joined, now, strict=True):
                    known = known_of(key)
                    # Made of the attachment (a new one when any row of the join changed) and the statistics.
                    if known is None or known.made_of[0] is not att or known.made_of[1] is not stats:
                        known = self.make(att, stats, known)
                    put(key, known)
                parts = memo.close(samples=False)
                settled = [part.settled for part in parts]
                last = self._settled_parts
                if len(settled) != len(last) or not all(map(operator.is_, settled, last)):
                    self._settled_samples = [s for samples in settled for s in samples]
                self._settled_parts = settled
            self._joined, self._statistics = joined, now
            self._output = Parts((self._settled_samples, list(chain.from_iterable(map(_traffic_of, parts)))))
        tables.rows["interfaces"] = memo.rows
        return self._output

    def _restated(self, joined: Join, now: list[Counters]) -> list[_Made]:
        """The parts of a round in which only statistics moved (the join is last round's): those of the
        interfaces whose statistics are new objects made again, found at C speed, the others and every
        settled sample kept as they are. Every few seconds on a busy switch, for most of its interfaces."""
        memo = self._memo
        uuids = joined.interface_uuids
        changed: dict[Hashable, _Made] = {}
        for i in compress(count(), map(operator.is_not, now, self._statistics)):
            key = uuids[i]
            changed[key] = self.make(joined[i], now[i], memo.known(key))
        return memo.close(samples=False, changed=changed)
