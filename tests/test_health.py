"""Health checks: each provoked for real on a sandbox switch where the sandbox can (flow limit, tunnel down,
conntrack full, OVSDB gone; OVN in tests/test_ovn.py), with the truth read from ovs-appctl/ovs-vsctl; the
rest on recorded outputs or on samples fed through the real store (labelled where synthetic)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ovstop import health
from ovstop.collect import datapath, pmd
from ovstop.export import prometheus
from ovstop.export import snapshot as snapshot_doc
from ovstop.model.metric import Sample, labels_of
from ovstop.model.store import MetricStore, Snapshot, SourceHealth
from ovstop.parsers import pmd_rxq_show
from ovstop.runtime import Options, Runtime, open_runtime
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator

DATA = Path(__file__).parent / "data" / "unixctl" / "ovs-3.1"


@pytest.fixture
def live(fresh_sandbox: SandboxSwitch) -> Iterator[tuple[SandboxSwitch, Runtime]]:
    rt = open_runtime(Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False))
    try:
        yield fresh_sandbox, rt
    finally:
        rt.close()


def verdict(snap: Snapshot, check: str) -> dict:
    return next(r for r in snap.tables[health.TABLE] if r["check"] == check)


def sample_until(rt: Runtime, check: str, state: str, deadline: float = 20.0) -> Snapshot:
    end = time.monotonic() + deadline
    while True:
        snap = rt.sampler.sample()
        if verdict(snap, check)["state"] == state or time.monotonic() > end:
            return snap
        time.sleep(0.2)


def wait_for(predicate: Callable[[], bool], deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.1)


def exported(snap: Snapshot) -> dict[str, float]:
    """ovstop_health as /metrics serves it, read back with prometheus-client's parser."""
    page = prometheus.render(snap, generate_latest).decode()
    return {
        s.labels["check"]: s.value
        for f in text_string_to_metric_families(page)
        if f.name == "ovstop_health"
        for s in f.samples
    }


def test_flow_limit_near_and_hit_fire_when_the_limit_is_set_low(live: tuple[SandboxSwitch, Runtime]) -> None:
    sw, rt = live
    traffic = TrafficGenerator(sw, rate_pps=100)
    traffic.start()
    try:
        sample_until(rt, "flow_limit_hit", health.OK)
        snap = sample_until(rt, "flow_limit_near", health.OK)
        current, limit = map(int, re.search(r"current (\d+)\).*\(limit (\d+)\)", sw.appctl("upcall/show")).groups())
        assert current < 0.9 * limit and verdict(snap, "flow_limit_near")["state"] == health.OK
        sw.vsctl("set", "Open_vSwitch", ".", "other_config:flow-limit=10")
        traffic.inject(60)
        snap = sample_until(rt, "flow_limit_hit", health.FAIL)
        assert int(sw.appctl("coverage/read-counter", "upcall_flow_limit_hit")) > 0
        assert verdict(snap, "flow_limit_hit")["state"] == health.FAIL
        snap = sample_until(rt, "flow_limit_near", health.FAIL)
        current, limit = map(int, re.search(r"current (\d+)\).*\(limit (\d+)\)", sw.appctl("upcall/show")).groups())
        assert limit <= 10
        assert verdict(snap, "flow_limit_near")["state"] == health.FAIL
        assert f"/{limit}" in verdict(snap, "flow_limit_near")["seen"]
        assert exported(snap)["flow_limit_near"] == 0.0
    finally:
        traffic.stop()


