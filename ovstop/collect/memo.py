"""Last round's samples handed back for replies that did not change, so a quiet switch costs no parsing.

The sampler skips a collector's batch when it is the very list it got last round, and the store skips a
sample that is the very object it had for that series. :class:`SampleMemo` gives collectors both: the same
replies as last round give back last round's list, without parsing; changed replies are parsed anew, and
each of their samples that reads as before (same series, same value) is last round's object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from ovstop.model.metric import Labels, Sample

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
