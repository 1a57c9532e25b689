"""The path every event takes, whether captured live or replayed: correlate, store, optionally record."""

from __future__ import annotations

from ovstop.events.correlator import Correlator
from ovstop.events.holdback import Holdback
from ovstop.events.recording import Recorder
from ovstop.events.schema import OvsEvent
from ovstop.events.store import EventStore


class EventPipeline:
    """Callable sink for the capture thread and the replayer: ``pipeline(ev)``.

    The recording gets the event as captured (Retis's envelope has no place for ovstop's correlation
    annotations, which a replay recomputes anyway). Userspace events that overtook their kernel enqueue
    wait for it in a :class:`Holdback` before they are correlated and stored.
    """

    def __init__(self, correlator: Correlator, store: EventStore, recorder: Recorder | None = None) -> None:
        self.correlator = correlator
        self.store = store
        self.recorder = recorder
        self.holdback = Holdback(correlator.knows_queue)

    def __call__(self, ev: OvsEvent) -> None:
        if self.recorder is not None:
            self.recorder.event(ev)
        self._store(self.holdback.push(ev))

    def release_expired(self, now_ns: int) -> None:
        """Pass on the held events older than the hold at ``now_ns`` (the capture thread's clock, read
        while no event arrives: an idle switch must not keep a userspace event unshown)."""
        self._store(self.holdback.expired(now_ns))

    def _store(self, ready: list[OvsEvent]) -> None:
        for ev in ready:
            self.store.add(self.correlator.process(ev))
