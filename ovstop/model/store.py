"""The metrics tree over time: per-series history and rates, turned into immutable snapshots.

Every output reads a :class:`Snapshot`; nothing reads the store while it is being updated. Counter
rates are computed here, once, with resets (an OVS restart zeroes its counters) shown as "no rate"
rather than as a negative spike.
"""

from __future__ import annotations

import math
import operator
from bisect import insort
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import groupby
from typing import Any, cast

from ovstop.model.block import CounterBlock
from ovstop.model.columns import Cell, CellRef, ColumnRound, ColumnState, CounterColumns, RoundOf, spec_of
from ovstop.model.metric import Histogram, Labels, MetricSpec, Sample, Value
from ovstop.model.series import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    NUMBER,
    HistoryBuffer,
    Series,
    continued,
    make_series,
    still_point,
)


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
    series: Sequence[Series]
    health: Mapping[str, SourceHealth]
    tables: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    collect_seconds: float = 0.0

    @cached_property
    def by_name(self) -> Mapping[str, Sequence[Series]]:
        """The series indexed by metric name, built on the first lookup (a pane makes dozens a refresh, and
        a scan of every series each time cost milliseconds apiece at 11,000 series). A store's snapshot
        knows where each name's series lie and makes only those looked up."""
        if isinstance(self.series, _AsOf) and self.series.ranges is not None:
            return _NameIndex(self.series, self.series.ranges)
        index: dict[str, list[Series]] = {}
        for s in self.series:
            index.setdefault(s.spec.name, []).append(s)
        return index

    @property
    def value_series(self) -> Sequence[Series]:
        """:attr:`series` for readers of names, labels, values and stale marks only (the exporter's page, a
        recording): each as its store last made it, so without making those unchanged since (whose rate,
        interval and history read as of an earlier round: never to be shown as this one's)."""
        return self.series.versions if isinstance(self.series, _AsOf) else self.series

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


class _AsOf(Sequence[Series]):
    """A lazy store's snapshot series: each series as last made, continued to this round when it has not
    changed since (made only when read, and once). ``ranges`` says where each metric name's series lie.

    Even which Series is each state's last (``versions``) is looked up only when read: the health checks
    read a few names of a round's draft, and a scrape comes every 15 s or so, not every round. A counter
    column's series is made by the column's round as of this snapshot (``rounds``)."""

    __slots__ = ("_items", "_kept", "_limit", "_rounds", "_seq", "_states", "_versions", "ranges")

    def __init__(
        self,
        kept: Mapping[_Key, _Version],
        states: tuple[_Key, ...],
        seq: int,
        limit: int,
        ranges: Mapping[str, tuple[int, int]] | None,
        rounds: Mapping[ColumnState, ColumnRound],
    ) -> None:
        self._kept = kept
        self._states = states
        self._seq = seq
        self._limit = limit
        self._rounds = rounds
        self._versions: tuple[Series, ...] | None = None
        self._items: tuple[Series, ...] | None = None
        self.ranges = ranges

    def _resolved(self, version: _Version) -> Series:
        """``version`` as a Series: a column's series made by the column's round."""
        if type(version) is tuple:
            column, index = version
            return self._rounds[column].version(index)
        return version  # type: ignore[return-value]

    def _made(self, version: _Version) -> Series:
        version = self._resolved(version)
        rounds = self._seq - version.made_in
        return version if rounds <= 0 else continued(version, rounds, self._limit)

    def _all(self) -> tuple[Series, ...]:
        items = self._items
        if items is None:  # two threads may both make them: the same values either way
            items = self._items = tuple(map(self._made, self.versions))
        return items

    @property
    def versions(self) -> tuple[Series, ...]:
        """Each series as last made (see :attr:`Snapshot.value_series`)."""
        versions = self._versions
        if versions is None:
            versions = self._versions = tuple(map(self._resolved, map(self._kept.__getitem__, self._states)))
        return versions

    def section(self, start: int, end: int) -> tuple[Series, ...]:
        """The series from ``start`` to ``end``, making only those."""
        if self._items is not None:
            return self._items[start:end]
        if self._versions is not None:
            return tuple(map(self._made, self._versions[start:end]))
        return tuple(map(self._made, map(self._kept.__getitem__, self._states[start:end])))

    def __len__(self) -> int:
        return len(self._states)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self._all()[index]

    def __iter__(self) -> Iterator[Series]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self._all() == tuple(other)

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return repr(self._all())