def test_tunnel_down_when_bfd_has_no_peer_and_back(live: tuple[SandboxSwitch, Runtime]) -> None:
    sw, rt = live
    snap = sample_until(rt, "tunnel_down", health.OK)
    assert sw.vsctl("get", "Interface", "geneve0", "link_state").strip() == "up"
    sw.vsctl("set", "Interface", "geneve0", "bfd:enable=true")
    wait_for(lambda: "state=down" in sw.vsctl("get", "Interface", "geneve0", "bfd_status").replace('"', ""))
    snap = sample_until(rt, "tunnel_down", health.FAIL)
    row = verdict(snap, "tunnel_down")
    assert row["state"] == health.FAIL and "geneve0" in row["seen"] and "vxlan0" not in row["seen"]
    assert exported(snap)["tunnel_down"] == 0.0
    doc = snapshot_doc.to_dict(snap)
    assert any(r["check"] == "tunnel_down" and r["state"] == "fail" for r in doc["tables"][health.TABLE])
    series = next(s for s in doc["series"] if s["name"] == "ovstop_health" and s["labels"] == {"check": "tunnel_down"})
    assert series["value"] == 0.0
    sw.vsctl("remove", "Interface", "geneve0", "bfd", "enable")
    assert verdict(sample_until(rt, "tunnel_down", health.OK), "tunnel_down")["state"] == health.OK


def test_conntrack_near_max_when_the_limit_is_lowered(live: tuple[SandboxSwitch, Runtime]) -> None:
    sw, rt = live
    traffic = TrafficGenerator(sw, rate_pps=100)
    traffic.start()
    try:
        wait_for(lambda: int(sw.appctl("dpctl/ct-get-nconns").strip()) > 0)
        snap = sample_until(rt, "conntrack_near_max", health.OK)
        assert verdict(snap, "conntrack_near_max")["state"] == health.OK
        n = int(sw.appctl("dpctl/ct-get-nconns").strip())
        sw.appctl("dpctl/ct-set-maxconns", str(n))
        assert int(sw.appctl("dpctl/ct-get-maxconns").strip()) == n
        snap = sample_until(rt, "conntrack_near_max", health.FAIL)
        assert verdict(snap, "conntrack_near_max")["state"] == health.FAIL
    finally:
        traffic.stop()


def test_ovsdb_gone_fails_its_check(live: tuple[SandboxSwitch, Runtime]) -> None:
    sw, rt = live
    assert verdict(sample_until(rt, "ovsdb_connection", health.OK), "ovsdb_connection")["state"] == health.OK
    assert sw._ovsdb is not None
    os.kill(sw._ovsdb.pid, signal.SIGTERM)
    wait_for(
        lambda: (
            subprocess.run(
                ["ovs-vsctl", f"--db={sw.db_remote}", "--timeout=1", "show"], capture_output=True, check=False
            ).returncode
            != 0
        )
    )
    snap = sample_until(rt, "ovsdb_connection", health.FAIL)
    assert verdict(snap, "ovsdb_connection")["state"] == health.FAIL
    assert exported(snap)["ovsdb_connection"] == 0.0


# -- recorded outputs and samples through the real store ---------------------------------------------------


def rounds(
    *per_round: list[Sample], sources: dict[str, SourceHealth] | None = None, tables: dict | None = None
) -> Snapshot:
    """Snapshots one second apart through MetricStore (so rates and history are the store's own)."""
    store = MetricStore()
    snap = None
    for i, samples in enumerate(per_round):
        snap = store.update(
            [("unixctl", samples)], float(i), 1000.0 + i, sources or {}, tables or {}, derive=health.derive
        )
    assert snap is not None
    return snap


def test_verdicts_are_exported_and_unknown_is_a_gap() -> None:
    lost = labels_of(datapath="netdev@ovs-netdev")
    snap = rounds([Sample(datapath.LOST, lost, 5.0)])
    assert verdict(snap, "lost_upcalls")["state"] == health.UNKNOWN  # one round: no rate to judge
    assert "lost_upcalls" not in exported(snap)
    snap = rounds(
        [Sample(datapath.LOST, lost, 5.0)], [Sample(datapath.LOST, lost, 5.0)], [Sample(datapath.LOST, lost, 8.0)]
    )
    assert verdict(snap, "lost_upcalls")["state"] == health.FAIL
    assert verdict(snap, "lost_upcalls")["seen"] == "netdev@ovs-netdev 3/s"
    assert exported(snap)["lost_upcalls"] == 0.0
    assert snap.find("ovstop_health", check="lost_upcalls")[0].history == (1.0, 0.0)


