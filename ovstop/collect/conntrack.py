"""Connection-tracking figures per datapath from ``dpctl/ct-stats-show``, ``ct-get-nconns``, ``ct-get-maxconns``."""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.base import Sources, Tables
from ovstop.collect.memo import SampleMemo
from ovstop.collect.unixctl_util import client_of, datapaths
from ovstop.errors import SourceError
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.parsers import ct_conns, ct_stats_show

_DP = ("datapath",)
N_CONNECTIONS = MetricSpec(
    "ovs_vswitchd_conntrack_n_connections", Kind.GAUGE, "Tracked connections.", ("conntrack", "n_connections"), _DP
)
LIMIT = MetricSpec(
    "ovs_vswitchd_conntrack_connection_limit",
    Kind.GAUGE,
    "Most connections the tracker accepts.",
    ("conntrack", "connection_limit"),
    _DP,
)
# Protocols as ct-stats-show names them; OVS omits a protocol with no connection, which reads as 0.
PROTOCOLS = ("tcp", "udp", "udplite", "sctp", "icmp", "icmp6", "dccp", "igmp", "other")
PER_PROTOCOL = {
    p: MetricSpec(
        f"ovs_vswitchd_conntrack_n_{p}", Kind.GAUGE, f"Tracked {p.upper()} connections.", ("conntrack", f"n_{p}"), _DP
    )
    for p in PROTOCOLS
}

_Replies = tuple[str, str, str | None, str]
"""A datapath's name and its replies to ct-get-nconns, ct-get-maxconns (None when refused), ct-stats-show."""


class ConntrackCollector:
    name = "conntrack"
    source = "unixctl"
    specs = (N_CONNECTIONS, LIMIT, *PER_PROTOCOL.values())

    def __init__(self) -> None:
        self._memo: SampleMemo[tuple[_Replies, ...]] = SampleMemo()

    def collect(self, sources: Sources, tables: Tables) -> list[Sample]:
        client = client_of(sources)
        replies: list[_Replies] = []
        for dp in datapaths(client):
            nconns = client.call("dpctl/ct-get-nconns", dp)
            try:
                maxconns: str | None = client.call("dpctl/ct-get-maxconns", dp)
            except SourceError:  # datapaths without a settable limit refuse the command
                maxconns = None
            replies.append((dp, nconns, maxconns, client.call("dpctl/ct-stats-show", dp)))
        return self._memo.samples(tuple(replies), self._samples)

    @staticmethod
    def _samples(replies: tuple[_Replies, ...]) -> Iterator[Sample]:
        for dp, nconns, maxconns, stats_text in replies:
            labels = labels_of(datapath=dp)
            yield Sample(N_CONNECTIONS, labels, float(ct_conns.parse(nconns, "dpctl/ct-get-nconns")))
            if maxconns is not None:
                yield Sample(LIMIT, labels, float(ct_conns.parse(maxconns, "dpctl/ct-get-maxconns")))
            stats = ct_stats_show.parse(stats_text)
            for proto, spec in PER_PROTOCOL.items():
                yield Sample(spec, labels, float(stats.protocols.get(proto, 0)))
