"""The list of collectors a run uses, in tree order."""

from __future__ import annotations

import contextlib

from ovstop.collect.base import Collector, Sources
from ovstop.collect.bridge import BridgeCollector
from ovstop.collect.config import CollectConfig
from ovstop.collect.conntrack import ConntrackCollector
from ovstop.collect.coverage import CoverageCollector
from ovstop.collect.datapath import DatapathCollector
from ovstop.collect.dpif import DpifCollector
from ovstop.collect.flows import FlowsCollector
from ovstop.collect.interface import InterfaceCollector
from ovstop.collect.memory import MemoryCollector
from ovstop.collect.openflow import OpenFlowCollector
from ovstop.collect.ovn import OvnNorthboundCollector, OvnSouthboundCollector
from ovstop.collect.pmd import PmdCollector
from ovstop.collect.process import ProcessCollector
from ovstop.collect.rfc import RfcMetricsCollector
from ovstop.collect.system import SystemCollector
from ovstop.collect.tunnel import TunnelCollector
from ovstop.collect.upcall import UpcallCollector
from ovstop.model.labels import LabelMap
from ovstop.sources.ovn import OvnLink


def default_collectors(
    config: CollectConfig, label_map: LabelMap, sources: Sources, stack: contextlib.ExitStack
) -> list[Collector]:
    """Every collector ``config`` asks for; optional sources register their cleanup on ``stack``."""
    collectors: list[Collector] = [
        RfcMetricsCollector(),  # first: on RFC builds its series take precedence over re-derived ones
        DatapathCollector(),
        DpifCollector(),
        PmdCollector(),
        UpcallCollector(),
        FlowsCollector(max_flows=config.max_flows),
        ConntrackCollector(),
        MemoryCollector(),
        CoverageCollector(),
        ProcessCollector(),
        SystemCollector(),
        BridgeCollector(label_map),
        InterfaceCollector(label_map),
        TunnelCollector(label_map),
    ]
    openflow = OpenFlowCollector(label_map, timeout=config.timeout)
    stack.callback(openflow.close)
    collectors.append(openflow)
    # OVN is looked for on every host (--ovn-nb/--ovn-sb, else the local ovn-controller's
    # external_ids:ovn-remote, else local sockets) and shown as off, with the reason, where there is none.
    # Its collectors come after the tunnel collector: they name the chassis behind its tunnels.
    link = OvnLink(config.ovn_nb, config.ovn_sb, config.ovn_rundir, timeout=max(config.timeout, 3.0))
    stack.callback(link.close)
    sources.ovn = link
    collectors += [OvnNorthboundCollector(link, label_map), OvnSouthboundCollector(link, label_map)]
    return collectors
