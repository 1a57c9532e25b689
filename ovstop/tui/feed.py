"""Where the app's snapshots come from: a live sampler on a thread, a recording played back, or a remote
headless ovstop polled on a thread (``--connect``).

The app only ever receives finished :class:`Snapshot` objects through the ``deliver`` callback it hands to
:meth:`SnapshotFeed.start` (from the feed's own thread), so the UI thread never calls a source and a
slow or dead switch cannot freeze the screen. A round that fails (a bug, a recorder on a full disk) does
not end the feed: ``failure`` says why and the ``failed`` callback tells the app, the next round retries,
and the first good one clears it. Nothing here imports Textual.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from ovstop.collect.demand import Demand
from ovstop.collect.sampler import Sampler
from ovstop.errors import OvstopError, describe
from ovstop.events.correlator import Correlator
from ovstop.events.pipeline import EventPipeline
from ovstop.events.replay import Replayer
from ovstop.events.schema import OvsEvent
from ovstop.events.store import EventStore
from ovstop.explain import Explanation, explain_flow
from ovstop.export import frames
from ovstop.export import snapshot as snapshot_doc
from ovstop.model import flows
from ovstop.model.store import Snapshot, SourceHealth
from ovstop.remote.attach import RemoteSource

Deliver = Callable[[Snapshot], object]
Failed = Callable[[str], object]
log = logging.getLogger(__name__)
REPLAY = "replay"
METRICS = "metrics"
NO_METRICS = "none in this file (a Retis capture: events only)"
EVENTS_ONLY_EVERY = 0.25
"""Seconds between events-only snapshots while a file without snapshot lines plays."""
INTERVAL_STEPS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
SPEED_STEPS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
MAX_BACKOFF = 30.0
"""Seconds between polls of a remote ovstop that keeps failing (the interval doubles up to this)."""


class Rounds(Protocol):
    """What a live feed runs every interval: a :class:`~ovstop.collect.sampler.Sampler`, or a remote source."""

    def sample(self) -> Snapshot: ...

    def need(self, consumer: str, demand: Demand | None) -> None:
        """What ``consumer`` needs collected from now on (None: nothing any more)."""
        ...


def step(steps: tuple[float, ...], current: float, direction: int) -> float:
    """The next value of ``steps`` above (direction 1) or below (-1) ``current``, clamped to the ends."""
    if direction > 0:
        return next((s for s in steps if s > current + 1e-9), steps[-1])
    return next((s for s in reversed(steps) if s < current - 1e-9), steps[0])


def _ignore(reason: str) -> None:
    """A ``failed`` callback for callers that only read ``failure``."""


class SnapshotFeed(Protocol):
    """A source of snapshots (and, optionally, events) for the app."""

    kind: str
    """``live`` or ``replay``: which keys apply (interval vs step/speed)."""
    interval: float
    events_reason: str
    """Why there is no event store (shown by the upcall pane); empty when there is one."""
    failure: str
    """Why the last round delivered nothing ("collection stopped: …"); empty while rounds succeed."""

    @property
    def events(self) -> EventStore | None:
        """The event store the upcall pane reads, if there is one."""
        ...

    def start(self, deliver: Deliver, failed: Failed | None = None) -> None: ...

    def stop(self) -> None: ...

    def refresh_now(self) -> None: ...

    def set_interval(self, seconds: float) -> None: ...

    def need(self, demand: Demand | None) -> None:
        """What the screen shows now needs (a live feed collects only that); None when it closes."""
        ...

    def set_deep(self, on: bool) -> tuple[bool, str]:
        """Per-packet eBPF hooks on or off: whether they now are as asked, and what happened, in one line."""
        ...

    def explain(self, row: Mapping[str, Any]) -> Explanation:
        """Why a datapath flow exists (blocking: call it off the UI thread); OvstopError when it cannot tell."""
        ...


class LiveFeed:
    """Runs ``sampler.sample()`` on a daemon thread every ``interval`` seconds, chained (sleep interval minus
    the round's duration), so rounds never overlap or pile up."""

    kind = "live"

    def __init__(
        self,
        sampler: Rounds,
        interval: float = 1.0,
        events: EventStore | None = None,
        events_reason: str = "",
        deep_switch: Callable[[bool], tuple[bool, str]] | None = None,
    ) -> None:
        self.sampler = sampler
        self.interval = interval
        self.events = events
        self.events_reason = events_reason
        self.deep_switch = deep_switch
        self.rounds = 0
        self.failure = ""
        self.round_started = 0.0
        """When (monotonic) the latest round started."""
        self.next_round_at = 0.0
        """When (monotonic) the next round is due, unless woken earlier."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, deliver: Deliver, failed: Failed | None = None) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(deliver, failed or _ignore), name="ovstop-sampler", daemon=True
        )
        self._thread.start()

    def _run(self, deliver: Deliver, failed: Failed) -> None:
        while not self._stop.is_set():
            self.round_started = started = time.monotonic()
            try:
                snap = self.sampler.sample()
            except Exception as exc:  # whatever broke, the screen must say so and the next round retry
                log.exception("collection round failed")
                self.failure = f"collection stopped: {describe(exc)}"
                if not self._stop.is_set():
                    failed(self.failure)
            else:
                self.rounds += 1
                self.failure = ""
                if self._stop.is_set():
                    return
                deliver(snap)
            self.next_round_at = started + self._pause()
            self._wake.wait(max(self.next_round_at - time.monotonic(), 0.0))
            self._wake.clear()

    def _pause(self) -> float:
        """Seconds from the start of one round to the next."""
        return self.interval

    def refresh_now(self) -> None:
        self._wake.set()

    def explain(self, row: Mapping[str, Any]) -> Explanation:
        if not isinstance(self.sampler, Sampler):  # a remote feed overrides this: only a local sampler has sources
            raise OvstopError("explain needs the switch itself")
        return explain_flow(self.sampler.sources, row)

    def set_interval(self, seconds: float) -> None:
        self.interval = seconds
        self._wake.set()

    def need(self, demand: Demand | None) -> None:
        self.sampler.need("tui", demand)

    def set_deep(self, on: bool) -> tuple[bool, str]:
        if self.deep_switch is None:
            return False, f"eBPF capture is off: {self.events_reason}"
        return self.deep_switch(on)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.need(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)


class ReplayFeed:
    """Plays a recording (ovstop or Retis): snapshot lines become snapshots, events go through the same
    correlator and bounded store as live capture. ``step``/``speed`` control playback."""

    kind = "replay"

    def __init__(self, path: str, speed: float = 1.0, events: EventStore | None = None) -> None:
        self.path = path
        self.events = events or EventStore()
        self.events_reason = ""
        self.failure = ""
        self.interval = math.nan
        self._deliver: Deliver | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pipeline = EventPipeline(Correlator(), self.events)
        self.replayer = Replayer(path, self._on_event, self._on_snapshot, speed)
        self.snapshots = 0
        self.frames = frames.FrameDecoder()
        self._flows = flows.FlowFollower()
        """Follows the flows of whole snapshots recorded before they carried first-seen times and changes."""
        self.last: Snapshot | None = None
        """The newest snapshot delivered (a file's own, or an events-only one)."""
        self._events_shown = 0.0

    def _on_snapshot(self, timestamp: int, data: dict) -> None:
        # Recordings hold frames (values that changed); older ones and snapshot files whole documents.
        if data.get("format") == frames.FORMAT:
            snap = self.frames.decode(data)
        else:
            snap = flows.completed(snapshot_doc.from_dict(data), self._flows)
        self.snapshots += 1
        self._send(snap)

    def _on_event(self, ev: OvsEvent) -> None:
        self._pipeline(ev)
        # A Retis capture has no snapshot lines; the panes draw on snapshots, so hand them an events-only one.
        if self.snapshots == 0 and time.monotonic() - self._events_shown >= EVENTS_ONLY_EVERY:
            self._send_events_only()

    def _send_events_only(self) -> None:
        self._events_shown = time.monotonic()
        seq = self.last.seq + 1 if self.last is not None else 1
        self._send(Snapshot(seq, time.time(), None, (), {METRICS: SourceHealth(METRICS, False, NO_METRICS, off=True)}))

    def _send(self, snap: Snapshot) -> None:
        self.last = snap
        if self._deliver is not None:
            self._deliver(snap)

    def start(self, deliver: Deliver, failed: Failed | None = None) -> None:
        self._deliver = deliver
        self._thread = threading.Thread(target=self._run, name="ovstop-replay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.replayer.run(self._stop)
        except (OvstopError, RecursionError) as exc:  # a damaged line mid-file: stop there, keep what was shown
            self._stopped(str(exc))
        except Exception as exc:  # a bug must not end the thread silently: the header says why
            self._stopped(f"internal error: {exc!r}")
        else:
            if self.snapshots == 0 and self.replayer.delivered:
                self._send_events_only()

    def _stopped(self, why: str) -> None:
        """Show in the header (a down ``replay`` source) why playback stopped, over what was shown last."""
        prefix = f"{self.path}:"
        where = "" if why.startswith(prefix) else f"{self.replayer.lineno}: "
        reason = f"stopped at line {where}{why.removeprefix(prefix).strip()}"
        self.events_reason = f"replay {reason}"
        base = self.last or Snapshot(0, time.time(), None, (), {})
        last_ok = base.timestamp if self.last is not None else None
        self._send(replace(base, health={**base.health, REPLAY: SourceHealth(REPLAY, False, reason, last_ok)}))

    @property
    def speed(self) -> float:
        return self.replayer.speed

    def set_speed(self, speed: float) -> None:
        now = time.monotonic()
        self.replayer.pause()
        self.replayer.speed = speed
        self.replayer.resume(now)

    def step(self, seconds: float = 1.0) -> int:
        """Pause playback and deliver the next ``seconds`` of recorded time."""
        try:
            count = self.replayer.step_seconds(seconds)
        except (OvstopError, RecursionError) as exc:
            self._stopped(str(exc))
            return 0
        if count and self.snapshots == 0:
            self._send_events_only()
        return count

    def seek(self, until: Callable[[Snapshot], bool]) -> bool:
        """Pause and deliver the recording one item at a time until a snapshot satisfies ``until`` (True: it
        is the last one delivered), or the recording ends (False). Item by item, so none is skipped over."""
        seen = self.last
        try:
            while self.replayer.step():
                if self.last is not seen and self.last is not None:
                    seen = self.last
                    if until(seen):
                        return True
        except (OvstopError, RecursionError) as exc:
            self._stopped(str(exc))
        return False

    def toggle_play(self) -> None:
        if self.replayer.paused:
            self.replayer.resume(time.monotonic())
        else:
            self.replayer.pause()

    def refresh_now(self) -> None:
        """Nothing to fetch: a recording has no newer data than what it plays."""

    def set_interval(self, seconds: float) -> None:
        """The recording's own pace is the interval; use the speed instead."""

    def need(self, demand: Demand | None) -> None:
        """A recording holds what it holds: nothing to collect."""

    def set_deep(self, on: bool) -> tuple[bool, str]:
        return False, "a recording has the events it has: nothing to attach"

    def explain(self, row: Mapping[str, Any]) -> Explanation:
        raise OvstopError("explain asks the live switch (ofproto/trace); a replay has no switch to ask")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)


class RemoteFeed(LiveFeed):
    """A live feed whose rounds are polls of a remote ovstop (:class:`~ovstop.remote.attach.RemoteSource`);
    a failed poll backs off, the interval doubling up to :data:`MAX_BACKOFF`, until the link is back."""

    kind = "remote"

    def __init__(self, source: RemoteSource, interval: float = 1.0) -> None:
        super().__init__(source, interval, source.events, source.events_reason)
        self.source = source
        self.host = source.host

    def _pause(self) -> float:
        return min(self.interval * 2**self.source.failures, max(MAX_BACKOFF, self.interval))

    def explain(self, row: Mapping[str, Any]) -> Explanation:
        raise OvstopError("explain asks the switch itself (ofproto/trace); run ovstop on that host to ask it")
