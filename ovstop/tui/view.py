"""What every pane is handed besides the snapshot: the user's view settings, and the pane base class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from textual.containers import Vertical

from ovstop.collect.demand import NOTHING, Demand
from ovstop.events.flowdiff import FlowStat, FlowTracker
from ovstop.model.store import Snapshot
from ovstop.tui.feed import SnapshotFeed

FLOW_SORTS = ("packets", "bytes", "age", "hits")


@dataclass
class ViewState:
    """Settings the keys change; panes read them when they render.

    ``flows`` follows the datapath flow table snapshot after snapshot (fed by the app, its change log read by
    the upcall pane); ``flow_stats`` are the flows with rates of the snapshot shown (frozen with it on pause).
    ``clock`` is wall time, injectable so snapshot tests can freeze it.
    """

    feed: SnapshotFeed
    clock: Callable[[], float]
    filter: str = ""
    sort: str = FLOW_SORTS[0]
    reverse: bool = False
    cumulative: bool = False
    flows: FlowTracker = field(default_factory=FlowTracker)
    flow_stats: list[FlowStat] = field(default_factory=list)
    viewing: str = ""
    """The time-scrub badge ("viewing 12:03:15, 40 s ago"), empty while the view follows the newest snapshot."""

    def matches(self, *texts: str) -> bool:
        """Whether the filter (case-insensitive substring) is empty or found in any of ``texts``."""
        if not self.filter:
            return True
        needle = self.filter.lower()
        return any(needle in t.lower() for t in texts)


class Pane(Vertical):
    """A bordered region that renders snapshots it is handed; it never calls a source."""

    title = ""
    needs: Demand = NOTHING
    """The collectors this pane's content comes from: the sampler runs them only while the pane is shown."""

    def on_mount(self) -> None:
        self.border_title = self.title

    def show(self, snap: Snapshot, view: ViewState) -> None:
        """Render ``snap``; redraw only what changed since the last call."""
        raise NotImplementedError
