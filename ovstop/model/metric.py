"""The vocabulary shared by every collector and output: metric descriptions and samples.

Each metric is described once, by a :class:`MetricSpec` that sits next to the collector that produces
it. The metrics tree, Prometheus HELP/TYPE lines and the JSON snapshot all derive from those specs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

Labels = tuple[tuple[str, str], ...]
"""Label pairs sorted by name; hashable so that (name, labels) identifies a series."""


def labels_of(**pairs: object) -> Labels:
    """Build a canonical :data:`Labels` tuple (sorted, values as strings, None dropped)."""
    return tuple(sorted((k, str(v)) for k, v in pairs.items() if v is not None))


class Kind(StrEnum):
    """Metric types, as Prometheus and the OVS metrics RFC name them."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric's description.

    ``name`` is the full exposition name (``ovs_vswitchd_datapath_hit_total``); ``path`` places it in the
    tree (``("datapath", "hit")``). Counters keep their ``_total`` suffix in ``name``.
    """

    name: str
    kind: Kind
    help: str
    path: tuple[str, ...]
    labels: tuple[str, ...] = ()
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Histogram:
    """A histogram value: per-bucket (not cumulative) counts with their upper bounds.

    ``bounds[i]`` is the inclusive upper bound of bucket ``i``; the last bound is ``math.inf``.
    ``total`` is the sum of observed values when the source knows it, else None.
    """

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float | None = None

    def __post_init__(self) -> None:
        if len(self.bounds) != len(self.counts):
            raise ValueError("histogram bounds and counts differ in length")
        if not self.bounds or self.bounds[-1] != math.inf:
            raise ValueError("histogram needs a final +Inf bucket")

    @property
    def count(self) -> int:
        return sum(self.counts)

    def minus(self, older: Histogram) -> Histogram | None:
        """Counts added since ``older``; None when the buckets differ or a count went down (reset)."""
        if older.bounds != self.bounds:
            return None
        diff = tuple(a - b for a, b in zip(self.counts, older.counts, strict=True))
        if any(d < 0 for d in diff):
            return None
        total = None
        if self.total is not None and older.total is not None:
            total = self.total - older.total
        return Histogram(self.bounds, diff, total)

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding quantile ``q`` (0..1); None when empty."""
        n = self.count
        if n == 0:
            return None
        rank = q * n
        seen = 0
        for bound, c in zip(self.bounds, self.counts, strict=True):
            seen += c
            if seen >= rank and c:
                return bound
        return self.bounds[-1]

    def mean(self) -> float | None:
        n = self.count
        if n == 0 or self.total is None:
            return None
        return self.total / n


Value = float | Histogram


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one series. ``value`` is None when the series exists but could not be read."""

    spec: MetricSpec
    labels: Labels = field(default=())
    value: Value | None = None

    @property
    def key(self) -> tuple[str, Labels]:
        return (self.spec.name, self.labels)
