"""Connection-tracking figures per datapath from ``dpctl/ct-stats-show``, ``ct-get-nconns``, ``ct-get-maxconns``."""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.base import Sources, Tables
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


class ConntrackCollector:
    name = "conntrack"
    source = "unixctl"
    specs = (N_CONNECTIONS, LIMIT, *PER_PROTOCOL.values())

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        client = client_of(sources)
        for dp in datapaths(client):
            labels = labels_of(datapath=dp)
            nconns = client.call("dpctl/ct-get-nconns", dp)
            yield Sample(N_CONNECTIONS, labels, float(ct_conns.parse(nconns, "dpctl/ct-get-nconns")))
            try:
                maxconns = client.call("dpctl/ct-get-maxconns", dp)
            except SourceError:  # datapaths without a settable limit refuse the command
                pass
            else:
                yield Sample(LIMIT, labels, float(ct_conns.parse(maxconns, "dpctl/ct-get-maxconns")))
            stats = ct_stats_show.parse(client.call("dpctl/ct-stats-show", dp))
            for proto, spec in PER_PROTOCOL.items():
                yield Sample(spec, labels, float(stats.protocols.get(proto, 0)))
