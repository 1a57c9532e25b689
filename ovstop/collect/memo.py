"""What collectors keep of their last round, so that a round costs what changed (a quiet switch next to nothing).

The sampler skips a collector's batch when it is the very list it got last round, and the store skips a
sample that is the very object it had for that series. :class:`SampleMemo` gives the unixctl collectors
both: the same replies as last round give back last round's list, without parsing; changed replies are
parsed anew, and each of their samples that reads as before (same series, same value) is last round's
object. :class:`Memo` does the same object by object (an interface, a bridge) for the OVSDB collectors,
whose replica keeps a row's dict while the row is unchanged.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ovstop.model.metric import Labels, MetricSpec, Sample, Value

R = TypeVar("R")


class SampleMemo(Generic[R]):
    """What one collector made of its replies last round; only that round is kept.

    ``replies`` is whatever the samples are made from, compared with ``==``: a reply text, or a tuple of
    the texts of several commands. A ``make`` that raises (a ParseError) leaves the memo as it was, so the
    same bad reply is parsed, and raises, again next round.
    """

    def __init__(self) -> None:
        self._replies: R | None = None
        self._samples: list[Sample] | None = None
        self._by_key: dict[tuple[str, Labels], Sample] = {}

    def samples(self, replies: R, make: Callable[[R], Iterable[Sample]]) -> list[Sample]:
        """Last round's list when ``replies`` equal last round's, else ``make(replies)``'s as a new list."""
        if self._samples is not None and replies == self._replies:
            return self._samples
        last = self._by_key
        fresh: list[Sample] = []
        by_key: dict[tuple[str, Labels], Sample] = {}
        for sample in make(replies):
            key = sample.key
            before = last.get(key)
            if before is not None and before.value == sample.value:
                sample = before
            fresh.append(sample)
            by_key[key] = sample
        self._replies, self._samples, self._by_key = replies, fresh, by_key
        return fresh


def renewed(old: Sample | None, spec: MetricSpec, labels: Labels, value: Value | None) -> Sample:
    """``old`` (last round's sample of the series, if any) when its labels and value are unchanged, else a new
    one. The store skips a sample that is the very object it had last round, at next to no cost,
    so a collector that keeps its unchanged samples makes a round cost what changed."""
    if old is not None and old.value == value and old.labels == labels:
        return old
    return Sample(spec, labels, value)


@dataclass(slots=True, eq=False)
class Part:
    """One object's (an interface's, a bridge's …) part of a collector's round, kept for the next round.

    Never changed once made, but not a frozen dataclass: a busy switch makes hundreds every few seconds, and
    a frozen one's constructor costs five times as much (0.9 µs against 0.17 for an interface's)."""

    made_of: tuple[Any, ...]
    """What the part is made of, compared with ``==``: for the OVSDB replica's rows, which are the same dicts
    while unchanged, mostly an identity check."""
    samples: tuple[Sample, ...]
    row: Mapping[str, Any]
    """The object's row of the collector's table (``Tables.rows``)."""

    def previous(self) -> dict[str, Sample]:
        """The part's samples by metric name, for :func:`renewed`."""
        return {s.spec.name: s for s in self.samples}


P = TypeVar("P", bound=Part)


class Memo(Generic[P]):
    """A collector's last round, part by part (only the last: what a round drops is let go).

    A round over the inputs of the last one (:meth:`renew` False) returns the last ``samples`` and ``rows``
    lists themselves; otherwise the collector puts each object's part, last round's (:meth:`known`)
    when it is made of the same, and :meth:`close` lays them out in order.
    """

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.rows: list[Mapping[str, Any]] = []
        self._inputs: tuple[tuple[object, ...], tuple[object, ...]] | None = None
        self._last: dict[Hashable, P] = {}
        self._parts: dict[Hashable, P] = {}

    def renew(self, *same: object, equal: tuple[object, ...] = ()) -> bool:
        """Start a round over ``same`` (compared by identity: the topology join and the counter maps, the same
        objects while unchanged) and ``equal`` (compared by value); False when they are the last round's."""
        inputs = self._inputs
        if (
            inputs is not None
            and len(inputs[0]) == len(same)
            and all(map(operator.is_, inputs[0], same))
            and inputs[1] == equal
        ):
            return False
        self._inputs, self._last, self._parts = (same, equal), self._parts, {}
        return True

    def known(self, key: Hashable) -> P | None:
        """Last round's part of ``key``, if any."""
        return self._last.get(key)

    def put(self, key: Hashable, part: P) -> None:
        self._parts[key] = part

    def close(self, samples: bool = True) -> list[P]:
        """Lay this round's parts out as its rows and (unless a collector lays them out its own way) its
        samples, in the order they were put; return the parts in that order."""
        self._last = {}
        parts = list(self._parts.values())
        if samples:
            self.samples = [s for part in parts for s in part.samples]
        self.rows = [part.row for part in parts]
        return parts