def _pmd(busy: float, idle: float) -> list[Sample]:
    labels = labels_of(datapath="netdev@ovs-netdev", thread="pmd-c1", numa=0, core=1)
    return [Sample(pmd.COUNTERS["busy_cycles"], labels, busy), Sample(pmd.COUNTERS["idle_cycles"], labels, idle)]


@pytest.mark.parametrize(("busy", "state"), [(94, health.OK), (96, health.FAIL)])
def test_pmd_busy_threshold(busy: int, state: str) -> None:
    """Synthetic cycle counters (the dummy datapath cannot load a PMD to 95% reliably on a shared host)."""
    snap = rounds(_pmd(1000, 1000), _pmd(1000 + busy * 10, 1000 + (100 - busy) * 10))
    assert verdict(snap, "pmd_busy")["state"] == state
    assert f"pmd-c1 {busy}%" in verdict(snap, "pmd_busy")["seen"]


def test_rxq_usage_parsed_from_a_recorded_sandbox_and_judged() -> None:
    queues = pmd_rxq_show.parse((DATA / "pmd-rxq-show.txt").read_text())
    assert [(q.thread.label, q.port, q.queue, q.usage) for q in queues] == [
        ("pmd-c0", "p1", 0, 0.0),
        ("pmd-c0", "p4", 0, 0.0),
        ("pmd-c1", "p2", 0, 0.0),
        ("pmd-c1", "p3", 0, 0.0),
    ]
    not_yet = pmd_rxq_show.parse(
        "pmd thread numa_id 0 core_id 0:\n  isolated : false\n"
        "  port: p2                queue-id:  0 (enabled)   pmd usage: NOT AVAIL\n"
    )
    assert not_yet[0].usage is None
    labels = labels_of(datapath="netdev@ovs-netdev", thread="pmd-c0", numa=0, core=0, port="p1", queue=0)
    assert verdict(rounds([Sample(pmd.RXQ_USAGE, labels, 0.5)]), "pmd_rxq_overloaded")["state"] == health.OK
    assert verdict(rounds([Sample(pmd.RXQ_USAGE, labels, 0.97)]), "pmd_rxq_overloaded")["state"] == health.FAIL


def test_long_poll_interval_reads_the_recorded_coverage_counter() -> None:
    """From recorded coverage/show: long_poll_interval absent (never fired) is healthy; moving is not."""
    from ovstop.collect.coverage import COVERAGE
    from ovstop.parsers import coverage_show

    counters = coverage_show.parse((DATA / "coverage-show.txt").read_text()).counters
    recorded = [Sample(COVERAGE, labels_of(counter=c.name), float(c.total)) for c in counters]
    assert not any(c.name == "long_poll_interval" for c in counters)
    assert verdict(rounds(recorded, recorded), "long_poll_interval")["state"] == health.OK
    lp = labels_of(counter="long_poll_interval")
    snap = rounds([*recorded, Sample(COVERAGE, lp, 1.0)], [*recorded, Sample(COVERAGE, lp, 2.0)])
    assert verdict(snap, "long_poll_interval")["state"] == health.FAIL
    assert verdict(snap, "long_poll_interval")["seen"] == "1/s"


def test_revalidator_slow_uses_the_configured_max_revalidator() -> None:
    from ovstop.collect.upcall import DUMP

    dp = labels_of(datapath="netdev@ovs-netdev")
    slow = [Sample(DUMP, dp, 0.6)]
    assert verdict(rounds(slow), "revalidator_slow")["state"] == health.FAIL  # default 500 ms
    configured = {"system": [{"max_revalidator_ms": 1000}]}
    assert verdict(rounds(slow, tables=configured), "revalidator_slow")["state"] == health.OK


