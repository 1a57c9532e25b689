"""Past snapshots kept for looking back (time scrub), bounded by age and by what they cost in memory.

A snapshot of 1,000 ports has some 11,000 series; kept as is, each costs about 200 bytes a series (the
series object, its history view and two float objects). So a kept snapshot is stored in columns instead,
sharing with the entry before it whatever did not change:

* its shell (everything but the series), where a table row equal to the previous entry's is that row;
* the series' specs and labels as two tuples, the previous entry's while the series are the same;
* values and rates as C doubles (NaN for None; the few others, such as histograms, ints or NaN itself, by
  position), history views as their buffer (in a tuple, the previous entry's until a buffer changes), end
  and length (C ints). These columns are cut in blocks of :data:`BLOCK` series; a block the same as the
  previous entry's is that block (idle ports' counters and rates, full histories' lengths);
* interval histograms and stale marks by position.

That is 24 bytes a series when every block changes, 4 (the history ends) when none does. ``timeline[i]``
builds the snapshot again, equal to the one added (the newest is the one added itself), and keeps the last
one built for the next read.

``cost_bytes`` counts what dropping the timeline would free while the newest snapshot lives on (the app
shows it): what an entry holds that the entry after it does not (the newest: that the snapshot added does
not). That includes its tables' rows, histograms and values, and the history buffers the store has moved on
from (it starts a series on a new buffer every ``history`` rounds; the old one lives while an entry views it).
"""

from __future__ import annotations

import bisect
import math
import operator
import sys
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

from ovstop import health
from ovstop.model import flows
from ovstop.model.metric import Histogram, Labels, MetricSpec, Value
from ovstop.model.series import History, Series
from ovstop.model.store import Snapshot

DEFAULT_DEPTH = 300.0
"""Seconds of snapshots kept by default."""
MAX_BYTES = 20 * 2**20
"""Whatever the depth, the oldest snapshots go once the kept ones are estimated above this. On the idle
sandbox at 1,000 ports and 1,000 datapath flows an entry costs about 72 kB, and the entries before the store
renews its history buffers (every ``history`` rounds) hold up to 1 kB a series more: 20 MiB keeps 121 s at
the least (16 MiB: 66 s), and the whole default depth at 4 ports (28 kB an entry). Rows or values that all
change every round (busy flows, 10,000 of them) make entries of megabytes: then the scrub is shorter."""
BLOCK = 128
"""Series per block of a column: small enough that one changed counter costs 1 KiB, not the column."""

_Column = tuple[bytes, ...]
"""A column of C numbers in blocks of :data:`BLOCK` (bytes compare as fast as memory does)."""


@dataclass(frozen=True, slots=True, eq=False)
class _Layout:
    """The series keys of an entry, in order; consecutive entries with the same series share one."""

    specs: tuple[MetricSpec, ...]
    labels: tuple[Labels, ...]


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    """One kept snapshot in columns (see the module's docstring); positions are those of its series."""

    shell: Snapshot
    """The snapshot without its series."""
    layout: _Layout
    values: _Column
    rates: _Column
    odd: Mapping[int, tuple[Value | None, float | None]]
    """(value, rate) of the series whose value or rate is neither a float nor None, or is NaN."""
    gained: Mapping[int, Histogram]
    """Interval histograms, by position."""
    buffers: tuple[Any, ...]
    """Each series' history buffer, None where the history is not a view."""
    ends: _Column
    lengths: _Column
    sequences: Mapping[int, Sequence[float]]
    """The histories that are not views (a replayed snapshot's), by position."""
    stale: frozenset[int]

    def parts(self) -> Iterable[object]:
        """The objects the entry is made of, shared or not (not the values, rows or buffers it refers to)."""
        yield from (self, self.shell, self.layout, self.layout.specs, self.layout.labels, self.buffers)
        yield from (self.odd, self.gained, self.sequences, self.stale, *self.odd.values())
        for column in (self.values, self.rates, self.ends, self.lengths):
            yield column
            yield from column


