"""The drops view against a real sandbox (its OpenFlow rules drop 10.99.0.0/16), with the truth from
``ovs-appctl coverage/read-counter``; ranking and naming on samples through the real store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from textual.widgets import DataTable, Static

from ovstop import drops
from ovstop.collect import datapath
from ovstop.collect.coverage import COVERAGE
from ovstop.export import prometheus
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.model.store import MetricStore
from ovstop.runtime import Options, Runtime, open_runtime
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator
from ovstop.tui.app import OvstopApp
from ovstop.tui.drops_pane import DropsPane
from ovstop.tui.feed import LiveFeed


@pytest.fixture
def live(fresh_sandbox: SandboxSwitch) -> Iterator[tuple[SandboxSwitch, Runtime]]:
    traffic = TrafficGenerator(fresh_sandbox, rate_pps=300)
    traffic.start()
    rt = open_runtime(Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False))
    try:
        yield fresh_sandbox, rt
    finally:
        rt.close()
        traffic.stop()


def read_counter(sw: SandboxSwitch, name: str) -> int:
    return int(sw.appctl("coverage/read-counter", name).strip())


def test_pipeline_drops_are_ranked_named_and_exported(live: tuple[SandboxSwitch, Runtime]) -> None:
    sw, rt = live
    deadline = time.monotonic() + 20
    while True:
        before = read_counter(sw, "drop_action_of_pipeline")
        snap = rt.sampler.sample()
        after = read_counter(sw, "drop_action_of_pipeline")
        row = next((d for d in drops.collect(snap) if d.what == "of_pipeline"), None)
        if row is not None and row.rate:
            break
        assert time.monotonic() < deadline, "no pipeline drop rate in time"
        time.sleep(0.3)
    assert before <= row.total <= after and row.rate > 0
    assert row.where == "switch" and row.origin == "coverage/show drop_action_of_pipeline"
    assert drops.dropping(drops.collect(snap))[0] == row  # the only thing dropping here ranks first
    page = prometheus.render(snap, generate_latest, 0.0).decode()
    [exported] = [
        s
        for f in text_string_to_metric_families(page)
        if f.name == "ovs_vswitchd_drop_action"
        for s in f.samples
        if s.labels == {"reason": "of_pipeline"}
    ]
    assert before <= exported.value <= after


def test_drops_pane_on_a_live_sandbox(live: tuple[SandboxSwitch, Runtime]) -> None:
    sw, rt = live
    app = OvstopApp(LiveFeed(rt.sampler, 0.3))

    async def run() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            await pilot.press("6")
            pane = app.query_one(DropsPane)
            assert pane.display and not app.pane(1).display
            table = pane.query_one("#drops-table", DataTable)
            end = time.monotonic() + 20
            while not any("of_pipeline" in str(c) for r in table.rows for c in table.get_row(r)):
                assert time.monotonic() < end, "the pipeline drop row never showed"
                await asyncio.sleep(0.05)
            cells = [str(c) for c in table.get_row(next(iter(table.rows)))]
            assert cells[3:] == ["of_pipeline", "switch", "coverage/show drop_action_of_pipeline"]
            assert int(cells[2]) <= read_counter(sw, "drop_action_of_pipeline")
            note = str(pane.query_one("#drops-kernel", Static).render())
            assert "not captured" in note and "skb:kfree_skb" in note
            await pilot.press("slash", *"p1", "enter")  # the filter applies: no drop row names p1
            assert table.row_count == 0
            app.feed.stop()  # no round may land while the app shuts down

    asyncio.run(run())


def test_ranking_by_rate_then_total_with_each_source_named() -> None:
    store = MetricStore()
    rx = MetricSpec(
        "ovs_vswitchd_interface_rx_dropped_total", Kind.COUNTER, "", ("interface",), ("bridge", "interface")
    )
    p1, p2 = labels_of(bridge="br0", interface="p1"), labels_of(bridge="br0", interface="p2")
    dp = labels_of(datapath="system@ovs-system")
    rounds = [
        [
            Sample(rx, p1, 10.0),
            Sample(rx, p2, 500.0),
            Sample(datapath.LOST, dp, 0.0),
            Sample(COVERAGE, labels_of(counter="datapath_drop_meter"), 3.0),
        ],
        [
            Sample(rx, p1, 40.0),
            Sample(rx, p2, 500.0),
            Sample(datapath.LOST, dp, 0.0),
            Sample(COVERAGE, labels_of(counter="datapath_drop_meter"), 8.0),
        ],
    ]
    for i, samples in enumerate(rounds):
        snap = store.update([("x", s) for s in samples], float(i), float(i), {})
    found = drops.collect(snap)
    assert [(d.what, d.where, d.rate, d.total) for d in found] == [
        ("rx dropped", "br0/p1", 30.0, 40.0),
        ("meter", "switch", 5.0, 8.0),
        ("rx dropped", "br0/p2", 0.0, 500.0),
        ("lost upcalls", "system@ovs-system", 0.0, 0.0),
    ]
    assert found[1].origin == "coverage/show datapath_drop_meter"
    assert found[0].origin == "OVSDB Interface statistics:rx_dropped"
    assert [d.what for d in drops.dropping(found)] == ["rx dropped", "meter", "rx dropped"]
