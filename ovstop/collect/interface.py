"""Per-interface metrics from the OVSDB Interface table (statistics, state, identity)."""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress, repeat
from typing import Any

from ovstop.collect.base import Parts, Sources, Tables
from ovstop.collect.demand import INTERFACES
from ovstop.collect.memo import Memo, Part, renewed
from ovstop.collect.topology import NO_COUNTERS, Attachment, Join, attachments, interface_statistics
from ovstop.model.block import Column, CounterBlock
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

_labelled_of = operator.attrgetter("labelled")


@dataclass(slots=True, eq=False)
class _Made(Part):
    """An interface's part: all that is not made of its statistics (its labels, the settled samples, its table
    row without traffic), kept as it is while its rows are, however often the statistics move. ``samples`` is
    empty: the collector lays the settled samples out as a list, and the traffic of all interfaces as a
    :class:`CounterBlock` (see :meth:`InterfaceCollector.collect`)."""

    labelled: _Labelled
    settled: tuple[Sample, ...]
    """The samples not made of statistics: the info sample, the states, the numbers."""


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
        self._laid: Join | None = None  # the join the parts were laid out for
        self._joined: Join | None = None  # what the last round was made of: the join and the statistics
        self._statistics: Mapping[str, Counters] | None = None
        self._rows: list[dict[str, Any]] = []
        self._settled_parts: list[tuple[Sample, ...]] = []  # last round's settled samples, interface by interface
        self._settled_samples: list[Sample] = []
        self._idents: tuple[Labels, ...] = ()  # each interface's series labels, in the join's order
        self._layouts: dict[str, tuple[Labels, ...]] = {}  # each statistics key's column labels, last round
        self._output = Parts(([], CounterBlock(())))

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

    def make(self, att: Attachment, known: _Made | None) -> _Made:
        """``att``'s part, keeping of ``known`` (last round's) every sample that is unchanged."""
        labelled = self.labels(att, known.labelled if known is not None else None)
        settled, row = self._settled(att, labelled, known)
        # The part's samples are not kept whole: the collector lays them out as Parts (see collect).
        return _Made((att,), (), row, labelled, settled)

    def _traffic(self, idents: tuple[Labels, ...], statistics: list[Counters]) -> CounterBlock:
        """The interfaces' statistics as one column a key, made at C speed: a busy interface moves 3 or 4 of its
        8 to 13 statistics every few seconds, ~4,000 counters of 1,000 interfaces. A key that some interfaces
        do not report (another driver) is a column of those that do."""
        columns = []
        layouts = self._layouts
        reported = set().union(*statistics)  # the keys of all the maps: most often the same few in each
        for key, spec in self._traffic_items:
            if key not in reported:
                continue
            has = list(map(operator.contains, statistics, repeat(key)))
            if all(has):
                labels, reporting = idents, statistics
            else:
                labels, reporting = tuple(compress(idents, has)), list(compress(statistics, has))
            last = layouts.get(key)
            if last is not None and last == labels:
                labels = last  # the very same tuple while the same interfaces: the store lays it out once
            layouts[key] = labels
            columns.append(Column(spec, labels, list(map(float, map(operator.itemgetter(key), reporting)))))
        return CounterBlock(columns)

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
        """The identity and state samples as a list, then the traffic as a :class:`CounterBlock` (:class:`Parts`).

        Each is last round's very object while what it is made of is unchanged: the list while the replica's
        rows are (only the statistics move, every few seconds, on a busy switch), both while the statistics
        are too. Otherwise an interface whose rows are unchanged gives last round's samples, and a changed
        one its unchanged samples (see :func:`renewed`). At 1,000 ports a round that rebuilt every sample
        took 13 ms of CPU, most rounds for nothing; one that hands the store the 7,000 unchanged identity
        samples of 1,000 interfaces a few ms.
        """
        joined = attachments(sources)
        statistics = interface_statistics(sources)
        if joined is not self._joined or statistics is not self._statistics:
            if joined is not self._laid:
                self._laid = None  # until laid out whole: a round that fails part-way is laid out again next
                self._lay_out(joined)
                self._laid = joined
            now = list(map(statistics.get, joined.interface_uuids, repeat(NO_COUNTERS)))
            rows = self._rows_of(self._memo.rows, now)
            self._output = Parts((self._settled_samples, self._traffic(self._idents, now)))
            self._rows, self._joined, self._statistics = rows, joined, statistics
        tables.rows["interfaces"] = self._rows
        return self._output

    def _lay_out(self, joined: Join) -> None:
        """Make the parts of the interfaces of ``joined``: last round's of an unchanged attachment (the join
        holds the same object while its rows are unchanged)."""
        memo = self._memo
        memo.renew(joined)  # False after a round that failed part-way: its parts are put again, in order
        known_of, put = memo.known, memo.put
        for key, att in zip(joined.interface_uuids, joined, strict=True):
            known = known_of(key)
            if known is None or known.made_of[0] is not att:
                known = self.make(att, known)
            put(key, known)
        parts = memo.close(samples=False)
        settled = [part.settled for part in parts]
        last = self._settled_parts
        if len(settled) != len(last) or not all(map(operator.is_, settled, last)):
            self._settled_samples = [s for samples in settled for s in samples]
        self._settled_parts = settled
        idents = tuple(labelled[2] for labelled in map(_labelled_of, parts))
        if idents != self._idents:  # else last round's very tuple: the store lays its columns out once
            self._idents = idents

    @staticmethod
    def _rows_of(bases: list[Mapping[str, Any]], statistics: list[Counters]) -> list[dict[str, Any]]:
        """The table rows: each interface's row with its traffic, made at C speed when every interface reports
        every statistic a row shows (every few seconds, for 1,000 interfaces on a busy switch)."""
        rows = list(map(dict, bases))
        for key in _ROW_TRAFFIC:
            if all(map(operator.contains, statistics, repeat(key))):
                deque(map(operator.setitem, rows, repeat(key), map(operator.itemgetter(key), statistics)), 0)
                continue
            for row, stats in zip(rows, statistics, strict=True):  # some without it: no statistics yet, a driver
                if key in stats:
                    row[key] = stats[key]
        return rows
