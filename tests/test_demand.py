"""Demand-driven collection, checked against what ovs-vswitchd logs it was asked (tests/switch_log.py).

/metrics exports no per-flow series, so ``--headless`` never sends ``dpctl/dump-flows`` while its flow
counts still equal ``ovs-appctl dpctl/show``; ``snapshot`` (everything) does dump flows; the TUI dumps
flows only while a pane that shows them is visible.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time

import pytest
from switch_log import RequestLog
from test_headless import OVSTOP, headless, ovstop_env, pick, samples, scrape, settle
from test_tui_pilot import SMALL, _until

from ovstop.collect.demand import METRICS, Demand
from ovstop.runtime import Options, open_runtime
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator
from ovstop.tui import metrics_pane
from ovstop.tui.app import OvstopApp
from ovstop.tui.feed import LiveFeed
from ovstop.tui.header import HeaderBar
from ovstop.tui.metrics_pane import FOLDED_NOTE, MetricsPane

DUMP = "dpctl/dump-flows"


def _wait_requests(log: RequestLog, command: str, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while log.counts()[command] < n:
        assert time.monotonic() < deadline, f"fewer than {n} {command} requests logged: {log.counts()}"
        time.sleep(0.1)


def test_demand_union_is_what_either_side_wants() -> None:
    pane = Demand.of("pmd", "flows")
    assert not METRICS.wants("flows") and METRICS.wants("pmd")
    assert (METRICS | pane).wants("flows") and (pane | METRICS).wants("interface")
    assert (METRICS | Demand.of("pmd")) == METRICS
    assert (Demand.of("a") | Demand.of("b")) == Demand.of("a", "b")


def test_headless_never_dumps_flows_yet_counts_equal_ovs_appctl(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    TrafficGenerator(sw, seed=3).inject(25, repeats=3)

    def dpctl_show() -> tuple[int, int]:
        text = sw.appctl("dpctl/show")
        flows = re.search(r"^\s*flows: (\d+)$", text, re.M)
        hit = re.search(r"lookups: hit:(\d+)", text)
        assert flows and hit, text
        return int(flows.group(1)), int(hit.group(1))

    flows, hit = settle(dpctl_show)
    assert flows >= 25
    log = RequestLog(sw)
    with headless(sw) as url:
        scrape(url)
        _wait_requests(log, "dpctl/show", 4)  # several rounds: the start, scrapes and the refresh loop
        text = scrape(url)[1]
        asked = log.counts()
    assert asked[DUMP] == 0, asked
    values = samples(text)
    dp = {"datapath": "netdev@ovs-netdev"}
    assert pick(values, "ovs_vswitchd_datapath_n_flows", **dp) == [flows]
    assert pick(values, "ovs_vswitchd_datapath_hit_total", **dp) == [hit]
    assert not pick(values, "ovs_vswitchd_datapath_flows_dumped")

    # The same switch, the same log: a snapshot needs everything, so the flow dump does show up here.
    log.mark()
    out = subprocess.run(
        [*OVSTOP, "snapshot", "--db", sw.db_remote, "--no-ebpf", "-d", "0.2"],
        env=ovstop_env(sw),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert log.counts()[DUMP] >= 1


def test_tui_dumps_flows_only_while_a_flow_pane_is_shown(sandbox: SandboxSwitch) -> None:
    traffic = TrafficGenerator(sandbox, rate_pps=200)
    traffic.start()
    rt = open_runtime(Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False))
    log = RequestLog(sandbox)
    feed = LiveFeed(rt.sampler, 0.25)
    app = OvstopApp(feed)

    async def run() -> None:
        async with app.run_test(size=SMALL) as pilot:  # one pane at a time: the metrics tree first
            await _until(pilot, lambda: app.snapshots_received >= 2)
            log.mark()
            seen = app.snapshots_received
            await _until(pilot, lambda: app.snapshots_received >= seen + 3 and log.counts()["dpctl/show"] >= 3)
            assert log.counts()[DUMP] == 0 and "dp_flows" not in app.latest.tables  # type: ignore[union-attr]
            await pilot.press("4")
            await _until(pilot, lambda: bool(app.shown and app.shown.tables.get("dp_flows")))
            assert log.counts()[DUMP] >= 1
            await pilot.press("d")  # per-packet hooks: greyed out with the reason where capture cannot run
            assert not app.deep and "ovstop cpu" in str(app.query_one(HeaderBar).render())
            await pilot.press("2")
            await _until(pilot, lambda: bool(app.latest and "dp_flows" not in app.latest.tables))
            log.mark()
            seen = app.snapshots_received
            await _until(pilot, lambda: app.snapshots_received >= seen + 3)
            assert log.counts()[DUMP] == 0

    try:
        asyncio.run(run())
    finally:
        rt.close()
        traffic.stop()


def test_tui_collects_interfaces_only_while_their_branch_is_open(
    sandbox: SandboxSwitch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folded interface branch (folded as on a switch above OPEN_UP_TO ports): no per-interface series
    while it is closed, and once opened the same numbers ``ovs-vsctl`` reads (OpenFlow port numbers: they stay
    put while compared)."""
    monkeypatch.setattr(metrics_pane, "OPEN_UP_TO", 0)
    rt = open_runtime(Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False))
    app = OvstopApp(LiveFeed(rt.sampler, 0.25))

    async def run() -> None:
        async with app.run_test(size=SMALL) as pilot:  # the metrics tree alone
            await _until(pilot, lambda: app.snapshots_received >= 3)
            assert app.latest is not None and not app.latest.find(OF_PORT)
            pane = app.query_one(MetricsPane)
            folded = pane.metrics_tree.root.children[-1]
            assert str(folded.label) == f"interface{FOLDED_NOTE}"
            assert app.latest.find("ovs_vswitchd_bridge_n_ports")  # the rest of the tree is collected
            folded.expand()
            await _until(pilot, lambda: bool(app.shown and app.shown.find(OF_PORT)))
            assert of_ports(app) == vsctl_of_ports(sandbox)
            assert str(folded.label) == "interface"
            folded.collapse()
            seen = app.snapshots_received
            await _until(pilot, lambda: app.snapshots_received >= seen + 2 and not app.latest.find(OF_PORT))  # type: ignore[union-attr]

    try:
        asyncio.run(run())
    finally:
        rt.close()


