"""``metrics/show`` as a source, on switches built with the OVS metrics RFC.

Such a switch names and computes its metrics itself, so ovstop takes them as they are rather than
re-deriving them from text commands; the sampler gives each metric name to the first collector that
produced it in a round, and this collector runs first, so the RFC's series win over classic ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from ovstop.collect.base import Sources, Tables
from ovstop.collect.unixctl_util import client_of
from ovstop.model.metric import Histogram, Kind, MetricSpec, Sample
from ovstop.parsers import metrics_show
from ovstop.parsers.metrics_show import RfcFamily

COMMAND = metrics_show.COMMAND
_KINDS = {"counter": Kind.COUNTER, "gauge": Kind.GAUGE, "histogram": Kind.HISTOGRAM, "info": Kind.INFO}
_PREFIX = "ovs_vswitchd_"


def _path(name: str) -> tuple[str, ...]:
    """Tree place from the name: ``ovs_vswitchd_datapath_hit_total`` -> ("datapath", "hit")."""
    parts = name.removeprefix(_PREFIX).removesuffix("_total").split("_", 1)
    return tuple(parts)


def _histograms(family: RfcFamily) -> dict[tuple[tuple[str, str], ...], Histogram]:
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    sums: dict[tuple[tuple[str, str], ...], float] = {}
    for s in family.samples:
        labels = tuple(kv for kv in s.labels if kv[0] != "le")
        if s.name.endswith("_bucket"):
            le = dict(s.labels)["le"]
            buckets.setdefault(labels, []).append((math.inf if le == "+Inf" else float(le), s.value))
        elif s.name.endswith("_sum"):
            sums[labels] = s.value
    out = {}
    for labels, cumulative in buckets.items():
        cumulative.sort()
        counts, previous = [], 0.0
        for _, c in cumulative:
            counts.append(int(c - previous))
            previous = c
        out[labels] = Histogram(tuple(b for b, _ in cumulative), tuple(counts), sums.get(labels))
    return out


class RfcMetricsCollector:
    """Every family ``metrics/show -x`` prints, with specs taken from its HELP/TYPE lines."""

    name = "rfc_metrics"
    source = "unixctl"

    def __init__(self) -> None:
        self._specs: dict[str, MetricSpec] = {}

    @property
    def specs(self) -> tuple[MetricSpec, ...]:
        return tuple(self._specs.values())

    def _spec(self, family: RfcFamily) -> MetricSpec:
        kind = _KINDS.get(family.type, Kind.GAUGE)
        name = family.name + "_total" if kind is Kind.COUNTER else family.name
        if kind is Kind.INFO and not name.endswith("_info"):
            name += "_info"
        spec = self._specs.get(name)
        if spec is None:
            label_names = sorted({k for s in family.samples for k, _ in s.labels if k != "le"})
            spec = MetricSpec(name, kind, family.help or name, _path(name), tuple(label_names))
            self._specs[name] = spec
        return spec

    def samples_of(self, families: tuple[RfcFamily, ...]) -> Iterator[Sample]:
        for family in families:
            if family.name.startswith(_PREFIX + "scrape_duration"):
                continue  # the switch's own page-building time; ovstop reports its own
            spec = self._spec(family)
            if spec.kind is Kind.HISTOGRAM:
                for labels, hist in _histograms(family).items():
                    yield Sample(spec, labels, hist)
                continue
            for s in family.samples:
                yield Sample(spec, s.labels, s.value)

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        client = client_of(sources)
        if not client.has(COMMAND):
            return
        yield from self.samples_of(metrics_show.parse(client.call(COMMAND, "-x")))
