"""metrics/show (OVS metrics RFC builds) as a source.

No RFC build runs here, so the switch is stood in for by a client replaying synthesized output
(tests/data/unixctl/synth-rfc, see its README); everything downstream is the real sampler and exporter.
"""

from __future__ import annotations

import math
from pathlib import Path

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ovstop.collect.base import Sources, Tables
from ovstop.collect.rfc import RfcMetricsCollector
from ovstop.collect.sampler import Sampler
from ovstop.export.prometheus import render
from ovstop.model.metric import Histogram, Kind, MetricSpec, Sample, labels_of

TEXT = (Path(__file__).parent / "data/unixctl/synth-rfc/metrics-show.txt").read_text()


class ReplayedRfcSwitch:
    """Answers ``metrics/show`` with the synthesized page; nothing else."""

    version = "4.0.90"
    connected_path = "replayed"
    commands = frozenset({"metrics/show"})
    output_format, format_reason, formats = "text", "a replayed page", {"metrics/show": "text"}

    def has(self, command: str) -> bool:
        return command in self.commands

    def call(self, command: str, *args: str) -> str:
        assert command == "metrics/show" and args == ("-x",)
        return TEXT


class ClassicHits:
    """A classic collector that derives the same metric the RFC page has."""

    name = "classic"
    source = "unixctl"
    spec = MetricSpec("ovs_vswitchd_datapath_hit_total", Kind.COUNTER, "hits", ("datapath", "hit"), ("datapath",))
    specs = (spec,)

    def collect(self, sources: Sources, tables: Tables):
        yield Sample(self.spec, labels_of(datapath="netdev@ovs-netdev"), 1.0)


def test_rfc_families_become_samples() -> None:
    samples = {s.spec.name: s for s in RfcMetricsCollector().collect(Sources(unixctl=ReplayedRfcSwitch()), Tables())}
    assert samples["ovs_vswitchd_datapath_hit_total"].value == 1200
    assert samples["ovs_vswitchd_datapath_hit_total"].spec.kind is Kind.COUNTER
    assert samples["ovs_vswitchd_datapath_hit_total"].spec.path == ("datapath", "hit")
    assert samples["ovs_vswitchd_datapath_n_flows"].value == 17
    hist = samples["ovs_vswitchd_hw_offload_latency"].value
    assert isinstance(hist, Histogram)
    assert hist.bounds == (1.0, 10.0, math.inf) and hist.counts == (3, 4, 2) and hist.total == 55
    assert "ovs_vswitchd_scrape_duration_seconds" not in samples


def test_rfc_series_win_over_classic_ones_and_export_cleanly() -> None:
    sampler = Sampler(Sources(unixctl=ReplayedRfcSwitch()), [RfcMetricsCollector(), ClassicHits()])
    snap = sampler.sample()
    hits = snap.find("ovs_vswitchd_datapath_hit_total")
    assert [(dict(s.labels), s.value) for s in hits] == [({"datapath": "ovs-netdev"}, 1200.0)]
    text = render(snap, generate_latest).decode()
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert parsed["ovs_vswitchd_hw_offload_latency"].type == "histogram"
    assert parsed["ovs_vswitchd_datapath_hit"].samples[0].value == 1200


def test_switch_without_rfc_gives_nothing() -> None:
    class Classic(ReplayedRfcSwitch):
        commands = frozenset()

    assert list(RfcMetricsCollector().collect(Sources(unixctl=Classic()), Tables())) == []
