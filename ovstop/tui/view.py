"""What every pane is handed besides the snapshot: the user's view settings, and the pane base class."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from textual.containers import Vertical

from ovstop.collect.demand import NOTHING, Demand
from ovstop.model.flows import FlowChange, flow_changes
from ovstop.model.store import Snapshot
from ovstop.tui.feed import SnapshotFeed

FLOW_SORTS = ("packets", "bytes", "age", "hits")
MAX_FLOW_CHANGES = 2000


class ChangeLog:
    """The flow changes of the snapshots received so far (each snapshot carries its round's), the newest
    ``limit`` of them kept, for the upcall pane to list."""

    def __init__(self, limit: int = MAX_FLOW_CHANGES) -> None:
        self.changes: deque[FlowChange] = deque(maxlen=limit)
        self.total_changes = 0
        self._last: tuple[int, float] | None = None

    def add(self, snap: Snapshot) -> None:
        """Log ``snap``'s changes, once: a remote's round can arrive again (polled faster than it collects,
        or repeated while the link is down)."""
        if (snap.seq, snap.timestamp) == self._last:
            return
        self._last = (snap.seq, snap.timestamp)
        new = flow_changes(snap.tables)
        self.changes.extend(new)
        self.total_changes += len(new)


@dataclass
class ViewState:
    """Settings the keys change; panes read them when they render.

    ``flows`` logs the datapath flow changes snapshot after snapshot (fed by the app, read by the upcall
    pane). ``clock`` is wall time, injectable so snapshot tests can freeze it.
    """

    feed: SnapshotFeed
    clock: Callable[[], float]
    filter: str = ""
    sort: str = FLOW_SORTS[0]
    reverse: bool = False
    cumulative: bool = False
    flows: ChangeLog = field(default_factory=ChangeLog)
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
