"""Event coverage counters from ``coverage/show``."""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.base import Sources, Tables
from ovstop.collect.unixctl_util import client_of
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.parsers import coverage_show

COVERAGE = MetricSpec("ovs_vswitchd_coverage_total", Kind.COUNTER,
                      "Times an internal event happened, per coverage counter.", ("coverage",), ("counter",))


class CoverageCollector:
    """One series per counter that has fired; OVS does not list counters that never did."""

    name = "coverage"
    source = "unixctl"
    specs = (COVERAGE,)

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        for c in coverage_show.parse(client_of(sources).call("coverage/show")).counters:
            yield Sample(COVERAGE, labels_of(counter=c.name), float(c.total))