class Timeline:
    """Snapshots in arrival order, the oldest dropped once more than ``depth`` seconds older than the newest
    or once all of them cost more than ``max_bytes``."""

    def __init__(self, depth: float = DEFAULT_DEPTH, max_bytes: int = MAX_BYTES) -> None:
        self.depth = depth
        self.max_bytes = max_bytes
        self._entries: deque[_Entry] = deque()
        self._sizes: deque[int] = deque()
        self._newest: Snapshot | None = None
        self._built: tuple[_Entry, Snapshot] | None = None
        self.cost_bytes = 0

    def add(self, snap: Snapshot) -> None:
        if self._entries and snap.timestamp < self._entries[-1].shell.timestamp:  # a new replay started over
            self._entries.clear()
            self._sizes.clear()
            self.cost_bytes = 0
        previous = self._entries[-1] if self._entries else None
        entry = _compact(snap, previous)
        if previous is not None:  # its cost so far assumed it was the newest
            if entry.buffers is not previous.buffers:
                self._splice(entry)
                previous = self._entries[-1]
            size = _left_behind(previous, entry)
            self.cost_bytes += size - self._sizes[-1]
            self._sizes[-1] = size
        size = sum(map(sys.getsizeof, _distinct(entry.parts()))) + _unshared(entry.shell.tables, snap.tables)
        self._entries.append(entry)
        self._sizes.append(size)
        self.cost_bytes += size
        self._newest = snap
        while len(self._entries) > 1 and (
            snap.timestamp - self._entries[0].shell.timestamp > self.depth or self.cost_bytes > self.max_bytes
        ):
            self._entries.popleft()
            self.cost_bytes -= self._sizes.popleft()

    def _splice(self, entry: _Entry) -> None:
        """Replace each history buffer that the store has moved on from in ``entry`` by a :class:`_Spliced`
        in the kept entries: of its 2 x ``history`` values they need only those not in the new buffer, from
        the oldest entry's start on."""
        previous = self._entries[-1]
        if previous.layout is not entry.layout:
            return  # positions differ: the old buffers stay whole (a port came or went, once in a while)
        old_ends, new_ends = _numbers("I", previous.ends), _numbers("I", entry.ends)
        moved: dict[int, tuple[array[float], array[float], int]] = {}
        for j, (old, new) in enumerate(zip(previous.buffers, entry.buffers, strict=True)):
            if old is not new and type(old) is array and type(new) is array:
                cut = _cut(old, new, old_ends[j], new_ends[j])
                if cut is not None:
                    moved[id(old)] = (old, new, cut)
        if not moved:
            return
        spliced: dict[int, _Spliced] = {}
        chained: dict[int, _Spliced] = {}  # spliced before, onto a buffer moved from now: they read it from 0
        seen: set[int] = set()
        for e in self._entries:  # the oldest entry viewing a buffer has the lowest start in it
            if id(e.buffers) in seen:
                continue
            seen.add(id(e.buffers))
            chained.update((id(b), b) for b in e.buffers if type(b) is _Spliced and id(b.tail) in moved)
            for b in chained.values():
                if id(b.tail) not in spliced:
                    old, new, cut = moved[id(b.tail)]
                    spliced[id(old)] = _Spliced(old, 0, cut, new)
            where = {id(b): i for i, b in enumerate(e.buffers)}  # by identity: a layout of its own is no matter
            found = [(where[key], key) for key in moved if key not in spliced and key in where]
            if found:
                ends, lengths = _numbers("I", e.ends), _numbers("I", e.lengths)
                for i, key in found:
                    old, new, cut = moved[key]
                    spliced[key] = _Spliced(old, min(ends[i] - lengths[i], cut), cut, new)
        for b in chained.values():
            b.tail = spliced[id(b.tail)]
        rewritten: dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}  # the old tuple kept: ids stay unique
        for i, e in enumerate(self._entries):
            if id(e.buffers) not in rewritten:
                swapped = tuple(spliced.get(id(b), b) for b in e.buffers)
                changed = any(map(operator.is_not, swapped, e.buffers))
                rewritten[id(e.buffers)] = (e.buffers, swapped if changed else e.buffers)
            buffers = rewritten[id(e.buffers)][1]
            if buffers is not e.buffers:
                self._entries[i] = replace(e, buffers=buffers)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> Snapshot:
        entry = self._entries[index]
        if entry is self._entries[-1] and self._newest is not None:
            return self._newest
        if self._built is None or self._built[0] is not entry:
            self._built = (entry, _build(entry))
        return self._built[1]

    @property
    def span(self) -> float:
        return self._entries[-1].shell.timestamp - self._entries[0].shell.timestamp if self._entries else 0.0

    def index_at(self, timestamp: float) -> int:
        """The last snapshot taken at or before ``timestamp`` (the first one when all are later)."""
        return max(bisect.bisect_right([e.shell.timestamp for e in self._entries], timestamp) - 1, 0)

    def failure(self, start: int, direction: int) -> int | None:
        """The nearest snapshot after (direction 1) or before (-1) ``start`` where a health check fails."""
        i = start + direction
        while 0 <= i < len(self._entries):
            shell = self._entries[i].shell  # its health table is enough, when it has one
            if health.failing(health.rows(shell if health.TABLE in shell.tables else self[i])):
                return i
            i += direction
        return None