class _NameIndex(Mapping[str, Sequence[Series]]):
    """:attr:`Snapshot.by_name` of a store's snapshot: a name's series made when first looked up."""

    def __init__(self, series: _AsOf, ranges: Mapping[str, tuple[int, int]]) -> None:
        self._series = series
        self._ranges = ranges
        self._made: dict[str, tuple[Series, ...]] = {}

    def __getitem__(self, name: str) -> tuple[Series, ...]:
        found = self._made.get(name)
        if found is None:
            start, end = self._ranges[name]
            found = self._made[name] = self._series.section(start, end)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._ranges)

    def __len__(self) -> int:
        return len(self._ranges)


@dataclass(slots=True, eq=False)
class _State:
    """One series' memory between rounds. Compared and hashed by identity: a round keys its series by
    their state, which hashes at once, where a (name, labels) key rehashes every label."""

    name: str
    labels: Labels
    """The series' labels as first seen: every round's Series shares this tuple (a snapshot kept for the
    time scrub then holds no labels of its own)."""
    value: Value | None
    at: float
    """When the series was last read (while it is read every round, the round before is used instead)."""
    source: str
    history: HistoryBuffer
    version: Series | None = None
    """The last Series made (None after its source went down); rounds since ``version.made_in`` left the
    series unchanged, and their points are not in ``history`` yet."""
    sample: Sample | None = None
    """The last Sample folded in: a collector hands the very same object again while the series is
    unchanged (see ``ovstop.collect.memo``), which a lazy store then recognises by identity alone."""


_Key = _State | Cell
"""What a round keys a series by: its state, or its cell when it is in a counter column."""
_Version = Series | CellRef
"""What a round holds of a series: its Series, or where a counter column's round makes it."""
_Round = dict[_Key, _Version]
_name_of = operator.attrgetter("name")  # a state's or a cell's metric name


@dataclass(frozen=True)
class _Order:
    """The tree order of a round's states, and where each metric name's series lie in it (None when a name
    is not in one stretch)."""

    states: tuple[_Key, ...]
    ranges: Mapping[str, tuple[int, int]] | None


Batch = tuple[str, Sequence[Sample]]
"""A source and what one collector read from it this round."""


