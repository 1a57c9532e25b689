"""Holding back userspace events that overtook their kernel enqueue on the way to the correlator.

The kernel side reports an upcall's enqueue (with its queue_id) from the return of
``queue_userspace_packet()``, after the packet is already on the handler's netlink socket, so a handler
thread on another CPU can receive it and fire recv_upcall and flow_operation before the enqueue event is
written to the ring buffer. Retis links them after sorting the whole capture; a live stream has to wait:
a userspace event whose queue_id no enqueue has named yet is held until that enqueue arrives (and then
passed on right after it), or until ``hold_ns`` have passed since it, by a later event's time or by the
clock the capture thread reads while nothing arrives (then it is passed on as it is, and the correlator
counts it as an orphan). At most ``max_held`` events are held (the oldest is passed on first); nothing is
dropped.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable

from ovstop.events.schema import OvsEvent

USERSPACE_KINDS = frozenset({"recv_upcall", "flow_operation"})
DEFAULT_HOLD_NS = 100_000_000
DEFAULT_MAX_HELD = 4096


class Holdback:
    """``push(ev)`` returns the events ready to correlate, in the order to correlate them.

    ``known(queue_id)`` tells whether the correlator has seen the enqueue of that queue_id. Held events are
    kept in arrival order, so releasing the expired ones costs only the ones released.
    """

    def __init__(
        self, known: Callable[[int], bool], hold_ns: int = DEFAULT_HOLD_NS, max_held: int = DEFAULT_MAX_HELD
    ) -> None:
        self._known = known
        self._hold_ns = hold_ns
        self._max_held = max_held
        self._held: deque[tuple[int, OvsEvent]] = deque()
        """(queue_id, event) in arrival order."""
        self._waiting: Counter[int] = Counter()
        """Held events per queue_id: an enqueue looks through the held events only when one waits for it."""
        self.released_late = 0
        """Held events whose enqueue arrived while they waited."""

    def push(self, ev: OvsEvent) -> list[OvsEvent]:
        ready = self.expired(ev.timestamp)
        if ev.event_type in USERSPACE_KINDS and ev.queue_id is not None and not self._known(ev.queue_id):
            self._held.append((ev.queue_id, ev))
            self._waiting[ev.queue_id] += 1
            if len(self._held) > self._max_held:
                ready.append(self._release_oldest())
            return ready
        ready.append(ev)
        if ev.event_type == "upcall_enqueue" and ev.queue_id is not None and self._waiting[ev.queue_id]:
            waiting = [e for q, e in self._held if q == ev.queue_id]
            self._held = deque((q, e) for q, e in self._held if q != ev.queue_id)
            del self._waiting[ev.queue_id]
            self.released_late += len(waiting)
            ready.extend(waiting)
        return ready

    def expired(self, now_ns: int) -> list[OvsEvent]:
        """The held events older than the hold at ``now_ns`` (event time: the kernel's monotonic clock)."""
        out: list[OvsEvent] = []
        while self._held and now_ns - self._held[0][1].timestamp > self._hold_ns:
            out.append(self._release_oldest())
        return out

    def _release_oldest(self) -> OvsEvent:
        queue_id, ev = self._held.popleft()
        self._waiting[queue_id] -= 1
        if not self._waiting[queue_id]:
            del self._waiting[queue_id]
        return ev

    @property
    def held(self) -> int:
        return len(self._held)
