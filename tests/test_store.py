"""MetricStore: rates, counter resets, stale carry-over, histogram intervals; snapshot JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from ovstop.errors import OvstopError
from ovstop.export import snapshot as snapshot_json
from ovstop.model.block import Column, CounterBlock
from ovstop.model.metric import Histogram, Kind, MetricSpec, Sample, labels_of
from ovstop.model.store import MetricStore, Series, SourceHealth, counter_rate

HITS = MetricSpec("ovs_vswitchd_datapath_hit_total", Kind.COUNTER, "hits", ("datapath", "hit"), ("datapath",))
FLOWS = MetricSpec("ovs_vswitchd_datapath_n_flows", Kind.GAUGE, "flows", ("datapath", "n_flows"), ("datapath",))
HIST = MetricSpec("ovs_vswitchd_poll_threads_cycles_per_packet", Kind.HISTOGRAM, "h", ("pmd", "cpp"), ("thread",))
DP = labels_of(datapath="netdev@ovs-netdev")
UP = {"unixctl": SourceHealth("unixctl", True)}
DOWN = {"unixctl": SourceHealth("unixctl", False, "ovs-vswitchd went away")}


def hist(*counts: int) -> Histogram:
    return Histogram((10.0, 100.0, math.inf), counts, total=float(sum(counts) * 5))


def round_of(store: MetricStore, t: float, hits: float, health=UP, extra=()):
    samples = [Sample(HITS, DP, hits), Sample(FLOWS, DP, 7.0), *extra]
    return store.update([("unixctl", samples)] if health is UP else [], t, 1000.0 + t, health)


def test_counter_rate_per_second_and_history() -> None:
    store = MetricStore(history=3)
    first = round_of(store, 0.0, 100)
    assert first.find(HITS.name)[0].rate is None
    assert first.interval is None
    snaps = [round_of(store, t, 100 + 50 * t) for t in (1.0, 2.0, 3.0, 4.0)]
    series = snaps[-1].find(HITS.name)[0]
    assert series.rate == pytest.approx(50.0)
    assert series.history == (50.0, 50.0, 50.0)  # bounded to 3
    assert snaps[-1].interval == pytest.approx(1.0)
    assert snaps[-1].find(FLOWS.name)[0].history == (7.0, 7.0, 7.0)


def test_counter_reset_gives_no_rate_never_negative() -> None:
    store = MetricStore()
    round_of(store, 0.0, 1000)
    after_restart = round_of(store, 1.0, 3)
    assert after_restart.find(HITS.name)[0].rate is None
    resumed = round_of(store, 2.0, 13)
    assert resumed.find(HITS.name)[0].rate == pytest.approx(10.0)
    assert counter_rate(5.0, 4.0, 1.0) is None
    assert counter_rate(None, 4.0, 1.0) is None
    assert counter_rate(4.0, 4.0, 0.0) is None


def test_source_down_keeps_series_as_stale_then_recovers() -> None:
    store = MetricStore()
    round_of(store, 0.0, 10)
    down = round_of(store, 1.0, 0, health=DOWN)
    (series,) = down.find(HITS.name)
    assert series.stale and series.value == 10
    assert down.health["unixctl"].reason == "ovs-vswitchd went away"
    back = round_of(store, 2.0, 20)
    assert not back.find(HITS.name)[0].stale


def test_series_vanishing_from_healthy_source_is_dropped() -> None:
    store = MetricStore()
    round_of(store, 0.0, 10)
    snap = store.update([("unixctl", [Sample(FLOWS, DP, 1.0)])], 1.0, 1001.0, UP)
    assert snap.find(HITS.name) == []


def test_histogram_interval_and_quantiles() -> None:
    store = MetricStore()
    labels = labels_of(thread="pmd 0")
    store.update([("unixctl", [Sample(HIST, labels, hist(1, 2, 0))])], 0.0, 0.0, UP)
    snap = store.update([("unixctl", [Sample(HIST, labels, hist(3, 10, 1))])], 1.0, 1.0, UP)
    series = snap.find(HIST.name)[0]
    assert series.interval_histogram is not None
    assert series.interval_histogram.counts == (2, 8, 1)
    assert series.value.quantile(0.5) == 100.0
    assert series.value.quantile(0.99) == math.inf
    assert series.value.mean() == pytest.approx(5.0)
    reset = store.update([("unixctl", [Sample(HIST, labels, hist(0, 1, 0))])], 2.0, 2.0, UP)
    assert reset.find(HIST.name)[0].interval_histogram is None


def test_histogram_validation() -> None:
    with pytest.raises(ValueError):
        Histogram((1.0, 2.0), (1, 2))
    with pytest.raises(ValueError):
        Histogram((1.0, math.inf), (1,))


def test_snapshot_json_round_trip() -> None:
    store = MetricStore()
    labels = labels_of(thread="pmd 0")
    store.update([("unixctl", [Sample(HIST, labels, hist(1, 2, 0)), Sample(HITS, DP, 5.0)])], 0.0, 0.0, UP)
    snap = store.update(
        [("unixctl", [Sample(HIST, labels, hist(3, 10, 1)), Sample(HITS, DP, 9.0)])],
        1.0,
        1.0,
        UP,
        tables={"bridges": [{"bridge": "br0", "ports": 3}]},  # typed flow rows: tests/test_flows.py
        meta={"ovs_version": "3.1.0"},
    )
    doc = json.loads(json.dumps(snapshot_json.to_dict(snap)))
    assert doc["specs"][HIST.name]["type"] == "histogram"
    back = snapshot_json.from_dict(doc)
    assert back.series == snap.series
    assert back.tables == snap.tables
    assert back.meta["ovs_version"] == "3.1.0"


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"format": "ovstop-snapshot", "version": 99},
        {"format": "ovstop-snapshot", "version": 1, "specs": {}, "series": [{"name": "x"}]},
    ],
)
def test_snapshot_json_rejects_foreign_documents(doc) -> None:
    with pytest.raises(OvstopError):
        snapshot_json.from_dict(doc)


def test_snapshot_write_is_atomic_and_reports_errors(tmp_path) -> None:
    target = tmp_path / "s.json"
    snapshot_json.write({"a": 1}, target)
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    with pytest.raises(OvstopError, match="cannot write snapshot"):
        snapshot_json.write({"a": 1}, tmp_path / "missing-dir" / "s.json")


def test_tree_order_is_the_one_the_collection_layer_hands_in() -> None:
    """The store knows no subsystem: the order comes from ovstop.collect.base.TREE_ORDER (or follows names)."""
    from ovstop.collect.base import TREE_ORDER

    samples = [("unixctl", [Sample(HIST, labels_of(thread="pmd-c0"), hist(1, 0, 0)), Sample(HITS, DP, 1.0)])]
    by_name = MetricStore().update(samples, 0.0, 1000.0, UP)
    assert [s.spec.path[0] for s in by_name.series] == ["datapath", "pmd"]
    told = MetricStore(tree_order=("pmd", "datapath")).update(samples, 0.0, 1000.0, UP)
    assert [s.spec.path[0] for s in told.series] == ["pmd", "datapath"]
    assert TREE_ORDER.index("datapath") < TREE_ORDER.index("interface") < TREE_ORDER.index("ovstop")


def test_old_snapshots_keep_their_history_and_series_are_plain() -> None:
    store = MetricStore(history=2)
    info = MetricSpec("ovs_info", Kind.INFO, "i", ("datapath", "info"))
    snaps = [round_of(store, t, 10 * t, extra=[Sample(info, (), 1.0)]) for t in range(6)]
    assert [s.find(HITS.name)[0].history for s in snaps] == [(), (10.0,), *[(10.0, 10.0)] * 4]
    assert snaps[1].find(HITS.name)[0].history == (10.0,)  # the buffer was cut since: the old view holds
    assert snaps[5].find(info.name)[0].history == ()
    assert snaps[5].find(info.name)[0] is snaps[4].find(info.name)[0]  # nothing new: the same Series
    series = snaps[5].find(HITS.name)[0]
    assert series == Series(HITS, DP, 50, 10.0, None, (10.0, 10.0))
    assert hash(series) == hash(Series(HITS, DP, 50, 10.0, None, (10.0, 10.0)))
    assert dataclasses.replace(series, stale=True).stale and not series.stale


def test_tree_order_follows_series_that_come_and_go() -> None:
    store = MetricStore()
    two = [labels_of(datapath=n) for n in ("b", "c")]
    store.update([("unixctl", [Sample(FLOWS, labels, 1.0) for labels in two])], 0.0, 0.0, UP)
    swapped = [labels_of(datapath=n) for n in ("c", "a")]  # as many series, not the same ones
    snap = store.update([("unixctl", [Sample(FLOWS, labels, 1.0) for labels in swapped])], 1.0, 1.0, UP)
    assert [s.label("datapath") for s in snap.series] == ["a", "c"]
    again = store.update([("unixctl", [Sample(FLOWS, labels, 1.0) for labels in reversed(swapped)])], 2.0, 2.0, UP)
    assert [s.label("datapath") for s in again.series] == ["a", "c"]


def test_lazy_store_drops_a_series_gone_from_a_batch_that_changes_now_and_then() -> None:
    """A lazy store merges the batches that did not change once and mends that merge when a small one joins or
    leaves them: a series the small batch no longer has must go, one it gained must come."""
    store = MetricStore(lazy=True)
    big = [Sample(FLOWS, labels_of(datapath=f"d{i}"), 1.0) for i in range(40)]
    both = [Sample(HITS, labels_of(datapath="a"), 1.0), Sample(HITS, labels_of(datapath="b"), 1.0)]
    one = [Sample(HITS, labels_of(datapath="a"), 2.0)]
    rounds = [both, both, one, one, one, both, both]
    for t, small in enumerate(rounds):
        snap = store.update([("unixctl", big), ("unixctl", small)], float(t), 1000.0 + t, UP)
        hits = {s.label("datapath"): s.value for s in snap.find(HITS.name)}
        assert hits == {dict(s.labels)["datapath"]: s.value for s in small}, f"round {t}"
        assert len(snap.find(FLOWS.name)) == 40


def _reading(snap) -> list[tuple]:
    return [(s.name, s.labels, s.value, s.rate, s.interval_histogram, tuple(s.history), s.stale) for s in snap.series]


def test_lazy_store_reads_as_the_eager_one_round_by_round_and_later() -> None:
    """The lazy store (the exporter's) skips unchanged series and unchanged batches, and folds the counters a
    collector hands in as a :class:`CounterBlock` a column at a time (once it turns lazy); whatever a snapshot
    is read for, at once or rounds later, it must read exactly as the eager store's (which the tests above pin
    down): values, rates, histogram intervals, histories across buffer renewals, stale carry-over, series that
    come and go, resets, gauges that are not numbers."""
    import random

    rng = random.Random(9)
    hits2 = MetricSpec("ovs_c_total", Kind.COUNTER, "c", ("datapath", "c"), ("n",))
    gauge = MetricSpec("ovs_g", Kind.GAUGE, "g", ("datapath", "g"), ("n",))
    info = MetricSpec("ovs_i", Kind.INFO, "i", ("datapath", "i"), ("n",))
    specs = (HITS, hits2, gauge, HIST, info)
    values: dict[tuple, object] = {}
    eager, lazy, columnar = MetricStore(history=5), MetricStore(history=5, lazy=True), MetricStore(history=5)
    stores = (eager, lazy, columnar)
    kept: list[tuple[object, ...]] = []
    counters = (HITS, hits2)
    halves = (counters, (gauge,), (HIST, info))  # three collectors' batches, each the very same while unchanged
    batch: dict[tuple[MetricSpec, ...], list[Sample]] = {half: [] for half in halves}
    block = CounterBlock(())  # the counters as the columnar store is handed them, made with batch[counters]
    layouts: dict[tuple, tuple] = {}  # a column's labels: the very same tuple while the same series
    for t in range(220):
        changed: set[MetricSpec] = set()
        for i in range(6):
            for spec in specs:
                key = (spec, i)
                if key in values and rng.random() > 0.15:
                    continue  # most series stay the same most rounds, some for longer than the history
                changed.add(spec)
                if spec in counters:
                    old = values.get(key, 0.0)
                    values[key] = 0.0 if rng.random() < 0.05 else old + rng.choice((0.0, 1.0, 7.0))  # resets
                elif spec is gauge:
                    values[key] = rng.choice((1.0, 2.0, math.nan, math.inf))
                elif spec is HIST:
                    values[key] = hist(*(rng.randrange(3) + t // 10 for _ in range(3)))
                else:
                    values[key] = 1.0
        if rng.random() < 0.05:
            values.pop(rng.choice(sorted(values, key=lambda k: (k[0].name, k[1]))))  # a series goes away
            changed.update(specs)
        for half in halves:
            if changed & set(half) or rng.random() < 0.3:  # a collector that saw no change hands in the same batch
                batch[half] = [
                    Sample(spec, labels_of(n=str(i)), v)  # type: ignore[arg-type]
                    for (spec, i), v in values.items()
                    if spec in half
                ]
                if half is counters:
                    columns = []
                    for spec in counters:
                        mine = [s for s in batch[half] if s.spec is spec]
                        labels = tuple(s.labels for s in mine)
                        columns.append(Column(spec, layouts.setdefault(labels, labels), [s.value for s in mine]))
                    block = CounterBlock(columns)
        columnar.lazy = t >= 3  # eager first, as the exporter's first round is: its columns take the series over
        health = DOWN if 40 <= t % 50 < 44 else UP
        batches = [("unixctl", batch[half]) for half in halves] if health is UP else []
        blocks = [("unixctl", block if half is counters else batch[half]) for half in halves] if health is UP else []
        snaps = [
            store.update(blocks if store is columnar else batches, float(t), 1000.0 + t, health, derive=_derived)
            for store in stores
        ]
        for snap in snaps[1:]:
            assert _reading(snap) == _reading(snaps[0]), f"round {t}"
            assert snap.find(HITS.name, n="1") == snaps[0].find(HITS.name, n="1")
            read = [[(s.name, s.labels, s.value, s.stale) for s in one.value_series] for one in (snap, snaps[0])]
            assert read[0] == read[1]  # what the exporter's page and recordings read, without making the rest
        in_order = [(s.spec.path, s.name, s.labels) for s in snaps[0].series]
        assert in_order == sorted(in_order)  # kept in tree order as series come and go, without sorting anew
        if t % 7 == 0:
            kept.append(tuple(snaps))
    for old_eager, *old_lazy in kept:  # read only now, after the stores moved on
        for old in old_lazy:
            assert _reading(old) == _reading(old_eager)
    assert sum(1 for s in columnar.update(blocks, 999.0, 1999.0, UP).series if s.name in (HITS.name, hits2.name)) > 6


def _derived(snap):
    """A derived series from the round's series, as the health checks make them."""
    total = sum(s.value for s in snap.find(HITS.name) if not s.stale)
    return [Sample(FLOWS, DP, float(total))], {}