class MetricStore:
    """Keeps what it needs of past rounds (last value, a bounded history) and builds snapshots.

    ``lazy``: a series whose value did not change since the last round costs nothing that round (no new
    Series, no history point written); a snapshot makes such series when they are read, continued to its
    round. A batch that is the very same sequence as in the last round (a collector that saw no change)
    is not even looked at. The exporter is lazy (it reads values; a round follows what changed); the TUI,
    which shows every history every second, is not.
    """

    def __init__(self, history: int = 120, tree_order: Sequence[str] = (), lazy: bool = False) -> None:
        """``tree_order``: the top-level subsystems (first element of a spec's path) in the order the tree
        shows them, as the collection layer declares it; others follow by name."""
        self.history = history
        self.lazy = lazy
        self._rank = {top: i for i, top in enumerate(tree_order)}
        self._state: dict[tuple[str, Labels], _State] = {}
        self._by_sample: dict[int, _State] = {}
        """id of each state's last sample -> the state (the state holds the sample, so the id is its own)."""
        self._kept: _Round = {}
        self._columns = CounterColumns(history)
        """The counter columns of the batches that are :class:`CounterBlock` s (a lazy store's only)."""
        self._batches: dict[int, tuple[Sequence[Sample], _Round]] = {}
        """Last round's batches (by identity, each held so its id stays its own) and what they kept."""
        self._same: tuple[list[_Round], _Round] = ([], {})
        """The parts of last round's batches that were the round before's too, and their merge."""
        self._sources: set[str] = set()
        """The sources of last round's series: only their going down makes stale copies."""
        self._created: list[_Key] = []
        """The states this round made (series new to the store)."""
        # The tree orders of the last round's series, without and with the derived ones: most rounds have
        # the same series, so no re-sort.
        self._base: _Order | None = None
        self._final: _Order | None = None
        self._seq = 0
        self._last_at: float | None = None

    def _tree_key(self, spec: MetricSpec) -> tuple[int, tuple[str, ...], str]:
        top = spec.path[0] if spec.path else ""
        return self._rank.get(top, len(self._rank)), spec.path, spec.name

    def update(
        self,
        batches: Iterable[Batch],
        now: float,
        wall: float,
        health: Mapping[str, SourceHealth],
        tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        meta: Mapping[str, Any] | None = None,
        collect_seconds: float = 0.0,
        derive: Derive | None = None,
    ) -> Snapshot:
        """Fold one round's batches in and return the new snapshot.

        Series of a source that is down this round are carried over from the last snapshot as stale;
        series that vanished from a healthy source (a deleted port) are dropped. ``derive`` computes
        further series and tables from the round's series (health checks); they get history like any other.
        """
        self._seq += 1
        last_at, self._last_at = self._last_at, now
        interval = None if last_at is None else now - last_at
        self._created = []
        memo: dict[int, tuple[Sequence[Sample], _Round]] = {}
        sources: set[str] = set()
        same: list[_Round] = []  # what the batches that are last round's kept, in order
        fresh: list[_Round] = []  # what the others keep
        part: _Round
        for source, batch in batches:
            if batch:
                sources.add(source)
            known = self._batches.get(id(batch)) if self.lazy else None
            if known is not None:  # the very same batch: held in the memo, so its id is its own
                part = known[1]
                same.append(part)
                memo[id(batch)] = known
                continue
            part = {}
            if self.lazy and type(batch) is CounterBlock:
                # The very dict of references of the last round while its columns are laid out the same: with
                # the parts of the unchanged batches, merged once (see _merged).
                at = RoundOf(self._seq, now, interval, self._kept, self._created, self._state.get)
                refs = self._columns.fold_block(batch, source, at)
                same.append(refs)
                memo[id(batch)] = (batch, refs)
                continue
            if self.lazy:
                by_sample = self._by_sample
                for sample in batch:
                    # Last round's very sample, of a series still made by it: the series is unchanged.
                    state = by_sample.get(id(sample))
                    if state is not None and state.sample is sample and (version := state.version) is not None:
                        state.source = source
                        part[state] = version
                    else:
                        self._fold(sample, now, source, part, interval)
                memo[id(batch)] = (batch, part)
            else:
                for sample in batch:
                    self._fold(sample, now, source, part, interval)
            fresh.append(part)
        self._batches = memo
        kept = self._merged(same)
        for part in fresh:
            kept.update(part)
        down = {name for name, h in health.items() if not h.up} & self._sources  # a source missing from health is up
        if down:
            self._carry_stale(kept, down, last_at)
        self._sources = sources | down
        tables = dict(tables or {})
        if derive is not None:
            self._base = self._ordered(kept, self._base)
            draft = Snapshot(self._seq, wall, interval, self._series_of(kept, self._base), dict(health), tables)
            extra, extra_tables = derive(draft)
            for sample in extra:
                self._fold(sample, now, DERIVED, kept, interval)
            tables.update(extra_tables)
        final = self._ordered(kept, self._final)
        if final is not self._final:  # series came or went: forget the states of those gone
            self._state = {key: state for key, state in self._state.items() if state in kept}
            self._by_sample = {id(s.sample): s for s in self._state.values() if s.sample is not None}
            self._columns.forget(kept)
        self._final = final
        self._kept = kept
        return Snapshot(
            seq=self._seq,
            timestamp=wall,
            interval=interval,
            series=self._series_of(kept, self._final),
            health=dict(health),
            tables=tables,
            meta=dict(meta or {}),
            collect_seconds=collect_seconds,
        )

    def _merged(self, parts: list[_Round]) -> _Round:
        """A new dict of ``parts`` merged. When they are last round's very parts (the batches that did not
        change, most of the series most rounds), a copy of last round's merge: a clean dict's copy is a clone
        of its table, where merging 10,000 series anew cost half a millisecond every round. A series is in one
        batch of a round only (the sampler gives each metric name to one list of one collector), so the order of the
        merge does not matter.

        When a few small parts joined or left the unchanged ones (a batch that changes every few rounds: the
        bridges' sums, every 5 s), last round's merge is mended with them instead of made anew: the merge is
        never handed out, only copies of it."""
        last, merged = self._same
        if len(parts) != len(last) or not all(map(operator.is_, parts, last)):
            now = {id(part): part for part in parts}
            before = {id(part): part for part in last}
            gone = [part for key, part in before.items() if key not in now]
            came = [part for key, part in now.items() if key not in before]
            if sum(map(len, gone)) + sum(map(len, came)) < len(merged) // 4:
                for part in gone:
                    for key in part:
                        merged.pop(key, None)
            else:
                merged, came = {}, parts
            for part in came:
                merged.update(part)
            self._same = (parts, merged)
        return dict(merged)

    def _ordered(self, kept: _Round, last: _Order | None) -> _Order:
        """The tree order of ``kept``: ``last`` when the same states (none new, as many); else ``last``
        without the states gone and with the new ones put in place (series come and go a few at a time: an
        rxq whose usage OVS cannot tell yet), sorted whole only the first time."""
        created = self._created
        if last is not None and not created and len(last.states) == len(kept):
            return last

        def key(state: _Key) -> tuple[tuple[int, tuple[str, ...], str], Labels]:
            return self._tree_key(spec_of(kept[state])), state.labels

        if last is None:
            order = sorted(kept, key=key)
        else:
            order = list(filter(kept.__contains__, last.states))
            for state in created:
                if state in kept:
                    insort(order, state, key=key)
            if len(order) != len(kept):  # not made of the last order and the new states: sort anew
                order = sorted(kept, key=key)
        # A loop per name, not per series: series come and go on a busy switch (a coverage counter's first
        # event, a memory key), and a loop over 11,000 series cost each such round 5 to 12 ms.
        ranges: dict[str, tuple[int, int]] = {}
        for name, start, end in name_stretches(map(_name_of, order)):
            if name in ranges:  # a name in two stretches: indexed by scanning
                return _Order(tuple(order), None)
            ranges[name] = (start, end)
        return _Order(tuple(order), ranges)

    def _series_of(self, kept: _Round, order: _Order) -> Sequence[Series]:
        if not self.lazy:  # an eager store folds every sample itself: no column's series
            return cast("tuple[Series, ...]", tuple(map(kept.__getitem__, order.states)))
        # The round's dict of series, never changed once the round is over; the draft's is read by the
        # health checks before the round adds their series to it.
        return _AsOf(kept, order.states, self._seq, self.history, order.ranges, self._columns.rounds)

    def _carry_stale(self, kept: _Round, down: set[str], last_at: float | None) -> None:
        """Carry the series of the ``down`` sources over from the last round, marked stale."""
        if last_at is not None:
            self._columns.carry_stale(self._kept, kept, down, self._seq, last_at)
        for state, old in self._kept.items():
            if state in kept or type(state) is not _State or state.source not in down:
                continue
            assert isinstance(old, Series)  # a state's (not a column's)
            if not old.stale:  # down since this round: its history as of the last round, written out
                version = state.version
                if version is not None and last_at is not None:
                    self._write_still_rounds(state, version, self._seq - 1)
                    old = make_series(old.spec, old.labels, old.value, None, None, state.history.view, self._seq)
                    state.at = last_at
                state.version = None
            kept[state] = Series(old.spec, old.labels, old.value, history=old.history, stale=True, made_in=self._seq)

    def _write_still_rounds(self, state: _State, version: Series, upto: int) -> None:
        """Write into ``state``'s history the points of the rounds after ``version`` up to ``upto`` in which
        it stayed unchanged (a lazy store writes them only when the series changes or goes stale)."""
        rounds = upto - version.made_in
        if rounds > 0:
            point = still_point(version)
            if point is not None:
                state.history.extend(point, rounds)

    def _fold(self, sample: Sample, now: float, source: str, kept: _Round, interval: float | None) -> None:
        """Fold ``sample`` into its series' state and put the series in ``kept``."""
        spec = sample.spec
        key = (spec.name, sample.labels)  # sample.key, without the property call
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = _State(spec.name, sample.labels, None, now, source, HistoryBuffer(self.history))
            self._created.append(state)
        else:
            state.source = source
        if self.lazy and state.sample is not sample:
            if state.sample is not None:
                del self._by_sample[id(state.sample)]
            state.sample = sample
            self._by_sample[id(sample)] = state
        value = sample.value
        old = state.value
        version = state.version
        if type(value) is type(old) and value == old:
            if self.lazy and version is not None and version.spec is spec:
                kept[state] = version  # unchanged: made when read, continued to the round that reads it
                return
            value = old  # unchanged: kept snapshots share the one object (a histogram is hundreds of bytes)
        # Read every round until now (its last Series is last round's, fresh): the rate is over the interval.
        seen = interval if interval is not None and self._kept.get(state) is version is not None else None
        rate: float | None = None
        gained: Histogram | None = None
        point: float | None = None  # what the history gains this round
        kind = spec.kind
        if kind is COUNTER:
            if isinstance(value, NUMBER):
                rate = point = counter_rate(old, value, seen if seen is not None else now - state.at)
        elif kind is GAUGE:
            if isinstance(value, NUMBER) and math.isfinite(value):
                point = float(value)
        elif kind is HISTOGRAM and isinstance(value, Histogram) and isinstance(old, Histogram):
            gained = value.minus(old)
            if gained is not None:
                point = float(gained.count)
        state.value = value
        state.at = now
        seq = self._seq
        still: float | None = None  # what the history gained in each of the rounds the series stayed unchanged
        rounds = 0
        if version is not None and version.made_in < seq - 1:  # unchanged for a while (checked here: hot path)
            rounds, still = seq - 1 - version.made_in, still_point(version)
        if point is not None:
            history = state.history.append(point, still, rounds)
            series = make_series(spec, state.labels, value, rate, gained, history, seq)
        else:  # nothing new to show (an info series, most often): last round's Series when it is the same
            if still is not None:
                state.history.extend(still, rounds)
            view = state.history.view
            series = version  # type: ignore[assignment]
            if (
                series is None
                or series.value is not value
                or series.history is not view
                or series.spec is not spec
                or series.rate is not None
                or series.interval_histogram is not None
            ):
                series = make_series(spec, state.labels, value, None, None, view, seq)
        state.version = kept[state] = series


def name_stretches(names: Iterable[str]) -> Iterator[tuple[str, int, int]]:
    """Each stretch of one name in ``names`` (a snapshot's series' names, in tree order), from ``start`` to
    ``end``: a loop per name, not per series."""
    start = 0
    for name, stretch in groupby(names):
        end = start + len(tuple(stretch))
        yield name, start, end
        start = end


def counter_rate(old: Value | None, new: float, seconds: float) -> float | None:
    """Per-second increase of a counter; None on the first sample, a reset, or a zero interval."""
    if not isinstance(old, NUMBER) or seconds <= 0 or new < old:
        return None
    return (new - old) / seconds
