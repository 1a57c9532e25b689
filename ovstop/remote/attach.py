"""``--connect``: one round against a remote ``ovstop --headless`` — its snapshot and its new events.

The snapshot is rebuilt by the same :func:`ovstop.export.snapshot.from_dict` a replay uses, so the panes draw
what the remote collected (its rates and histories included); events go through the same correlator and
bounded store as a live capture or a replay. Every snapshot carries a ``remote`` health entry for the link:
when a poll fails, the last snapshot comes back with that entry down (the header shows STALE since the last
good poll) and ``failures`` counts the failed polls in a row, for the caller's backoff.
"""

from __future__ import annotations

import time
from dataclasses import replace

from ovstop.collect.demand import Demand
from ovstop.errors import OvstopError
from ovstop.events.correlator import Correlator
from ovstop.events.pipeline import EventPipeline
from ovstop.events.schema import decode
from ovstop.events.store import EventStore
from ovstop.export import snapshot as snapshot_doc
from ovstop.model.store import Snapshot, SourceHealth
from ovstop.remote.http import HttpClient

REMOTE = "remote"
"""The health entry of the link to the remote ovstop."""


class RemoteSource:
    """Polls ``/snapshot.json`` and ``/events?since=N`` of a headless ovstop; :meth:`sample` never raises."""

    def __init__(self, client: HttpClient, events: EventStore | None = None) -> None:
        self.client = client
        self.events = events or EventStore()
        self.events_reason = ""
        """Why the remote has no event capture (from its /events answer); empty when it has one."""
        self.failures = 0
        self.last: Snapshot | None = None
        self.last_ok: float | None = None
        self._since = 0
        self._pipeline = EventPipeline(Correlator(), self.events)

    @property
    def host(self) -> str:
        return self.client.host

    def need(self, consumer: str, demand: Demand | None) -> None:
        """The remote ovstop collects what its own consumers need; a viewer here changes nothing there."""

    def sample(self) -> Snapshot:
        """The remote's snapshot with the link up, or the last one with the link down and why."""
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