def _compact(snap: Snapshot, previous: _Entry | None) -> _Entry:
    """``snap`` in columns, sharing with the previous entry what is the same."""
    series = snap.series
    layout = _Layout(tuple(s.spec for s in series), tuple(s.labels for s in series))
    tables = snap.tables
    before: _Entry | None = None
    if previous is not None:
        tables = {name: _shared_rows(rows, previous.shell.tables.get(name, ())) for name, rows in tables.items()}
        if layout.specs == previous.layout.specs and layout.labels == previous.layout.labels:
            layout, before = previous.layout, previous  # columns are shared by position: only with the same series
    raw_values = [s.value for s in series]
    raw_rates = [s.rate for s in series]
    unusual: set[int] = set()
    values, rates = _doubles(raw_values, unusual), _doubles(raw_rates, unusual)
    buffers: list[Any] = []
    ends, lengths = array("I", bytes(4 * len(series))), array("I", bytes(4 * len(series)))
    sequences: dict[int, Sequence[float]] = {}
    for i, s in enumerate(series):
        h = s.history
        if type(h) is History:
            buffers.append(h.buffer)
            ends[i], lengths[i] = h.end, len(h)
        else:
            buffers.append(None)
            sequences[i] = h
    shared = tuple(buffers)
    if before is not None and all(map(operator.is_, shared, before.buffers)):
        shared = before.buffers
    return _Entry(
        shell=Snapshot(
            snap.seq, snap.timestamp, snap.interval, (), snap.health, tables, snap.meta, snap.collect_seconds
        ),
        layout=layout,
        values=_blocks(values, before.values if before else ()),
        rates=_blocks(rates, before.rates if before else ()),
        odd={i: (raw_values[i], raw_rates[i]) for i in unusual},
        gained={i: s.interval_histogram for i, s in enumerate(series) if s.interval_histogram is not None},
        buffers=shared,
        ends=_blocks(ends, before.ends if before else ()),
        lengths=_blocks(lengths, before.lengths if before else ()),
        sequences=sequences,
        stale=frozenset(i for i, s in enumerate(series) if s.stale),
    )


class _Spliced(Sequence[float]):
    """A history buffer the store has moved on from, as far as kept entries view it: its values from
    ``base`` to ``cut`` (a copy), then those of the buffer the store went on with (whose first values are
    the old one's from ``cut``). Indexed as the old buffer was, so the entries' ends and lengths hold."""

    __slots__ = ("_base", "_cut", "_head", "tail")

    def __init__(self, old: array[float], base: int, cut: int, tail: array[float] | _Spliced) -> None:
        self._head, self._base, self._cut = old[base:cut], base, cut
        self.tail = tail
        """The buffer the store went on with, or its own splice once the store moved on from that too."""

    def __len__(self) -> int:
        return self._cut + len(self.tail)

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + sys.getsizeof(self._head)  # the tail is the store's

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):  # History slices [start:end] only
            start, stop = index.start or 0, len(self) if index.stop is None else index.stop
            head = self._head[max(start, self._base) - self._base : max(min(stop, self._cut) - self._base, 0)]
            return head + self.tail[max(start - self._cut, 0) : max(stop - self._cut, 0)]
        return self._head[index - self._base] if index < self._cut else self.tail[index - self._cut]


def _cut(old: array[float], new: array[float], old_end: int, new_end: int) -> int | None:
    """Where in ``old`` the values of ``new`` begin, when they do: the newest value viewed in ``new`` is the
    one after the newest viewed in ``old`` (or the same one), and the values ``new`` starts with are the ones
    ``old`` ends with."""
    for appended in (1, 0):
        cut = old_end + appended - new_end
        shared = len(old) - cut
        if 0 <= shared < len(old) and shared <= len(new) and new[:shared].tobytes() == old[cut:].tobytes():
            return cut
    return None


