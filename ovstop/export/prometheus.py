"""The metrics tree as Prometheus/OpenMetrics exposition, through prometheus-client.

Families are built from the metric specs of the snapshot, so HELP/TYPE come from the same single
description as the tree. Stale series (their source is down) are left out: Prometheus should see a
gap, not a frozen value; ``ovstop_source_up`` says why. A page is rendered once per snapshot and format
and shared by every scrape that asks for it; each request adds its own short tail, the page's age (see
:mod:`ovstop.export.server`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from ovstop.model.metric import Histogram, Kind, MetricSpec
from ovstop.model.series import Series
from ovstop.model.store import Snapshot

SCRAPE_SECONDS = MetricSpec(
    "ovstop_scrape_duration_seconds",
    Kind.GAUGE,
    "Time this scrape took to answer: waiting for a young enough snapshot, and rendering it when no earlier "
    "request had (collection runs apart: ovstop_collect_duration_seconds).",
    ("ovstop", "scrape_duration"),
    unit="seconds",
)
SNAPSHOT_AGE = MetricSpec(
    "ovstop_snapshot_age_seconds",
    Kind.GAUGE,
    "Seconds between the reading of the values on this page and this scrape (scrapes share the newest "
    "round's page; a page older than the served bound is not served).",
    ("ovstop", "snapshot_age"),
    unit="seconds",
)
SCRAPE_SPECS = (SCRAPE_SECONDS, SNAPSHOT_AGE)
"""Only on /metrics, one value per request: they describe the answer, not the switch, so no snapshot carries
them; they come after the snapshot's families (:class:`Tail`)."""
OPENMETRICS_EOF = b"# EOF\n"


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


def families(all_series: Iterable[Series]) -> Iterator[Metric]:
    """Every non-stale series of ``all_series`` (a snapshot's, in tree order), grouped into families."""
    built: dict[str, tuple[Metric, str]] = {}
    for series in all_series:
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

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def render(snapshot: Snapshot, encoder: Callable[[Any], bytes]) -> bytes:
    """The exposition of ``snapshot`` in the encoder's format (OpenMetrics' ``# EOF`` included)."""
    return render_series(snapshot.value_series, encoder)


def render_series(all_series: Iterable[Series], encoder: Callable[[Any], bytes]) -> bytes:
    """The exposition of ``all_series`` in the encoder's format (OpenMetrics' ``# EOF`` included)."""
    return encoder(_Families(families(all_series)))


class Tail:
    """The per-request families (:data:`SCRAPE_SPECS`) in one encoder's format, to follow a rendered snapshot
    whose OpenMetrics ``# EOF`` was cut off. Their HELP/TYPE(/UNIT) lines are rendered once, by
    prometheus-client; a request only writes its ``name value`` lines (one label-less sample each, the same
    syntax in both formats), so the tail costs a scrape microseconds."""

    def __init__(self, encoder: Callable[[Any], bytes]) -> None:
        self.heads: list[tuple[MetricSpec, bytes, str]] = []
        end = b""
        for spec in SCRAPE_SPECS:
            metric, name = _family(spec)
            head = encoder(_Families([metric]))
            if head.endswith(OPENMETRICS_EOF):
                head, end = head.removesuffix(OPENMETRICS_EOF), OPENMETRICS_EOF
            self.heads.append((spec, head, name))
        self.end = end

    def render(self, values: Mapping[MetricSpec, float]) -> bytes:
        lines = [head + f"{name} {floatToGoString(values[spec])}\n".encode() for spec, head, name in self.heads]
        return b"".join(lines) + self.end
