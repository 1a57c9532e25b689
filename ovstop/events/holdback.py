"""Holding back userspace events that overtook their kernel enqueue on the way to the correlator.

The kernel side reports an upcall's enqueue (with its queue_id) from the return of
``queue_userspace_packet()``, after the packet is already on the handler's netlink socket, so a handler
thread on another CPU can receive it and fire recv_upcall and flow_operation before the enqueue event is
written to the ring buffer. Retis links them after sorting the whole capture; a live stream has to wait:
a userspace event whose queue_id no enqueue has named yet is held until that enqueue arrives (and then
passed on right after it), or until ``hold_ns`` of event time have passed since it (then it is passed on as
it is, and the correlator counts it as an orphan). At most ``max_held`` events are held (the oldest is
passed on first); nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from ovstop.events.schema import OvsEvent

USERSPACE_KINDS = frozenset({"recv_upcall", "flow_operation"})
DEFAULT_HOLD_NS = 100_000_000
DEFAULT_MAX_HELD = 4096


class Holdback:
    """``push(ev)`` returns the events ready to correlate, in the order to correlate them.

    ``known(queue_id)`` tells whether the correlator has seen the enqueue of that queue_id.
    """

    def __init__(
        self, known: Callable[[int], bool], hold_ns: int = DEFAULT_HOLD_NS, max_held: int = DEFAULT_MAX_HELD
    ) -> None:
        self._known = known
        self._hold_ns = hold_ns
        self._max_held = max_held
        self._held: list[OvsEvent] = []
        self.released_late = 0
        """Held events whose enqueue arrived while they waited."""

    def push(self, ev: OvsEvent) -> list[OvsEvent]:
        ready = self._expired(ev.timestamp)
        if ev.event_type in USERSPACE_KINDS and ev.queue_id is not None and not self._known(ev.queue_id):
            self._held.append(ev)
            if len(self._held) > self._max_held:
                ready.append(self._held.pop(0))
            return ready
        ready.append(ev)
        if ev.event_type == "upcall_enqueue" and ev.queue_id is not None:
            waiting = [e for e in self._held if e.queue_id == ev.queue_id]
            if waiting:
                self._held = [e for e in self._held if e.queue_id != ev.queue_id]
                self.released_late += len(waiting)
                ready.extend(waiting)
        return ready

    def _expired(self, now: int) -> list[OvsEvent]:
        expired = [e for e in self._held if now - e.timestamp > self._hold_ns]
        if expired:
            self._held = [e for e in self._held if now - e.timestamp <= self._hold_ns]
        return expired

    @property
    def held(self) -> int:
        return len(self._held)
