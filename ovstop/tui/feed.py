"""Where the app's snapshots come from: a live sampler on a thread, a recording played back, or a remote
headless ovstop polled over HTTP (``--connect``).

The app only ever receives finished :class:`Snapshot` objects through the ``deliver`` callback it hands to
:meth:`SnapshotFeed.start` (from the feed's own thread), so the UI thread never calls a source and a
slow or dead switch cannot freeze the screen. Nothing here imports Textual.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from ovstop.collect.sampler import Sampler
from ovstop.errors import OvstopError
from ovstop.events.correlator import Correlator
from ovstop.events.pipeline import EventPipeline
from ovstop.events.replay import Replayer
from ovstop.events.schema import OvsEvent, decode
from ovstop.events.store import EventStore
from ovstop.export import snapshot as snapshot_doc
from ovstop.model.store import Snapshot, SourceHealth
from ovstop.remote.http import HttpClient

Deliver = Callable[[Snapshot], None]
REPLAY = "replay"
METRICS = "metrics"
NO_METRICS = "none in this file (a Retis capture: events only)"
REMOTE = "remote"
"""The health entry a remote feed adds to every snapshot: the link to the remote ovstop."""
MAX_BACKOFF = 30.0
EVENTS_ONLY_EVERY = 0.25
"""Seconds between events-only snapshots while a file without snapshot lines plays."""
INTERVAL_STEPS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
SPEED_STEPS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def step(steps: tuple[float, ...], current: float, direction: int) -> float:
    """The next value of ``steps`` above (direction 1) or below (-1) ``current``, clamped to the ends."""
    if direction > 0:
        return next((s for s in steps if s > current + 1e-9), steps[-1])
    return next((s for s in reversed(steps) if s < current - 1e-9), steps[0])


class SnapshotFeed(Protocol):
    """A source of snapshots (and, optionally, events) for the app."""

    kind: str
    """``live`` or ``replay``: which keys apply (interval vs step/speed)."""
    interval: float
    events: EventStore | None
    events_reason: str
    """Why there is no event store (shown by the upcall pane); empty when there is one."""

    def start(self, deliver: Deliver) -> None: ...

    def stop(self) -> None: ...

    def refresh_now(self) -> None: ...

    def set_interval(self, seconds: float) -> None: ...


class LiveFeed:
    """Runs ``sampler.sample()`` on a daemon thread every ``interval`` seconds, chained (sleep interval minus
    the round's duration), so rounds never overlap or pile up."""

    kind = "live"

    def __init__(
        self,
        sampler: Sampler,
        interval: float = 1.0,
        events: EventStore | None = None,
        events_reason: str = "",
    ) -> None:
        self.sampler = sampler
        self.interval = interval
        self.events = events
        self.events_reason = events_reason
        self.rounds = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, deliver: Deliver) -> None:
        self._thread = threading.Thread(target=self._run, args=(deliver,), name="ovstop-sampler", daemon=True)
        self._thread.start()

    def _run(self, deliver: Deliver) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            snap = self.sampler.sample()
            self.rounds += 1
            if self._stop.is_set():
                return
            deliver(snap)
            self._wake.wait(max(self.interval - (time.monotonic() - started), 0.0))
            self._wake.clear()

    def refresh_now(self) -> None:
        self._wake.set()

    def set_interval(self, seconds: float) -> None:
        self.interval = seconds
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
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
        self.interval = math.nan
        self._deliver: Deliver | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pipeline = EventPipeline(Correlator(), self.events)
        self.replayer = Replayer(path, self._on_event, self._on_snapshot, speed)
        self.snapshots = 0
        self.last: Snapshot | None = None
        """The newest snapshot delivered (a file's own, or an events-only one)."""
        self._events_shown = 0.0

    def _on_snapshot(self, timestamp: int, data: dict) -> None:
        snap = snapshot_doc.from_dict(data)
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

    def start(self, deliver: Deliver) -> None:
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

    def toggle_play(self) -> None:
        if self.replayer.paused:
            self.replayer.resume(time.monotonic())
        else:
            self.replayer.pause()

    def refresh_now(self) -> None:
        """Nothing to fetch: a recording has no newer data than what it plays."""

    def set_interval(self, seconds: float) -> None:
        """The recording's own pace is the interval; use the speed instead."""

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)


class RemoteFeed:
    """Polls a headless ovstop (``/snapshot.json`` and ``/events``) every ``interval`` seconds.

    Snapshots are rebuilt by the same :func:`snapshot_doc.from_dict` a replay uses, so the panes draw what
    the remote collected (its rates and histories included). Events go through the same correlator and
    bounded store as live capture. Every snapshot carries a ``remote`` health entry for the link; when a
    poll fails, the last snapshot is shown again with that entry down (the header shows STALE since the
    last good poll) and polls back off, doubling up to ``MAX_BACKOFF`` seconds, until the link is back.
    """

    kind = "remote"

    def __init__(self, client: HttpClient, interval: float = 1.0, events: EventStore | None = None) -> None:
        self.client = client
        self.interval = interval
        self.events = events or EventStore()
        self.events_reason = ""
        self.host = client.host
        self.failures = 0
        self.last: Snapshot | None = None
        self.last_ok: float | None = None
        self._since = 0
        self._pipeline = EventPipeline(Correlator(), self.events)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> Snapshot:
        """One round: the remote's snapshot (link up) and its new events, or the last one with the link down."""
        try:
            snap = snapshot_doc.from_dict(self.client.get_json("/snapshot.json"))
            self._fetch_events()
        except OvstopError as exc:
            self.failures += 1
            base = self.last or Snapshot(0, time.time(), None, (), {})
            link = SourceHealth(REMOTE, False, str(exc), self.last_ok)
            return replace(base, health={**base.health, REMOTE: link})
        self.failures = 0
        self.last_ok = time.time()
        self.last = replace(snap, health={**snap.health, REMOTE: SourceHealth(REMOTE, True, "", self.last_ok)})
        return self.last

    def _fetch_events(self) -> None:
        """Every event the remote still holds after the last one seen (a restarted remote starts over)."""
        while True:
            page = self.client.get_json("/events", {"since": str(self._since)})
            try:
                first, latest, items = int(page["first"]), int(page["latest"]), list(page["events"])
            except (KeyError, TypeError, ValueError):
                raise OvstopError(f"{self.host}: a damaged /events answer") from None
            self.events_reason = str(page.get("reason", ""))
            if latest < self._since:  # the remote restarted: its numbering began again
                self._since = 0
                continue
            for obj in items:
                ev = decode(obj) if isinstance(obj, dict) else None
                if ev is not None:
                    self._pipeline(ev)
            if not items:
                return
            self._since = first + len(items) - 1

    def start(self, deliver: Deliver) -> None:
        self._thread = threading.Thread(target=self._run, args=(deliver,), name="ovstop-remote", daemon=True)
        self._thread.start()

    def _run(self, deliver: Deliver) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            snap = self.poll()
            if self._stop.is_set():
                return
            deliver(snap)
            wait = min(self.interval * 2 ** self.failures, max(MAX_BACKOFF, self.interval))
            self._wake.wait(max(wait - (time.monotonic() - started), 0.0))
            self._wake.clear()

    def refresh_now(self) -> None:
        self._wake.set()

    def set_interval(self, seconds: float) -> None:
        self.interval = seconds
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
