"""The drops view against a real sandbox (its OpenFlow rules drop 10.99.0.0/16), with the truth from
``ovs-appctl coverage/read-counter``; ranking and naming on samples through the real store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
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
from ovstop.model.store import MetricStore, Snapshot, SourceHealth
from ovstop.runtime import Options, Runtime, open_runtime, running
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator
from ovstop.tui.app import OvstopApp
from ovstop.tui.drops_pane import DropsPane, kernel_note
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
    page = prometheus.render(snap, generate_latest).decode()
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
        snap = store.update([("x", samples)], float(i), float(i), {})
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


def interface_statistics(sw: SandboxSwitch, bridge: str) -> dict[str, dict[str, int]]:
    """``ovs-vsctl``'s Interface statistics of every interface on ``bridge``, by interface name."""
    names = sw.vsctl("list-ifaces", bridge).split()
    out: dict[str, dict[str, int]] = {}
    for name in names:
        listed = json.loads(sw.vsctl("--format=json", "--columns=statistics", "list", "Interface", name))
        out[name] = {key: int(value) for key, value in listed["data"][0][0][1]}
    return out


def bridge_sums(sw: SandboxSwitch) -> tuple[dict[tuple[str, str], int], dict[str, dict[str, dict[str, int]]]]:
    """(bridge, counter) -> the sum over the bridge's interfaces that report the counter (pairs that no
    interface reports are left out), and the statistics they were summed from, all read with ovs-vsctl."""
    truth = {br: interface_statistics(sw, br) for br in ("br0", "br1")}
    sums = {
        (br, key): sum(s[key] for s in truth[br].values() if key in s)
        for br in truth
        for key in ("rx_packets", "tx_packets", "rx_dropped", "tx_dropped")
        if any(key in s for s in truth[br].values())
    }
    return sums, truth


def exported_bridge_sums(snap: Snapshot) -> dict[tuple[str, str], float]:
    """The same pairs as ovstop exports them on /metrics (rendered and read back with prometheus-client)."""
    page = prometheus.render(snap, generate_latest).decode()
    return {
        (s.labels["bridge"], key): s.value
        for f in text_string_to_metric_families(page)
        for s in f.samples
        for key in ("rx_packets", "tx_packets", "rx_dropped", "tx_dropped")
        if s.name == f"ovs_vswitchd_bridge_{key}_total"
    }


def agreed(rt: Runtime, sw: SandboxSwitch) -> tuple[Snapshot, dict[tuple[str, str], int]]:
    """Rounds until ovstop's OVSDB replica has caught up with what ovs-vsctl reads (a deadline, not a sleep)."""
    deadline = time.monotonic() + 60
    while True:
        sums, _ = bridge_sums(sw)
        snap = rt.sampler.sample()
        if exported_bridge_sums(snap) == sums or time.monotonic() > deadline:
            return snap, sums
        time.sleep(0.1)


def test_bridge_drop_sums_exist_only_where_an_interface_reports_drops(fresh_sandbox: SandboxSwitch) -> None:
    """The sandbox's dummy ports report no drop counters (ovs-vsctl shows none): the bridges' drop sums are
    absent, not 0. Then one interface reports drops in the real OVSDB, written there with ovs-vsctl while
    ovs-vswitchd is stopped (its statistics update would overwrite them; dummy drivers have none to
    report): that bridge's sums are the reported values, the other bridge still has none."""
    sw = fresh_sandbox
    options = Options(unixctl=str(sw.unixctl_path), db=sw.db_remote, ebpf=False, timeout=0.5)
    with running(options) as rt:
        _, truth = bridge_sums(sw)
        assert not [name for br in truth.values() for name, s in br.items() if {"rx_dropped", "tx_dropped"} & set(s)]
        snap, sums = agreed(rt, sw)
        assert exported_bridge_sums(snap) == sums
        assert {key for _, key in sums} == {"rx_packets", "tx_packets"}
        assert {row["bridge"]: row["rx_dropped"] for row in snap.tables["bridges"]} == {"br0": None, "br1": None}
        pid = int((sw.dir / "ovs-vswitchd.pid").read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            sw.vsctl("--no-wait", "set", "Interface", "d1", "statistics:rx_dropped=7", "statistics:tx_dropped=3")
            snap, sums = agreed(rt, sw)
        finally:
            os.kill(pid, signal.SIGCONT)
    assert sums[("br1", "rx_dropped")] == 7 and sums[("br1", "tx_dropped")] == 3  # what ovs-vsctl reads back
    assert exported_bridge_sums(snap) == sums
    assert ("br0", "rx_dropped") not in sums and ("br0", "tx_dropped") not in sums
    assert {row["bridge"]: row["rx_dropped"] for row in snap.tables["bridges"]} == {"br0": None, "br1": 7.0}


def test_kernel_note_says_counted_or_why_not() -> None:
    """The pane's kernel line: capture's own word (the collector's kernel_drops row) before the eBPF health."""

    def note(tables: dict[str, list[dict[str, object]]], ebpf: SourceHealth | None = None) -> str:
        health = {"ebpf": ebpf} if ebpf is not None else {}
        return kernel_note(Snapshot(1, 0.0, 1.0, (), health, tables))

    off = {"kernel_drops": [{"counted": False, "reason": "this kernel has no openvswitch drop reasons (Linux 6.4+)"}]}
    assert note(off) == (
        "kernel drop reasons (skb:kfree_skb): not captured (this kernel has no openvswitch drop reasons (Linux 6.4+))"
    )
    assert note({"kernel_drops": [{"counted": True, "reason": ""}]}).endswith("counted, none so far")
    down = SourceHealth("ebpf", False, "eBPF needs root")
    assert note({}, down) == "kernel drop reasons (skb:kfree_skb): not captured (eBPF needs root)"