def _shared_rows(rows: Sequence[Mapping[str, Any]], before: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """``rows``, each one equal to the previous entry's row at its place replaced by that row (the previous
    table itself when every row is): a switch's tables mostly stay the same from one round to the next."""
    pairs = zip(rows, before, strict=False)  # rows added or gone at the end are not matched
    kept = [old if old is row or (type(old) is type(row) and old == row) else row for row, old in pairs]
    if len(rows) == len(before) and all(map(operator.is_, kept, before)):
        return before
    return [*kept, *rows[len(before) :]]


def _doubles(numbers: list[Any], odd: set[int]) -> array[float]:
    """Doubles, NaN for None; the positions of anything else (an int, a histogram, NaN) go to ``odd``."""
    column = array("d", [math.nan]) * len(numbers)
    for i, v in enumerate(numbers):
        if type(v) is float and v == v:
            column[i] = v
        elif v is not None:
            odd.add(i)
    return column


def _blocks(numbers: array[Any], before: _Column) -> _Column:
    """``numbers`` cut in blocks, each the previous entry's block at its place when the same (and the
    previous column itself when every block is)."""
    raw, step = numbers.tobytes(), BLOCK * numbers.itemsize
    cut = [raw[i : i + step] for i in range(0, len(raw), step)]
    kept = tuple(old if old == new else new for new, old in zip(cut, before, strict=False)) + tuple(cut[len(before) :])
    return before if len(kept) == len(before) and all(map(operator.is_, kept, before)) else kept


def _distinct(objects: Iterable[object]) -> Iterator[object]:
    seen: set[int] = set()
    for obj in objects:
        if id(obj) not in seen:
            seen.add(id(obj))
            yield obj


def _left_behind(old: _Entry, new: _Entry) -> int:
    """The bytes ``old`` holds that ``new`` does not: they go when ``old`` goes."""
    kept = {id(part) for part in new.parts()}
    size = sum(sys.getsizeof(part) for part in _distinct(old.parts()) if id(part) not in kept)
    a, b = old.shell, new.shell
    size += _unshared(a.health, b.health) + _unshared(a.tables, b.tables) + _unshared(a.meta, b.meta)
    same = old.layout is new.layout
    for i, (value, rate) in old.odd.items():
        theirs = new.odd.get(i, (None, None)) if same else (None, None)
        size += _unshared(value, theirs[0]) + _unshared(rate, theirs[1])
    size += sum(_histogram_bytes(h, bounds=False) for h in old.gained.values())
    for i, h in old.sequences.items():
        size += _unshared(h, new.sequences.get(i) if same else None)
    if old.buffers is not new.buffers:
        viewed = {id(b) for b in new.buffers}
        size += sum(sys.getsizeof(b) for b in _distinct(old.buffers) if id(b) not in viewed and b is not None)
    return size


def _histogram_bytes(h: Histogram, bounds: bool) -> int:
    """A histogram with its counts (small ints are shared by Python) and, when ``bounds``, its bounds (an
    interval histogram shares them with its value)."""
    size = sys.getsizeof(h) + sys.getsizeof(h.counts) + sum(sys.getsizeof(c) for c in h.counts if c > 256)
    return size + (sys.getsizeof(h.bounds) + sum(sys.getsizeof(b) for b in h.bounds) if bounds else 0)


def _unshared(old: object, new: object) -> int:
    """The bytes of ``old`` (a snapshot's health, tables or meta, walked down) that ``new`` does not share.
    Rows are matched by position, or found anywhere in ``new`` (the flow changes of a round are listed again
    by the next ones)."""
    if old is new or old is None or type(old) is bool or (type(old) is int and -5 <= old <= 256):
        return 0
    if isinstance(old, Histogram):
        return _histogram_bytes(old, bounds=not isinstance(new, Histogram) or old.bounds is not new.bounds)
    size = sys.getsizeof(old)
    if isinstance(old, Mapping):
        theirs = flows.plain(new) if isinstance(new, Mapping) else {}
        size += sum(_unshared(v, theirs.get(k)) for k, v in flows.plain(old).items())
    elif isinstance(old, list | tuple):
        others: Sequence[object] = new if isinstance(new, list | tuple) else ()
        found = {id(x) for x in others}
        for i, x in enumerate(old):
            if id(x) not in found:
                size += _unshared(x, others[i] if i < len(others) else None)
    elif is_dataclass(old):  # fields walked by name: an instance dict's size depends on what came before
        same = type(new) is type(old)
        size += sum(_unshared(getattr(old, f.name), getattr(new, f.name) if same else None) for f in fields(old))
    return size


def _build(entry: _Entry) -> Snapshot:
    """The snapshot an entry was made of (equal to it, series by series)."""
    values: list[Any] = _floats(entry.values)
    rates: list[Any] = _floats(entry.rates)
    for i, (value, rate) in entry.odd.items():
        values[i], rates[i] = value, rate
    n = len(values)
    gained: list[Histogram | None] = [None] * n
    for i, g in entry.gained.items():
        gained[i] = g
    ends = _numbers("I", entry.ends)
    starts = map(operator.sub, ends, _numbers("I", entry.lengths))
    histories: list[Sequence[float]] = list(map(History, entry.buffers, starts, ends))
    for i, h in entry.sequences.items():
        histories[i] = h
    stale = [False] * n
    for i in entry.stale:
        stale[i] = True
    layout, shell = entry.layout, entry.shell
    series = tuple(map(Series, layout.specs, layout.labels, values, rates, gained, histories, stale))
    return Snapshot(
        shell.seq,
        shell.timestamp,
        shell.interval,
        series,
        shell.health,
        shell.tables,
        shell.meta,
        shell.collect_seconds,
    )


def _numbers(typecode: str, column: _Column) -> list[Any]:
    return array(typecode, b"".join(column)).tolist()


def _floats(column: _Column) -> list[float | None]:
    return [None if v != v else v for v in _numbers("d", column)]
