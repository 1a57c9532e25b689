"""The list of collectors a run uses, in tree order."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ovstop.collect.base import Collector, Sources
from ovstop.collect.bridge import BridgeCollector
from ovstop.collect.interface import InterfaceCollector
from ovstop.collect.system import SystemCollector
from ovstop.collect.tunnel import TunnelCollector
from ovstop.model.labels import LabelMap

if TYPE_CHECKING:
    from ovstop.runtime import Options


def default_collectors(
    options: Options, label_map: LabelMap, sources: Sources, stack: contextlib.ExitStack
) -> list[Collector]:
    """Every collector that applies to ``options``; optional sources register their cleanup on ``stack``."""
    collectors: list[Collector] = [
        SystemCollector(),
        BridgeCollector(label_map),
        InterfaceCollector(label_map),
        TunnelCollector(label_map),
    ]
    return collectors