def test_small_switch_opens_the_interface_branch_until_the_user_closes_it(sandbox: SandboxSwitch) -> None:
    """On the sandbox's few ports (``ovs-vsctl list-ports`` counts them) the branch opens by itself and its
    series are collected; closed by the user, it stays closed round after round."""
    ports = sum(len(sandbox.vsctl("list-ports", br).split()) for br in sandbox.vsctl("list-br").split())
    assert ports <= metrics_pane.OPEN_UP_TO
    rt = open_runtime(Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False))
    app = OvstopApp(LiveFeed(rt.sampler, 0.25))

    async def run() -> None:
        async with app.run_test(size=SMALL) as pilot:
            await _until(pilot, lambda: bool(app.shown and app.shown.find(OF_PORT)))
            assert of_ports(app) == vsctl_of_ports(sandbox)
            folded = app.query_one(MetricsPane).metrics_tree.root.children[-1]
            assert folded.is_expanded
            await pilot.pause()
            folded.collapse()
            seen = app.snapshots_received
            await _until(pilot, lambda: app.snapshots_received >= seen + 4 and not app.latest.find(OF_PORT))  # type: ignore[union-attr]
            assert not folded.is_expanded

    try:
        asyncio.run(run())
    finally:
        rt.close()


OF_PORT = "ovs_vswitchd_interface_of_port"


def of_ports(app: OvstopApp) -> dict[str, float | None]:
    assert app.shown is not None
    return {s.label("interface"): s.value for s in app.shown.find(OF_PORT)}  # type: ignore[misc]


def vsctl_of_ports(sw: SandboxSwitch) -> dict[str, float]:
    names = sw.vsctl("--bare", "--columns=name", "list", "Interface").split()
    return {n: float(sw.vsctl("get", "Interface", n, "ofport")) for n in names}
