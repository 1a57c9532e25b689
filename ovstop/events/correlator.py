"""Grouping OVS events into series, the way ``retis sort`` does, with bounded memory.

Links, as in Retis's tracking processor: an skb tracking id groups events of one kernel packet; an upcall is
keyed by (its timestamp, its cpu) and upcall_enqueue / upcall_return carry that key as upcall_ts /
upcall_cpu; an enqueue's queue_id then links recv_upcall, flow_operation and the action_execute events of
the packet userspace re-injects. Beyond Retis: a recirc action's id links later action_execute events
with that recirc_id, and flow_lookup hits are counted per ufid.

Every pending map is capped (oldest entry evicted first) and aged out in event time (``max_age_ns``, as
Retis's BPF maps are purged of entries older than 60 s); evictions are counted, never silent.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ovstop.events.schema import OvsEvent

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_MAX_PENDING = 4096
DEFAULT_MAX_AGE_NS = 60 * 1_000_000_000
DEFAULT_MAX_SERIES = 1024
MAX_EVENTS_PER_SERIES = 64


class _BoundedMap(Generic[K, V]):
    """An insertion-ordered map with a size cap and an age limit, counting what it evicts."""

    def __init__(self, cap: int, max_age_ns: int) -> None:
        self._items: OrderedDict[K, tuple[int, V]] = OrderedDict()
        self._cap = cap
        self._max_age = max_age_ns
        self.evicted_full = 0
        self.evicted_aged = 0

    def put(self, key: K, value: V, ts: int) -> None:
        self._items.pop(key, None)
        self._items[key] = (ts, value)
        while len(self._items) > self._cap:
            self._items.popitem(last=False)
            self.evicted_full += 1

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        return item[1] if item else None

    def pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        return item[1] if item else None

    def age_out(self, now: int) -> None:
        while self._items:
            key, (ts, _) = next(iter(self._items.items()))
            if now - ts <= self._max_age:
                break
            del self._items[key]
            self.evicted_aged += 1

    def values(self) -> list[V]:
        """Current values, oldest first."""
        return [value for _, value in self._items.values()]

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class UpcallSeries:
    """The events of one upcalled packet: upcall, enqueues, return, and what userspace did with it.

    ``latency_ns`` is upcall_return time minus upcall time; ``events`` keeps at most
    ``MAX_EVENTS_PER_SERIES`` (``truncated`` counts the rest).
    """

    corr_id: int
    upcall: OvsEvent
    events: list[OvsEvent] = field(default_factory=list)
    latency_ns: int | None = None
    enqueue_failures: int = 0
    truncated: int = 0

    @property
    def complete(self) -> bool:
        return self.latency_ns is not None

    def add(self, ev: OvsEvent) -> None:
        if len(self.events) < MAX_EVENTS_PER_SERIES:
            self.events.append(ev)
        else:
            self.truncated += 1


@dataclass(frozen=True)
class FlowSeen:
    """What the lookups told about one datapath flow (by ufid)."""

    ufid: str
    hits: int
    first_ts: int
    last_ts: int
    dpflow: str | None


@dataclass(frozen=True)
class CorrelatorStats:
    pending_upcalls: int
    pending_queues: int
    evicted_full: int
    """Pending links dropped because a map was full."""
    evicted_aged: int
    """Pending links dropped because they were older than ``max_age_ns``."""
    orphans: int


class Correlator:
    """Annotates events with ``corr_id`` (and ``latency_ns`` on upcall_return) and keeps upcall series.

    Thread-safe; :meth:`process` is meant to be called from the one thread that produces events.
    """

    def __init__(
        self,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_age_ns: int = DEFAULT_MAX_AGE_NS,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self._skbs: _BoundedMap[int, int] = _BoundedMap(max_pending, max_age_ns)
        self._upcalls: _BoundedMap[tuple[int, int], int] = _BoundedMap(max_pending, max_age_ns)
        self._queues: _BoundedMap[int, int] = _BoundedMap(max_pending, max_age_ns)
        self._recircs: _BoundedMap[int, int] = _BoundedMap(max_pending, max_age_ns)
        self._series: _BoundedMap[int, UpcallSeries] = _BoundedMap(max_series, max_age_ns)
        self._flows: _BoundedMap[str, FlowSeen] = _BoundedMap(max_pending, max_age_ns)
        self._pending = (self._skbs, self._upcalls, self._queues, self._recircs, self._flows)
        self.orphans = 0
        """Events that named an upcall or queue_id this correlator does not hold (never seen or evicted)."""

    def _new_id(self) -> int:
        cid = self._next_id
        self._next_id += 1
        return cid

    def _by_skb(self, ev: OvsEvent) -> int:
        """Retis's skb tracking: the series of this skb, or a new series."""
        if ev.skb_track is not None:
            cid = self._skbs.get(ev.skb_track)
            if cid is None:
                cid = self._new_id()
            self._skbs.put(ev.skb_track, cid, ev.timestamp)
            return cid
        return self._new_id()

    def _linked(self, found: int | None, ev: OvsEvent) -> int:
        if found is None:
            self.orphans += 1
            return self._by_skb(ev)
        return found

    def process(self, ev: OvsEvent) -> OvsEvent:
        """Return ``ev`` annotated with its series id (and latency on upcall_return)."""
        with self._lock:
            for m in (*self._pending, self._series):
                m.age_out(ev.timestamp)
            out = self._correlate(ev)
            series = self._series.get(out.corr_id) if out.corr_id is not None else None
            if series is not None and out is not series.upcall:
                series.add(out)
            return out

    def _correlate(self, ev: OvsEvent) -> OvsEvent:
        kind = ev.event_type
        key = ev.upcall_key
        latency = None
        if kind == "upcall" and key is not None:
            cid = self._by_skb(ev)
            self._upcalls.put(key, cid, ev.timestamp)
            out = dataclasses.replace(ev, corr_id=cid)
            new = UpcallSeries(cid, out)
            new.add(out)
            self._series.put(cid, new, ev.timestamp)
            return out
        if kind == "upcall_return" and key is not None:
            cid = self._linked(self._upcalls.pop(key), ev)
            latency = ev.timestamp - key[0]
            series = self._series.get(cid)
            if series is not None:
                series.latency_ns = latency
        elif kind == "upcall_enqueue" and key is not None:
            cid = self._linked(self._upcalls.get(key), ev)
            if ev.queue_id is not None:
                self._queues.put(ev.queue_id, cid, ev.timestamp)
            series = self._series.get(cid)
            if series is not None and ev.ret:
                series.enqueue_failures += 1
        elif kind in ("recv_upcall", "flow_operation") and ev.queue_id is not None:
            cid = self._linked(self._queues.get(ev.queue_id), ev)
        elif kind == "action_execute":
            cid = self._action_series(ev)
        else:
            cid = self._by_skb(ev)
            if kind == "flow_lookup" and ev.ufid is not None and not ev.is_miss:
                self._note_flow(ev)
        return dataclasses.replace(ev, corr_id=cid, latency_ns=latency)

    def _action_series(self, ev: OvsEvent) -> int:
        if ev.queue_id is not None:
            cid = self._linked(self._queues.get(ev.queue_id), ev)
            if ev.skb_track is not None:  # later kernel events of this skb belong to the upcalled packet
                self._skbs.put(ev.skb_track, cid, ev.timestamp)
        elif ev.recirc_id and ev.skb_track is None and (found := self._recircs.get(ev.recirc_id)) is not None:
            cid = found
        else:
            cid = self._by_skb(ev)
        if ev.action is not None and ev.action.kind == "recirc" and ev.action.id:
            self._recircs.put(ev.action.id, cid, ev.timestamp)
        return cid

    def _note_flow(self, ev: OvsEvent) -> None:
        ufid = ev.ufid or ""
        seen = self._flows.get(ufid)
        if seen is None:
            seen = FlowSeen(ufid, 0, ev.timestamp, ev.timestamp, ev.dpflow or None)
        dpflow = ev.dpflow or seen.dpflow
        self._flows.put(ufid, FlowSeen(ufid, seen.hits + 1, seen.first_ts, ev.timestamp, dpflow), ev.timestamp)

    def knows_queue(self, queue_id: int) -> bool:
        """Whether an upcall_enqueue named ``queue_id`` (and its link is still held)."""
        with self._lock:
            return self._queues.get(queue_id) is not None

    def series(self) -> list[UpcallSeries]:
        """Completed upcall series (upcall_return seen), oldest first, as copies safe to hand to a UI."""
        with self._lock:
            done = [s for s in self._series.values() if s.complete]
            return [dataclasses.replace(s, events=list(s.events)) for s in done]

    def flows(self) -> list[FlowSeen]:
        """Flows seen by flow_lookup hits, most hit first."""
        with self._lock:
            seen = self._flows.values()
        return sorted(seen, key=lambda f: f.hits, reverse=True)

    def stats(self) -> CorrelatorStats:
        with self._lock:
            return CorrelatorStats(
                pending_upcalls=len(self._upcalls),
                pending_queues=len(self._queues),
                evicted_full=sum(m.evicted_full for m in self._pending),
                evicted_aged=sum(m.evicted_aged for m in self._pending),
                orphans=self.orphans,
            )
