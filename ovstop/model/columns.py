"""A lazy store's memory of counter columns (:mod:`ovstop.model.block`): a column folded at a time.

Folding a moved counter one by one cost the store 4 to 5 µs (its state, its rate, its history point, a new
:class:`Series`): 8 to 11 ms every 5 s for the ~1,800 counters of 1,000 busy interfaces. A column is folded
at C speed instead: its rates in one pass, a point appended to every history in one ``map``, and each series
put in the round as a reference ``(column, index)``, the same objects round after round. A Series is made by
the column's :class:`ColumnRound` as of the snapshot read, only when that snapshot's reader asks for that
one (a scrape reads values; the store's other readers a few names), and once.

The rates and histories are those the store gives a counter folded on its own: the increase over the last
interval (over the time since it was last read, after its source was down), none after a reset or on the
first reading; a point per round, 0 in the rounds it stood still, none in the rounds its source was down.
"""

from __future__ import annotations

import operator
from array import array
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple, cast

from ovstop.model.block import Column, CounterBlock
from ovstop.model.metric import Labels, MetricSpec
from ovstop.model.series import History, Series, history_view, make_series

_append, _extend = array.append, array.extend


def _zeros(count: int, limit: int) -> array[float]:
    """The points of ``count`` rounds a counter stood still (at most ``limit``: what a history keeps)."""
    return array("d", bytes(8 * min(max(count, 0), limit)))


def _recent(buf: array[float], end: int, limit: int) -> History:
    """The view of the last ``limit`` values of ``buf`` up to ``end``."""
    return history_view(buf, end - limit if end > limit else 0, end)


@dataclass(slots=True, eq=False)
class Cell:
    """One series of a column, as a round's key (compared and hashed by identity, like the store's states)."""

    name: str
    labels: Labels


class ColumnRound:
    """A column as one round left it; never changed after (a snapshot of any later round may read it).

    ``ends[i]`` is where series ``i``'s history ended in that round: its buffer is only ever appended to, or
    replaced whole, so a view up to there stays what it was."""

    __slots__ = ("_versions", "bufs", "ends", "labels", "limit", "rates", "seq", "spec", "values")

    def __init__(
        self,
        spec: MetricSpec,
        labels: Sequence[Labels],
        values: Sequence[float],
        rates: Sequence[float | None],
        bufs: Sequence[array[float]],
        seq: int,
        limit: int,
    ) -> None:
        self.spec = spec
        self.labels = labels
        self.values = values
        self.rates = rates
        self.bufs = bufs
        self.ends = list(map(len, bufs))
        self.seq = seq
        self.limit = limit
        self._versions: list[Series | None] = [None] * len(values)

    def version(self, index: int) -> Series:
        """Series ``index`` as this round made it (made on the first read; two threads may both make it)."""
        made = self._versions[index]
        if made is None:
            view = _recent(self.bufs[index], self.ends[index], self.limit)
            made = self._versions[index] = make_series(
                self.spec, self.labels[index], self.values[index], self.rates[index], None, view, self.seq
            )
        return made


class RoundOf(NamedTuple):
    """The store's round that folds columns."""

    seq: int
    now: float
    interval: float | None
    last: Mapping[Any, Any]
    """The last round's series: a column's series in it as references were read then, fresh."""
    created: list[Any]
    """Where the series new to the store go."""
    earlier: Callable[[tuple[str, Labels]], Any]
    """The store's state of a series it folded on its own, if any (see :meth:`CounterColumns._take_over`)."""


@dataclass(slots=True, eq=False)
class ColumnState:
    """One column's memory between rounds."""

    spec: MetricSpec
    source: str
    labels: tuple[Labels, ...] = ()
    cells: tuple[Cell, ...] = ()
    refs: dict[Cell, CellRef] = field(default_factory=dict)
    """Each cell's reference, the same dict while the layout is: what the store's rounds hold of the column."""
    values: Sequence[float | None] = ()
    bufs: list[array[float]] = field(default_factory=list)
    at: float = 0.0
    """When the column was last read (its series' rates, after its source was down, are over the time since)."""
    accounted: int = 0
    """The last round whose points are in the histories: the rounds since, the column stood still."""
    round: ColumnRound | None = None


