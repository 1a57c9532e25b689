"""The metrics tree as Prometheus/OpenMetrics exposition, through prometheus-client.

Families are built from the metric specs of the snapshot, so HELP/TYPE come from the same single
description as the tree. Stale series (their source is down) are left out: Prometheus should see a
gap, not a frozen value; ``ovstop_source_up`` says why. A page is rendered once per snapshot and format
and shared by every scrape that asks for it (see :mod:`ovstop.export.server`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.metrics_core import Metric

from ovstop.model.metric import Histogram, Kind, MetricSpec
from ovstop.model.store import Snapshot

SCRAPE_SECONDS = MetricSpec(
    "ovstop_scrape_duration_seconds",
    Kind.GAUGE,
    "Time to produce this page (collection included).",
    ("ovstop", "scrape_duration"),
    unit="seconds",
)
"""Only on /metrics: it describes the page, not the switch, so no snapshot carries it."""


def _family(spec: MetricSpec) -> tuple[Metric, str]:
    """A prometheus-client family for ``spec`` and the sample name its plain values use."""
    name = spec.name
    if spec.kind is Kind.COUNTER:
        base = name.removesuffix("_total")
        return Metric(base, spec.help, "counter"), base + "_total"
    if spec.kind is Kind.INFO:
        base = name.removesuffix("_info")
        return Metric(base, spec.help, "info"), base + "_info"
    unit = spec.unit if spec.unit and name.endswith("_" + spec.unit) else ""
    typ = "histogram" if spec.kind is Kind.HISTOGRAM else "gauge"
    return Metric(name, spec.help, typ, unit), name


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


def _add_histogram(metric: Metric, labels: dict[str, str], hist: Histogram) -> None:
    """Buckets always; ``_count`` and ``_sum`` only together, when the source knows the sum.

    OpenMetrics forbids a ``_count`` without a ``_sum``, and OVS prints no sums for its pmd-perf
    histograms; their count is the ``+Inf`` bucket.
    """
    cumulative = 0
    for bound, count in zip(hist.bounds, hist.counts, strict=True):
        cumulative += count
        metric.add_sample(metric.name + "_bucket", {**labels, "le": _bound(bound)}, float(cumulative))
    if hist.total is not None:
        metric.add_sample(metric.name + "_count", labels, float(cumulative))
        metric.add_sample(metric.name + "_sum", labels, float(hist.total))


def families(snapshot: Snapshot) -> Iterator[Metric]:
    """Every non-stale series of ``snapshot``, grouped into families in tree order."""
    built: dict[str, tuple[Metric, str]] = {}
    for series in snapshot.series:
        if series.stale or series.value is None:
            continue
        spec = series.spec
        if spec.name not in built:
            built[spec.name] = _family(spec)
        metric, sample_name = built[spec.name]
        labels = dict(series.labels)
        if isinstance(series.value, Histogram):
            _add_histogram(metric, labels, series.value)
        else:
            metric.add_sample(sample_name, labels, float(series.value))
    for metric, _ in built.values():
        yield metric


class _Families:
    """What prometheus-client's encoders take: an object whose ``collect()`` yields families."""

    def __init__(self, snapshot: Snapshot, extra: Metric) -> None:
        self.snapshot = snapshot
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        yield from families(self.snapshot)
        yield self.extra


def render(snapshot: Snapshot, encoder: Callable[[Any], bytes], seconds: float) -> bytes:
    """The exposition of ``snapshot`` in the encoder's format, with the time the page took to produce."""
    scrape, name = _family(SCRAPE_SECONDS)
    scrape.add_sample(name, {}, seconds)
    return encoder(_Families(snapshot, scrape))