def test_ovn_lag_must_last_and_flaps_are_counted_over_a_minute() -> None:
    lag = health.CHASSIS_LAG
    from ovstop.model.metric import Kind, MetricSpec

    spec = MetricSpec(lag, Kind.GAUGE, "", ("ovn",), ("chassis",))
    behind = [[Sample(spec, labels_of(chassis="ch-2"), 3.0)]] * 10
    assert verdict(rounds(*behind), "ovn_nb_cfg_lag")["state"] == health.OK  # 10 s behind: catching up
    assert verdict(rounds(*behind * 4), "ovn_nb_cfg_lag")["state"] == health.FAIL  # 40 s
    flaps = MetricSpec(health.TUNNEL_FLAPS, Kind.COUNTER, "", ("tunnel",), ("tunnel",))
    steady = [[Sample(flaps, labels_of(tunnel="geneve0"), 4.0)]] * 5
    assert verdict(rounds(*steady), "bfd_cfm_flapping")["state"] == health.OK
    moving = [[Sample(flaps, labels_of(tunnel="geneve0"), 4.0 + i)] for i in range(5)]
    assert verdict(rounds(*moving), "bfd_cfm_flapping")["state"] == health.FAIL


def test_deferred_action_limit_says_what_it_needs() -> None:
    row = verdict(rounds([]), "deferred_action_limit")
    assert row["state"] == health.UNKNOWN and "Linux 6.6" in row["seen"]
    off = {"kernel_drops": [{"counted": False, "reason": "this kernel has no openvswitch drop reasons (Linux 6.4+)"}]}
    row = verdict(rounds([], tables=off), "deferred_action_limit")
    assert row["state"] == health.UNKNOWN and row["seen"].endswith(
        ": this kernel has no openvswitch drop reasons (Linux 6.4+)"
    )
    # capture counts kernel drops and has seen none: the limit was not hit
    row = verdict(rounds([], tables={"kernel_drops": [{"counted": True, "reason": ""}]}), "deferred_action_limit")
    assert row["state"] == health.OK


def test_every_check_names_its_metric_threshold_and_reason() -> None:
    names = [c.name for c in health.CHECKS]
    assert len(set(names)) == len(names) == 14
    for c in health.CHECKS:
        assert c.reads and c.threshold and c.explain


def test_tui_badge_and_health_list_follow_a_real_tunnel_failure(live: tuple[SandboxSwitch, Runtime]) -> None:
    """Pilot on a live sandbox: BFD without a peer takes geneve0 down; the header shows a badge and ``h``
    lists the failing check first with what it saw; escape returns; the badge goes when BFD is off."""
    import asyncio

    from textual.widgets import Static

    from ovstop.tui.app import OvstopApp
    from ovstop.tui.feed import LiveFeed
    from ovstop.tui.header import HeaderBar
    from ovstop.tui.health_screen import HealthScreen

    sw, rt = live
    app = OvstopApp(LiveFeed(rt.sampler, 0.3))

    async def until(predicate: Callable[[], bool], deadline: float = 20.0) -> None:
        end = time.monotonic() + deadline
        while not predicate():
            assert time.monotonic() < end, "condition not met in time"
            await asyncio.sleep(0.05)

    def header() -> str:
        return str(app.query_one(HeaderBar).render())

    async def run() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            await until(lambda: "checks ok" in header())
            sw.vsctl("set", "Interface", "geneve0", "bfd:enable=true")
            await until(lambda: "✗ tunnel_down" in header())
            assert "state=down" in sw.vsctl("get", "Interface", "geneve0", "bfd_status").replace('"', "")
            await pilot.press("h")
            assert isinstance(app.screen, HealthScreen)
            text = str(app.screen.query_one("#health-text", Static).render())
            first = text.splitlines()[2]
            assert first.startswith("✗ tunnel_down") and "geneve0 (10.0.0.2)" in first
            assert all(c.name in text and c.explain in text.replace("\n", " ") for c in health.CHECKS)
            await pilot.press("escape")
            assert not isinstance(app.screen, HealthScreen)
            sw.vsctl("remove", "Interface", "geneve0", "bfd", "enable")
            await until(lambda: "tunnel_down" not in header())
            app.feed.stop()  # no round may land while the app shuts down

    asyncio.run(run())
