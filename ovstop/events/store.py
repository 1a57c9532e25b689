"""The bounded, thread-safe event store the UI and exporters read.

Producers (the eBPF capture thread, a replay) call :meth:`EventStore.add`; readers take copies with
:meth:`EventStore.snapshot`. Memory is bounded: a ring of the newest ``max_events`` events and a capped
table of missed flow keys. Nothing is lost silently: events refused by the rate limit and events pushed out
of the full ring are counted separately.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from ovstop.events.schema import OvsEvent

DEFAULT_MAX_EVENTS = 10_000
MAX_MISSED_KEYS = 4096
OTHER_KEYS = "(other keys)"
"""Where misses are counted once the missed-key table is full."""

_RATE_SECONDS = 60


@dataclass(frozen=True)
class StoreStats:
    accepted: int
    rate_dropped: int
    """Refused because producers exceeded ``max_rate``."""
    overflowed: int
    """Accepted, then pushed out of the ring by newer events before anyone needed them gone."""
    held: int

    @property
    def dropped(self) -> int:
        return self.rate_dropped + self.overflowed


class EventStore:
    """Ring of the newest events, per-type totals, rates and the most frequently missed flow keys.

    ``max_rate`` (events per second, None for no limit) is enforced with a token bucket holding one
    second's worth of events, against ``clock`` (monotonic seconds; injectable for tests).
    """

    def __init__(
        self,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self._lock = threading.Lock()
        self._ring: deque[OvsEvent] = deque(maxlen=max_events)
        self._max_rate = max_rate
        self._clock = clock
        self._tokens = max_rate or 0.0
        self._refill_at = clock()
        self._totals: Counter[str] = Counter()
        self._missed: Counter[str] = Counter()
        self._per_second: deque[list[int]] = deque(maxlen=_RATE_SECONDS)
        self._accepted = 0
        self._rate_dropped = 0
        self._overflowed = 0

    def _admit(self, now: float) -> bool:
        if self._max_rate is None:
            return True
        self._tokens = min(self._max_rate, self._tokens + (now - self._refill_at) * self._max_rate)
        self._refill_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def add(self, ev: OvsEvent) -> bool:
        """Store ``ev``; False when the rate limit refused it."""
        with self._lock:
            now = self._clock()
            if not self._admit(now):
                self._rate_dropped += 1
                return False
            if len(self._ring) == self._ring.maxlen:
                self._overflowed += 1
            self._ring.append(ev)
            self._accepted += 1
            self._totals[ev.event_type] += 1
            second = int(now)
            if self._per_second and self._per_second[-1][0] == second:
                self._per_second[-1][1] += 1
            else:
                self._per_second.append([second, 1])
            if ev.is_miss:
                self._count_miss(ev)
            return True

    def _count_miss(self, ev: OvsEvent) -> None:
        key = str(ev.key) if ev.key is not None else "(no packet data)"
        if key in self._missed or len(self._missed) < MAX_MISSED_KEYS:
            self._missed[key] += 1
        else:
            self._missed[OTHER_KEYS] += 1

    def snapshot(self, filter: Callable[[OvsEvent], bool] | None = None, limit: int | None = None) -> list[OvsEvent]:
        """Held events matching ``filter``, newest last; at most the newest ``limit`` of them."""
        with self._lock:
            events = list(self._ring)
        if filter is not None:
            events = [ev for ev in events if filter(ev)]
        if limit is not None:
            events = events[-limit:] if limit > 0 else []
        return events

    def since(self, seen: int, limit: int) -> tuple[list[OvsEvent], StoreStats]:
        """Events accepted after the first ``seen`` (at most the newest ``limit`` still held), newest last, and
        the counts they belong to, read under one lock: a reader that passes back ``stats.accepted`` next
        time gets every held event once, however fast producers add."""
        with self._lock:
            stats = StoreStats(self._accepted, self._rate_dropped, self._overflowed, len(self._ring))
            n = min(self._accepted - seen, limit, len(self._ring))
            events = list(itertools.islice(reversed(self._ring), n))[::-1] if n > 0 else []
        return events, stats

    def totals(self) -> dict[str, int]:
        """Events accepted so far per event_type (including those since pushed out of the ring)."""
        with self._lock:
            return dict(self._totals)

    def rate(self, window: float = 5.0) -> float:
        """Accepted events per second over the last ``window`` whole seconds before the current one."""
        with self._lock:
            now = int(self._clock())
            seconds = max(1, min(int(window), _RATE_SECONDS - 1))
            count = sum(n for sec, n in self._per_second if now - seconds <= sec < now)
        return count / seconds

    def missed_keys_top(self, n: int = 10) -> list[tuple[str, int]]:
        """The ``n`` packet keys most often missed by datapath flow lookups, with their counts."""
        with self._lock:
            return self._missed.most_common(n)

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(self._accepted, self._rate_dropped, self._overflowed, len(self._ring))

    def clear(self) -> None:
        """Forget held events, totals and missed keys (drop counters are kept)."""
        with self._lock:
            self._ring.clear()
            self._totals.clear()
            self._missed.clear()
            self._per_second.clear()