CellRef = tuple[ColumnState, int]
"""What a round holds for a series of a column: the column and the series' index in it. Which
:class:`ColumnRound` made it is a snapshot's to say (see :attr:`CounterColumns.rounds`): the references stay
the same objects while the layout does, so a round that moved every counter of a column changes none of them."""


def spec_of(version: Series | CellRef) -> MetricSpec:
    """The spec of ``version`` without making a column's series."""
    return version[0].spec if type(version) is tuple else version.spec  # type: ignore[union-attr]


class CounterColumns:
    """The columns a lazy store was handed, by metric name (each name comes from one collector)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._states: dict[str, ColumnState] = {}
        self.rounds: Mapping[ColumnState, ColumnRound] = {}
        """Each column's last round: a new mapping whenever one changes, so a snapshot keeps its own."""
        self._parts: dict[int, tuple[tuple[dict[Cell, CellRef], ...], dict[Cell, CellRef]]] = {}
        """The refs of each block's columns (by the id of the first column's spec) and their merge."""

    def fold_block(self, block: CounterBlock, source: str, at: RoundOf) -> dict[Any, Any]:
        """Fold ``block`` into round ``at`` and return the references of its series: the very dict of the last
        fold while no column was laid out anew."""
        rounds: dict[ColumnState, ColumnRound] | None = None
        parts = []
        for column in block.columns:
            state = self._fold(column, source, at)
            parts.append(state.refs)
            if state.round is not None and self.rounds.get(state) is not state.round:
                if rounds is None:
                    rounds = dict(self.rounds)
                rounds[state] = state.round
        if rounds is not None:
            self.rounds = rounds
        key = id(block.columns[0].spec) if block.columns else 0
        known = self._parts.get(key)
        if known is not None and len(known[0]) == len(parts) and all(map(operator.is_, known[0], parts)):
            return known[1]
        merged: dict[Cell, CellRef] = {}
        for part in parts:
            merged.update(part)
        self._parts[key] = (tuple(parts), merged)
        return merged

    def _fold(self, column: Column, source: str, at: RoundOf) -> ColumnState:
        """Fold ``column`` into round ``at`` and return its state."""
        seq, now, interval, last, created = at.seq, at.now, at.interval, at.last, at.created
        state = self._states.get(column.spec.name)
        if state is None:
            state = self._states[column.spec.name] = ColumnState(column.spec, source, column.labels)
            self._relayout(state, column.labels, created)
            self._take_over(state, at.earlier, seq)
        state.spec, state.source = column.spec, source
        cells = state.cells
        fresh = bool(cells) and type(last.get(cells[0])) is tuple
        relaid = column.labels is not state.labels and column.labels != state.labels
        if relaid:
            self._relayout(state, column.labels, created)
        state.labels = column.labels
        values = column.values
        done = state.round
        if (
            fresh
            and not relaid
            and done is not None
            and done.spec is column.spec
            and (values is state.values or values == state.values)
        ):
            return state
        limit = self.limit
        self._write_still(state, seq - 1)
        bufs = state.bufs
        old = state.values
        seen = interval if fresh and interval is not None else now - state.at
        rates: list[float | None]
        if seen <= 0:
            rates = [None] * len(values)
        else:
            rates = [
                (value - before) / seen if before is not None and value >= before else None
                for value, before in zip(values, old, strict=True)
            ]
        if None in rates:
            for buf, rate in zip(bufs, rates, strict=True):
                if rate is not None:
                    buf.append(rate)
        else:
            deque(map(_append, bufs, cast(list[float], rates)), 0)
        if bufs and max(map(len, bufs)) >= 2 * limit:  # cut when the dropped values reach the limit
            bufs = state.bufs = [buf[len(buf) - limit :] if len(buf) >= 2 * limit else buf for buf in bufs]
        state.round = ColumnRound(column.spec, state.labels, values, rates, bufs, seq, limit)
        state.values, state.at, state.accounted = values, now, seq
        return state

    def _take_over(self, state: ColumnState, earlier: Callable[[tuple[str, Labels]], Any], seq: int) -> None:
        """Take over, for a column new to the store, the series the store folded one by one until the last
        round (an eager store, as the exporter's first round is, turned lazy): their values, and their
        histories written out to that round. Only those read in the same, last, round: a rate over the
        interval since is then each one's own."""
        found = [earlier((state.spec.name, cell.labels)) for cell in state.cells]
        live = [f for f in found if f is not None and f.version is not None and isinstance(f.value, float)]
        if not live:
            return
        at = max(f.at for f in live)
        values = list(state.values)
        for i, f in enumerate(found):
            if f is None or f.version is None or not isinstance(f.value, float) or f.at != at:
                continue
            buf = state.bufs[i] = array("d", f.history.view)
            buf.extend(_zeros(seq - 1 - f.version.made_in, self.limit))
            values[i] = f.value
        state.values, state.at, state.accounted = values, at, seq - 1

    @staticmethod
    def _relayout(state: ColumnState, labels: tuple[Labels, ...], created: list[Any]) -> None:
        """Lay ``state`` out for ``labels`` (series came or went): each series that stays keeps its cell, value
        and history; a new one starts with none. A round's buffers list is never changed: a new one."""
        where = {cell.labels: i for i, cell in enumerate(state.cells)}
        cells: list[Cell] = []
        values: list[float | None] = []
        bufs: list[array[float]] = []
        for series_labels in labels:
            i = where.get(series_labels)
            if i is None:
                cell = Cell(state.spec.name, series_labels)
                created.append(cell)
                cells.append(cell)
                values.append(None)
                bufs.append(array("d"))
            else:
                cells.append(state.cells[i])
                values.append(state.values[i])
                bufs.append(state.bufs[i])
        state.cells, state.values, state.bufs = tuple(cells), values, bufs
        state.refs = dict(zip(cells, zip(repeat(state), range(len(cells)), strict=False), strict=True))

    def carry_stale(self, last: Mapping[Any, Any], kept: dict[Any, Any], down: set[str], seq: int, at: float) -> None:
        """Carry the series of the columns of the ``down`` sources over from ``last`` round, marked stale;
        ``at`` is when that round read them."""
        for state in self._states.values():
            cells = state.cells
            if state.source not in down or not cells or cells[0] in kept or cells[0] not in last:
                continue
            if type(last[cells[0]]) is tuple:  # down since this round: its histories as of the last one
                self._write_still(state, seq - 1)
                limit, spec = self.limit, state.spec
                stale = [
                    Series(
                        spec,
                        labels,
                        value,
                        history=_recent(buf, len(buf), limit),
                        stale=True,
                        made_in=seq,
                    )
                    for labels, value, buf in zip(state.labels, state.values, state.bufs, strict=True)
                ]
                state.at = at
            else:
                stale = [
                    Series(old.spec, old.labels, old.value, history=old.history, stale=True, made_in=seq)
                    for old in map(last.__getitem__, cells)
                ]
            state.accounted = seq
            kept.update(zip(cells, stale, strict=True))

    def _write_still(self, state: ColumnState, upto: int) -> None:
        """Write the points of the rounds after the last one accounted up to ``upto``, which the column stood
        still in (0 each), into the histories of the series read before (all of them, most rounds)."""
        zeros = _zeros(upto - state.accounted, self.limit)
        if zeros:
            if None not in state.values:
                deque(map(_extend, state.bufs, repeat(zeros)), 0)
            else:
                for buf, value in zip(state.bufs, state.values, strict=True):
                    if value is not None:
                        buf.extend(zeros)
        state.accounted = upto

    def forget(self, kept: Mapping[Any, Any]) -> None:
        """Forget the columns none of whose series is in ``kept`` (the round's)."""
        self._states = {name: s for name, s in self._states.items() if s.cells and s.cells[0] in kept}
        self._parts = {}  # made again at the next fold: none holds the references of a column forgotten
        if len(self.rounds) != len(self._states):
            self.rounds = {s: r for s, r in self.rounds.items() if s.cells and s.cells[0] in kept}
