"""The metrics tree over time: per-series history and rates, turned into immutable snapshots.

Every output reads a :class:`Snapshot`; nothing reads the store while it is being updated. Counter
rates are computed here, once, with resets (an OVS restart zeroes its counters) shown as "no rate"
rather than as a negative spike.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from ovstop.model.metric import Histogram, Kind, Labels, MetricSpec, Sample, Value


class History(Sequence[float]):
    """An immutable view of a series' recent values, made in O(1).

    Each series appends to a buffer whose written values never change; a view is (buffer, start, end),
    so handing every series' history to every snapshot costs nothing per value. When a buffer reaches
    twice the history length, the series starts a new one (old views keep the old buffer).
    """

    __slots__ = ("_buf", "_end", "_start")

    def __init__(
        self, buf: array[float] | list[float] | tuple[float, ...] = (), start: int = 0, end: int | None = None
    ) -> None:
        self._buf = buf
        self._start = start
        self._end = len(buf) if end is None else end

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def buffer(self) -> Sequence[float]:
        """The buffer viewed (shared with the store and with other views: never to be modified)."""
        return self._buf

    @property
    def end(self) -> int:
        """Where the view ends in :attr:`buffer`; it starts ``len(self)`` before."""
        return self._end

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return tuple(self._buf[self._start : self._end])[index]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("history index out of range")
        return self._buf[self._start + index]

    def __iter__(self) -> Iterator[float]:
        return iter(self._buf[self._start : self._end])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"History({list(self)!r})"


class _Buffer:
    """The append side of :class:`History` for one series.

    The values are C doubles in an ``array('d')``, not float objects in a list: a quarter of the memory
    (8 bytes a value instead of a pointer and a 24-byte float), and nothing for the cycle collector to
    scan. At 10,000 series holding 120 to 240 values each, that is 27 to 55 MiB less. ``view`` is the
    view as of the last append: a round that appends nothing (an info series) makes no new one.
    """

    __slots__ = ("buf", "limit", "start", "view")

    def __init__(self, limit: int) -> None:
        self.buf: array[float] = array("d")
        self.start = 0
        self.limit = limit
        self.view = History(self.buf, 0, 0)

    def append(self, value: float) -> History:
        """Add ``value`` and return the new view."""
        buf = self.buf
        buf.append(value)
        if len(buf) - self.start > self.limit:
            self.start += 1
            if self.start >= self.limit:
                buf = self.buf = buf[self.start :]
                self.start = 0
        self.view = History(buf, self.start, len(buf))
        return self.view


@dataclass(frozen=True, slots=True)
class Series:
    """One series as of one snapshot.

    ``rate`` is per second over the last interval (counters only; None after a reset or on the first
    sample). ``interval_histogram`` is what a histogram gained over the last interval. ``history`` holds
    recent rates (counters) or values (gauges) for sparklines, oldest first. ``stale`` marks a value
    kept from an earlier round because its source is down now.
    """

    spec: MetricSpec
    labels: Labels
    value: Value | None
    rate: float | None = None
    interval_histogram: Histogram | None = None
    history: Sequence[float] = ()
    stale: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    def label(self, name: str, default: str = "") -> str:
        for k, v in self.labels:
            if k == name:
                return v
        return default


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """Whether a source answered in the last round, and why not when it did not.

    ``off`` means the source does not exist here (not configured): ``up`` is False but nothing is wrong.
    """

    name: str
    up: bool
    reason: str = ""
    last_ok: float | None = None
    off: bool = False


@dataclass(frozen=True)
class Snapshot:
    """Everything ovstop knows at one instant. Immutable: safe to hand to any thread. ``tables`` is typed
    read-only (Mapping/Sequence), so mypy rejects code that edits a row of a published snapshot."""

    seq: int
    timestamp: float
    interval: float | None
    series: tuple[Series, ...]
    health: Mapping[str, SourceHealth]
    tables: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    collect_seconds: float = 0.0

    @cached_property
    def by_name(self) -> Mapping[str, Sequence[Series]]:
        """The series indexed by metric name, built on the first lookup (a pane makes dozens a refresh, and
        a scan of every series each time cost milliseconds apiece at 11,000 series)."""
        index: dict[str, list[Series]] = {}
        for s in self.series:
            index.setdefault(s.spec.name, []).append(s)
        return index

    def find(self, name: str, **labels: str) -> list[Series]:
        """Series named ``name`` whose labels include every given pair."""
        found = self.by_name.get(name, ())
        if not labels:
            return list(found)
        want = set(labels.items())
        return [s for s in found if want <= set(s.labels)]

    def value(self, name: str, **labels: str) -> Value | None:
        """The single matching series' value (None when absent or ambiguous)."""
        found = self.find(name, **labels)
        return found[0].value if len(found) == 1 else None

    def total(self, name: str, **labels: str) -> float | None:
        """Sum of the numeric values of every matching series (None when there are none)."""
        vals = [s.value for s in self.find(name, **labels) if isinstance(s.value, int | float)]
        return float(sum(vals)) if vals else None

    def rate_total(self, name: str, **labels: str) -> float | None:
        """Sum of the rates of every matching series (None when no series has a rate yet)."""
        rates = [s.rate for s in self.find(name, **labels) if s.rate is not None]
        return sum(rates) if rates else None


