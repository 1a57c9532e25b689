"""What every pane is handed besides the snapshot: the user's view settings, and the pane base class."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from textual.containers import Vertical
from textual.message import Message

from ovstop.collect.demand import NOTHING, Demand
from ovstop.model.flows import FlowChange, flow_changes
from ovstop.model.store import Snapshot
from ovstop.tui.feed import SnapshotFeed

FLOW_SORTS = ("packets", "bytes", "age", "hits")
MAX_FLOW_CHANGES = 2000


class ChangeLog:
    """The flow changes of the snapshots received so far, the newest ``limit`` of them kept, for the upcall
    pane to list. A snapshot carries the changes of its last few dumps, so a round that never arrived (a
    remote polled while it collected twice) loses nothing, and a round that arrives again adds nothing."""

    def __init__(self, limit: int = MAX_FLOW_CHANGES) -> None:
        self.changes: deque[FlowChange] = deque(maxlen=limit)
        self.total_changes = 0
        self._last_at = float("-inf")

    def add(self, snap: Snapshot) -> None:
        """Log the changes of ``snap`` newer than any logged (all of them when the source started over: a
        replay from its beginning, a restarted remote)."""
        changes = flow_changes(snap.tables)
        if not changes:
            return
        newest = max(c.at for c in changes)
        new = changes if newest < self._last_at else [c for c in changes if c.at > self._last_at]
        self._last_at = newest
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

    class NeedsChanged(Message):
        """What the pane needs collected changed while it is shown (a branch opened, say)."""

    def wants(self) -> Demand:
        """What the pane needs collected as it is shown now (its ``needs``, unless it shows less)."""
        return self.needs

    def on_mount(self) -> None:
        self.border_title = self.title

    def show(self, snap: Snapshot, view: ViewState) -> None:
        """Render ``snap``; redraw only what changed since the last call."""
        raise NotImplementedError
