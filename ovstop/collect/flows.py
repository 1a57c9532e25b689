"""Datapath flows from ``dpctl/dump-flows -m``, as typed rows of ``tables.rows["dp_flows"]``.

Work is bounded by ``max_flows`` over all datapaths; flows past the cap are counted, not decoded.
Per-flow rates, first-seen times, the flows installed and expired since the last dump and their counters
come from the model's :class:`ovstop.model.flows.FlowFollower`, which this collector feeds every dump.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ovstop.collect.base import Sources, Tables
from ovstop.collect.unixctl_util import client_of, datapaths
from ovstop.model import flows
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.parsers import dump_flows

DEFAULT_MAX_FLOWS = 10_000
DECODES_PER_ROUND = 2_000
"""New flows decoded with ODPFlow per round (~0.25 ms each): a first round on a table of 10,000 flows
stays short, and the flows past this get their exact key summary over the next rounds."""
_DP = ("datapath",)
DUMPED = MetricSpec(
    "ovs_vswitchd_datapath_flows_dumped",
    Kind.GAUGE,
    "Flows listed by the last datapath flow dump.",
    ("datapath", "flows", "dumped"),
    _DP,
)
DECODED = MetricSpec(
    "ovs_vswitchd_datapath_flows_decoded",
    Kind.GAUGE,
    "Flows of the last dump that ovstop decoded (the rest were past its cap).",
    ("datapath", "flows", "decoded"),
    _DP,
)
OFFLOADED = MetricSpec(
    "ovs_vswitchd_datapath_flows_offloaded",
    Kind.GAUGE,
    "Decoded flows marked offloaded (fully or partially).",
    ("datapath", "flows", "offloaded"),
    _DP,
)


class FlowsCollector:
    name = "flows"
    source = "unixctl"
    specs = (DUMPED, DECODED, OFFLOADED, *flows.SPECS)

    def __init__(self, max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        self.max_flows = max_flows
        self._keys: dict[str, str] = {}
        self._follower = flows.FlowFollower()

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        client = client_of(sources)
        rows: list[dict[str, Any]] = []
        dumped: list[str] = []
        partial: list[str] = []
        for dp in datapaths(client):
            budget = max(self.max_flows - len(rows), 0)
            dump = dump_flows.parse(
                client.call("dpctl/dump-flows", "-m", dp),
                max_flows=budget,
                known=self._keys,
                max_decodes=DECODES_PER_ROUND,
            )
            labels = labels_of(datapath=dp)
            yield Sample(DUMPED, labels, float(dump.total))
            yield Sample(DECODED, labels, float(len(dump.flows)))
            yield Sample(OFFLOADED, labels, float(sum(1 for f in dump.flows if f.offloaded)))
            rows.extend({"datapath": dp, **vars(f)} for f in dump.flows)  # fields are scalars: no deep copy
            dumped.append(dp)
            if dump.truncated:
                partial.append(dp)
        found = self._follower.follow(rows, time.monotonic(), time.time(), dumped, partial)
        tables.rows.update(found.tables())
        yield from self._follower.samples()
        # Forget flows that are gone, so the key cache never outgrows one dump.
        live = {r.ufid for r in found.rows if r.ufid}
        self._keys = {u: k for u, k in self._keys.items() if u in live}