Derive = Callable[[Snapshot], tuple[Iterable[Sample], Mapping[str, list[dict[str, Any]]]]]
DERIVED = "derived"
"""The source of derived series: never down, so never stale."""


_NUMBER = (int, float)  # isinstance with a tuple: a third of the cost of ``int | float``
# An enum member read from its class costs more than a global (150 ns against 20 in Python 3.11).
_COUNTER, _GAUGE, _HISTOGRAM = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM
_new = object.__new__
_set_spec, _set_labels, _set_value, _set_rate, _set_gained, _set_history, _set_stale = (
    Series.__dict__[f.name].__set__ for f in fields(Series)
)


def _series(
    spec: MetricSpec,
    labels: Labels,
    value: Value | None,
    rate: float | None,
    gained: Histogram | None,
    history: History,
) -> Series:
    """``Series(spec, labels, value, rate, gained, history)``, at half the cost.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (0.8 µs for a
    Series); the store makes one per series per round (11,000 at 1,000 ports), so it fills the slots
    directly.
    """
    series = _new(Series)
    _set_spec(series, spec)
    _set_labels(series, labels)
    _set_value(series, value)
    _set_rate(series, rate)
    _set_gained(series, gained)
    _set_history(series, history)
    _set_stale(series, False)
    return series


@dataclass(slots=True, eq=False)
class _State:
    """One series' memory between rounds. Compared and hashed by identity: a round keys its series by
    their state, which hashes at once, where a (name, labels) key rehashes every label."""

    labels: Labels
    """The series' labels as first seen: every round's Series shares this tuple (a snapshot kept for the
    time scrub then holds no labels of its own)."""
    value: Value | None
    at: float
    source: str
    history: _Buffer
    still: Series | None = None
    """The last Series made in a round that added nothing to the history (so without rate or interval)."""


