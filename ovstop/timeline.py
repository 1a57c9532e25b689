"""Past snapshots kept for looking back (time scrub), bounded by age, with what they cost in memory.

Snapshots are immutable, so keeping one is keeping a reference: its series' histories share the store's
buffers (and labels and unchanged values are shared by the store), but each round's tables (datapath flows
above all), series objects and series tuple are its own. That part is estimated when a snapshot is added
(shallow sizes of the series tuple, each series object with its history view and numbers, and every table
row with its values; of the flow changes, which the snapshots of the next few rounds list again, only the
round's own) and summed, so the depth setting can say what it costs.
"""

from __future__ import annotations

import bisect
import sys
from collections import deque

from ovstop import health
from ovstop.model.flows import CHANGES, newest_changes
from ovstop.model.store import Snapshot

DEFAULT_DEPTH = 300.0
"""Seconds of snapshots kept by default."""
MAX_BYTES = 128 * 2**20
"""Whatever the depth, the oldest snapshots go once the kept ones are estimated above this (a switch with
10,000 datapath flows makes snapshots of megabytes)."""


def snapshot_bytes(snap: Snapshot) -> int:
    """An estimate of the memory one snapshot holds of its own (not shared with other snapshots)."""
    size = sys.getsizeof(snap.series)
    for s in snap.series:  # the series object, its history view and its own numbers (floats are objects)
        size += sys.getsizeof(s) + sys.getsizeof(s.history) + sys.getsizeof(s.value) + sys.getsizeof(s.rate)
    for name, rows in snap.tables.items():
        size += sys.getsizeof(rows)
        for row in newest_changes(rows) if name == CHANGES else rows:
            size += sys.getsizeof(row) + sum(sys.getsizeof(v) for v in row.values())
    return size


class Timeline:
    """Snapshots in arrival order, the oldest dropped once more than ``depth`` seconds older than the newest
    or once all of them cost more than ``max_bytes``."""

    def __init__(self, depth: float = DEFAULT_DEPTH, max_bytes: int = MAX_BYTES) -> None:
        self.depth = depth
        self.max_bytes = max_bytes
        self._snaps: deque[Snapshot] = deque()
        self._sizes: deque[int] = deque()
        self.cost_bytes = 0

    def add(self, snap: Snapshot) -> None:
        if self._snaps and snap.timestamp < self._snaps[-1].timestamp:  # a new replay started over
            self._snaps.clear()
            self._sizes.clear()
            self.cost_bytes = 0
        size = snapshot_bytes(snap)
        self._snaps.append(snap)
        self._sizes.append(size)
        self.cost_bytes += size
        while len(self._snaps) > 1 and (
            snap.timestamp - self._snaps[0].timestamp > self.depth or self.cost_bytes > self.max_bytes
        ):
            self._snaps.popleft()
            self.cost_bytes -= self._sizes.popleft()

    def __len__(self) -> int:
        return len(self._snaps)

    def __getitem__(self, index: int) -> Snapshot:
        return self._snaps[index]

    @property
    def span(self) -> float:
        return self._snaps[-1].timestamp - self._snaps[0].timestamp if self._snaps else 0.0

    def index_at(self, timestamp: float) -> int:
        """The last snapshot taken at or before ``timestamp`` (the first one when all are later)."""
        return max(bisect.bisect_right([s.timestamp for s in self._snaps], timestamp) - 1, 0)

    def failure(self, start: int, direction: int) -> int | None:
        """The nearest snapshot after (direction 1) or before (-1) ``start`` where a health check fails."""
        i = start + direction
        while 0 <= i < len(self._snaps):
            if health.failing(health.rows(self._snaps[i])):
                return i
            i += direction
        return None
