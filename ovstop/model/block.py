"""Counters of many series laid out column by column: one metric's values for every series at once.

A busy switch moves thousands of counters every few seconds (OVSDB's interface statistics). As
:class:`~ovstop.model.metric.Sample` objects, each moved counter costs a collector an object and the store a
fold of its own, some microseconds apiece. A :class:`CounterBlock` carries each metric as one
:class:`Column` (its labels and its values, in one order), which a lazy store folds a column at a time at C
speed (see :mod:`ovstop.model.store`). Every other reader sees the samples it stands for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat

from ovstop.model.metric import Kind, Labels, MetricSpec, Sample


@dataclass(frozen=True, slots=True, eq=False)
class Column:
    """One counter's values for many series: ``values[i]`` is the series labelled ``labels[i]``.

    ``labels`` is the very same tuple while the series are the same ones: the store recognises an
    unchanged layout by identity."""

    spec: MetricSpec
    labels: tuple[Labels, ...]
    values: Sequence[float]

    def __post_init__(self) -> None:
        if self.spec.kind is not Kind.COUNTER:
            raise ValueError(f"{self.spec.name}: a column holds counters only")
        if len(self.labels) != len(self.values):
            raise ValueError(f"{self.spec.name}: {len(self.labels)} labels for {len(self.values)} values")


class CounterBlock(Sequence[Sample]):
    """A collector's counters as :class:`Column` s, read as the samples they stand for (made on the first
    read, once) by any reader but a lazy store."""

    __slots__ = ("_samples", "columns")

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self._samples: tuple[Sample, ...] | None = None

    @property
    def names(self) -> frozenset[str]:
        """The metric names in the block, without making its samples."""
        return frozenset(column.spec.name for column in self.columns)

    def _all(self) -> tuple[Sample, ...]:
        samples = self._samples
        if samples is None:  # two threads may both make them: the same samples either way
            samples = self._samples = tuple(
                chain.from_iterable(map(Sample, repeat(c.spec), c.labels, c.values) for c in self.columns)
            )
        return samples

    def __len__(self) -> int:
        return sum(len(column.labels) for column in self.columns)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self._all()[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._all())

    def __repr__(self) -> str:
        return f"CounterBlock({[c.spec.name for c in self.columns]!r}, {len(self)} samples)"
