"""Which datapath port number is which bridge port, from ``dpif/show``.

eBPF events and ``dpctl/dump-flows`` without ``-m`` name ports by their datapath number; this info series
maps them to bridge, port, OpenFlow port and netdev type. On OVS 3.4+ the reply is the JSON document of a
connection set to JSON, earlier the text (see ``ovstop.parsers.dpif_show``). The mapping changes only when
ports do, so it is read every few seconds at most.
"""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.base import Sources, Tables
from ovstop.collect.memo import SampleMemo
from ovstop.collect.unixctl_util import client_of
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.parsers import dpif_show
from ovstop.parsers.reply import Reply

PORT_INFO = MetricSpec(
    "ovs_vswitchd_datapath_port_info",
    Kind.INFO,
    'A bridge port\'s datapath port number (port_no, "none" when unmapped) and OpenFlow port (value is 1).',
    ("datapath", "ports"),
    ("datapath", "bridge", "port", "ofport", "port_no", "type"),
)
TTL = 5.0


class DpifCollector:
    name = "dpif"
    source = "unixctl"
    specs = (PORT_INFO,)

    def __init__(self) -> None:
        self._memo: SampleMemo[object] = SampleMemo()  # by the ports part of the reply

    def collect(self, sources: Sources, tables: Tables) -> list[Sample]:
        # The reply is reused for TTL seconds, and a reply whose ports are the last one's gives back its
        # samples: at 1,000 ports no parse, no labels, no samples in most rounds, traffic or not.
        reply = client_of(sources).request_cached(dpif_show.COMMAND, ttl=TTL)
        return self._memo.samples(dpif_show.ports_part(reply), lambda _: self._samples(reply))

    @staticmethod
    def _samples(reply: Reply) -> Iterator[Sample]:
        for dp in dpif_show.parse(reply):
            for bridge, ports in dp.bridges.items():
                for port in ports:
                    port_no = "none" if port.port_no is None else port.port_no
                    labels = labels_of(
                        datapath=dp.name,
                        bridge=bridge,
                        port=port.name,
                        ofport=port.ofport,
                        port_no=port_no,
                        type=port.type,
                    )
                    yield Sample(PORT_INFO, labels, 1.0)
