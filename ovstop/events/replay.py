"""``--replay FILE``: plays an event file back with its original timing, scaled by a speed factor.

The replayer is driven by a clock it is handed (:meth:`Replayer.poll` with the current time), so a UI timer,
the :meth:`Replayer.run` thread loop or a test with a virtual clock all pace it the same way. An item with
event time ``ts`` is due at ``anchor_wall + (ts - anchor_ts) / speed``; pausing and stepping re-anchor at the
last delivered item, so playback continues from there.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ovstop.errors import OvstopError
from ovstop.events.recording import Line, is_sorted_file, read_lines, recording_parts
from ovstop.events.schema import OvsEvent

EventSink = Callable[[OvsEvent], Any]
SnapshotSink = Callable[[int, dict[str, Any]], Any]


class Replayer:
    """Delivers a file's OVS events to ``on_event`` and its metric snapshots to ``on_snapshot``.

    ``speed`` > 0 scales time (2.0 plays twice as fast); ``math.inf`` delivers everything at once. A plain
    file is streamed; ``retis sort`` output groups events by series, so it is read whole and put back in
    time order. ``startup`` holds the file's startup section (None when it has none); ``skipped`` counts
    non-OVS events.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_event: EventSink,
        on_snapshot: SnapshotSink | None = None,
        speed: float = 1.0,
    ) -> None:
        if not speed > 0:  # also refuses NaN
            raise OvstopError(f"replay speed must be a positive number, got {speed}")
        self.speed = speed
        self._on_event = on_event
        self._on_snapshot = on_snapshot
        self._lock = threading.RLock()
        # A rotated recording (FILE, FILE.1 …) plays as one: its parts in order, each with its startup line.
        lines: Iterator[Line] = itertools.chain.from_iterable(read_lines(p) for p in recording_parts(path))
        if is_sorted_file(path):
            lines = iter(sorted(lines, key=lambda line: line.timestamp))
        first = next(lines, None)
        self.startup: dict[str, Any] | None = None
        if first is not None and first.kind == "startup":
            self.startup = first.obj["startup"]
            first = None
        self.skipped = 0
        self._items = self._playable(itertools.chain([first] if first else [], lines))
        self._next: Line | None = next(self._items, None)
        self.delivered = 0
        self.lineno = 0
        """File line of the item delivered last (or being delivered)."""
        self.position: int | None = None
        """Event time (ns) playback has reached: the last delivered item, or the end of a step_seconds."""
        self.paused = False
        self._anchor: tuple[float, int] | None = None

    def _playable(self, lines: Iterator[Line]) -> Iterator[Line]:
        for line in lines:
            if line.kind in ("event", "snapshot"):
                yield line
            elif line.kind != "startup":  # a later part's startup line
                self.skipped += 1

    @property
    def done(self) -> bool:
        return self._next is None

    def _deliver(self) -> Line:
        """Deliver the next item, then read the one after: a damaged line stops playback after the last
        good item (its error propagates; the replay is then done)."""
        line = self._next
        if line is None:
            raise OvstopError("replay: the recording has no more lines")
        self._next = None
        self.lineno = line.lineno
        self.position = line.timestamp
        self.delivered += 1
        if line.event is not None:
            self._on_event(line.event)
        elif self._on_snapshot is not None and line.snapshot is not None:
            self._on_snapshot(line.timestamp, line.snapshot)
        self._next = next(self._items, None)
        return line

    def _due(self, line: Line) -> float:
        if self._anchor is None:
            raise OvstopError("replay: playback was not started")
        wall, ts = self._anchor
        return wall + (line.timestamp - ts) / 1e9 / self.speed if math.isfinite(self.speed) else wall

    def start(self, now: float) -> None:
        """Anchor playback: the first item is due at ``now``."""
        with self._lock:
            if self._next is not None:
                self._anchor = (now, self._next.timestamp)

    def due_at(self) -> float | None:
        """Clock time the next item is due at; None when paused, done or not started."""
        with self._lock:
            if self.paused or self._next is None or self._anchor is None:
                return None
            return self._due(self._next)

    def poll(self, now: float) -> int:
        """Deliver every item due at clock time ``now``; returns how many."""
        with self._lock:
            if self._anchor is None:
                self.start(now)
            count = 0
            while not self.paused and self._next is not None and self._due(self._next) <= now:
                self._deliver()
                count += 1
            return count

    def pause(self) -> None:
        with self._lock:
            self.paused = True

    def resume(self, now: float) -> None:
        """Continue from the last delivered item, whose time maps to ``now``."""
        with self._lock:
            self.paused = False
            if self.position is not None:
                self._anchor = (now, self.position)
            else:
                self.start(now)

    def step(self) -> int:
        """Pause and deliver the next item; returns how many were delivered (0 at the end)."""
        with self._lock:
            self.paused = True
            if self._next is None:
                return 0
            self._deliver()
            return 1

    def step_seconds(self, seconds: float = 1.0) -> int:
        """Pause and deliver the items of the next ``seconds`` of event time after the current position."""
        with self._lock:
            self.paused = True
            if self._next is None:
                return 0
            start = self.position if self.position is not None else self._next.timestamp
            limit = start + int(seconds * 1e9)
            count = 0
            while self._next is not None and self._next.timestamp <= limit:
                self._deliver()
                count += 1
            self.position = limit
            return count

    def run(
        self,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        max_wait: float = 0.1,
    ) -> None:
        """Play until the end or until ``stop`` is set (meant for a plain thread); honours pause."""
        self.poll(clock())
        while not self.done and not stop.is_set():
            due = self.due_at()
            wait = max_wait if due is None else min(max(due - clock(), 0.0), max_wait)
            stop.wait(wait)
            self.poll(clock())
