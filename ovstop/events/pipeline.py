"""The path every event takes, whether captured live or replayed: correlate, store, optionally record."""

from __future__ import annotations

from ovstop.events.correlator import Correlator
from ovstop.events.recording import Recorder
from ovstop.events.schema import OvsEvent
from ovstop.events.store import EventStore


class EventPipeline:
    """Callable sink for the capture thread and the replayer: ``pipeline(ev)``.

    The recording gets the event as captured (Retis's envelope has no place for ovstop's correlation
    annotations, which a replay recomputes anyway).
    """

    def __init__(self, correlator: Correlator, store: EventStore, recorder: Recorder | None = None) -> None:
        self.correlator = correlator
        self.store = store
        self.recorder = recorder

    def __call__(self, ev: OvsEvent) -> OvsEvent:
        if self.recorder is not None:
            self.recorder.event(ev)
        out = self.correlator.process(ev)
        self.store.add(out)
        return out
