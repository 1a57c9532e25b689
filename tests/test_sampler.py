"""The sampler's isolation of collectors, with collectors written for it (the failure they stand for, a parse
error on a second datapath part-way through a generator, is what the real flows collector raises on a reply
it cannot decode): what a collector yielded before it failed is exported and its source says why it is
degraded; a metric name belongs to the collector that produced it first, whether that collector hands in a
list or yields its samples."""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.base import Parts, Sources, Tables
from ovstop.collect.sampler import Sampler
from ovstop.errors import ParseError
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of

FLOWS = MetricSpec("t_flows", Kind.GAUGE, "Flows.", ("datapath", "flows"), ("dp",))
HITS = MetricSpec("t_hits_total", Kind.COUNTER, "Hits.", ("datapath", "hits"), ("dp",))


class HalfDone:
    """Yields the first datapath's flows, then fails on the second's."""

    name = "half_done"
    source = "unixctl"
    specs = (FLOWS,)

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        yield Sample(FLOWS, labels_of(dp="system"), 12.0)
        raise ParseError("dpctl/dump-flows: cannot decode flow on netdev@ovs-netdev")


class Lister:
    """Hands in a list: flows (already HalfDone's) and hits."""

    name = "lister"
    source = "unixctl"
    specs = (FLOWS, HITS)

    def collect(self, sources: Sources, tables: Tables) -> list[Sample]:
        return [Sample(FLOWS, labels_of(dp="netdev"), 3.0), Sample(HITS, labels_of(dp="netdev"), 7.0)]


def test_what_a_collector_yielded_before_it_failed_is_kept_and_names_stay_with_their_first_collector() -> None:
    sampler = Sampler(Sources(), [HalfDone(), Lister()])
    for _ in range(2):  # the second round hands the lister's batch in again
        snap = sampler.sample()
        got = [(s.name, dict(s.labels), s.value) for s in snap.series if s.name.startswith("t_")]
        assert got == [("t_flows", {"dp": "system"}, 12.0), ("t_hits_total", {"dp": "netdev"}, 7.0)]
        health = snap.health["unixctl"]
        assert health.up and health.reason == "dpctl/dump-flows: cannot decode flow on netdev@ovs-netdev"


class TwoLists:
    """Hands in two lists, the second with a series the first has too."""

    name = "two_lists"
    source = "unixctl"
    specs = (FLOWS, HITS)

    def collect(self, sources: Sources, tables: Tables) -> Parts:
        return Parts(([Sample(FLOWS, labels_of(dp="a"), 1.0)], [Sample(FLOWS, labels_of(dp="a"), 2.0)]))


def test_a_name_stays_with_the_first_of_a_collectors_lists() -> None:
    """A series is in one batch of a round (the store merges its unchanged batches on that ground)."""
    sampler = Sampler(Sources(), [TwoLists()])
    sampler.store.lazy = True
    for _ in range(3):
        snap = sampler.sample()
        assert [(s.name, s.value) for s in snap.series if s.name.startswith("t_")] == [("t_flows", 1.0)]