class MetricStore:
    """Keeps what it needs of past rounds (last value, a bounded history) and builds snapshots."""

    def __init__(self, history: int = 120, tree_order: Sequence[str] = ()) -> None:
        """``tree_order``: the top-level subsystems (first element of a spec's path) in the order the tree
        shows them, as the collection layer declares it; others follow by name."""
        self.history = history
        self._rank = {top: i for i, top in enumerate(tree_order)}
        self._state: dict[tuple[str, Labels], _State] = {}
        self._kept: dict[_State, Series] = {}
        # The tree order of the last snapshot's series: most rounds have the same ones, so no re-sort.
        self._order: list[_State] = []
        self._seq = 0
        self._last_at: float | None = None

    def _tree_key(self, spec: MetricSpec) -> tuple[int, tuple[str, ...], str]:
        top = spec.path[0] if spec.path else ""
        return self._rank.get(top, len(self._rank)), spec.path, spec.name

    def update(
        self,
        samples: Iterable[tuple[str, Sample]],
        now: float,
        wall: float,
        health: Mapping[str, SourceHealth],
        tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        meta: Mapping[str, Any] | None = None,
        collect_seconds: float = 0.0,
        derive: Derive | None = None,
    ) -> Snapshot:
        """Fold one round of ``(source, sample)`` pairs in and return the new snapshot.

        Series of a source that is down this round are carried over from the last snapshot as stale;
        series that vanished from a healthy source (a deleted port) are dropped. ``derive`` computes
        further series and tables from the round's series (health checks); they get history like any other.
        """
        self._seq += 1
        interval = None if self._last_at is None else now - self._last_at
        self._last_at = now
        fold = self._fold
        kept: dict[_State, Series] = {}
        for source, sample in samples:
            fold(sample, now, source, kept)
        down = {name for name, h in health.items() if not h.up}  # a source missing from health is up
        if down:
            for state, old in self._kept.items():
                if state not in kept and state.source in down:
                    kept[state] = Series(old.spec, old.labels, old.value, history=old.history, stale=True)
        tables = dict(tables or {})
        if derive is not None:
            draft = Snapshot(self._seq, wall, interval, tuple(kept.values()), dict(health), tables)
            extra, extra_tables = derive(draft)
            for sample in extra:
                fold(sample, now, DERIVED, kept)
            tables.update(extra_tables)
        self._kept = kept
        # Every kept series has a state, and the states are the last round's series plus the new ones:
        # equal counts mean no series came or went, so the last order still holds.
        if not len(kept) == len(self._state) == len(self._order):
            self._state = {key: state for key, state in self._state.items() if state in kept}
            self._order = sorted(kept, key=lambda state: (self._tree_key(kept[state].spec), state.labels))
        return Snapshot(
            seq=self._seq,
            timestamp=wall,
            interval=interval,
            series=tuple(map(kept.__getitem__, self._order)),
            health=dict(health),
            tables=tables,
            meta=dict(meta or {}),
            collect_seconds=collect_seconds,
        )

    def _fold(self, sample: Sample, now: float, source: str, kept: dict[_State, Series]) -> None:
        """Fold ``sample`` into its series' state and put the series in ``kept``."""
        spec = sample.spec
        key = (spec.name, sample.labels)  # sample.key, without the property call
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = _State(sample.labels, None, now, source, _Buffer(self.history))
        else:
            state.source = source
        value = sample.value
        old = state.value
        if type(value) is type(old) and value == old:
            value = old  # unchanged: kept snapshots share the one object (a histogram is hundreds of bytes)
        rate: float | None = None
        gained: Histogram | None = None
        point: float | None = None  # what the history gains this round
        kind = spec.kind
        if kind is _COUNTER:
            if isinstance(value, _NUMBER):
                rate = point = counter_rate(old, value, now - state.at)
        elif kind is _GAUGE:
            if isinstance(value, _NUMBER) and math.isfinite(value):
                point = float(value)
        elif kind is _HISTOGRAM and isinstance(value, Histogram) and isinstance(old, Histogram):
            gained = value.minus(old)
            if gained is not None:
                point = float(gained.count)
        state.value = value
        state.at = now
        if point is not None:
            kept[state] = _series(spec, state.labels, value, rate, gained, state.history.append(point))
            state.still = None  # else it would keep alive a buffer the history has since been cut from
            return
        # Nothing new to show (an info series, most often): last round's Series when it is the same one.
        series = state.still
        view = state.history.view
        if series is None or series.value is not value or series.history is not view or series.spec is not spec:
            series = state.still = _series(spec, state.labels, value, None, None, view)
        kept[state] = series


def counter_rate(old: Value | None, new: float, seconds: float) -> float | None:
    """Per-second increase of a counter; None on the first sample, a reset, or a zero interval."""
    if not isinstance(old, _NUMBER) or seconds <= 0 or new < old:
        return None
    return (new - old) / seconds
