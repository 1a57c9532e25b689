"""OVN metrics against a real private OVN (``ovstop --sandbox --ovn``: NB/SB ovsdb-servers, ovn-northd,
ovn-controller on the sandbox switch, faked extra chassis), every count checked against
``ovn-nbctl``/``ovn-sbctl``."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving import serving

from ovstop.collect.base import Sources
from ovstop.collect.ovn import OvnSouthboundCollector
from ovstop.collect.sampler import Sampler
from ovstop.model.store import Snapshot
from ovstop.runtime import Options, Runtime, running
from ovstop.sandbox.ovn import FAKE_CHASSIS, LOCAL_CHASSIS, TENANTS, SandboxOvn
from ovstop.sources.ovn import OvnLink
from ovstop.sources.ovsdb import OvsdbSource

pytestmark = pytest.mark.skipif(shutil.which("ovn-northd") is None, reason="OVN not installed (ovn-central)")

LABELS = """
[labels]
names = ["vpc", "workload"]
external_ids = { vpc = ["vpc"] }
[[labels.rule]]
logical_switch = "*-ext"
workload = "external"
[[labels.rule]]
interface = "ovn-*"
vpc = "shared"
"""


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    tmp = tmp_path_factory.mktemp("ovn")
    (tmp / "labels.toml").write_text(LABELS)
    with running(
        Options(sandbox=True, sandbox_ports=1, traffic_pps=20, ovn=True, labels=str(tmp / "labels.toml"), ebpf=False)
    ) as runtime:
        yield runtime


def ovn_of(rt: Runtime) -> SandboxOvn:
    assert rt.sandbox is not None and rt.sandbox.ovn is not None
    return rt.sandbox.ovn


def test_sandbox_endpoints_flow_into_the_collectors_not_into_the_options(rt: Runtime) -> None:
    """The sandbox returns where its OVN is; the runtime hands that to the collectors and leaves the user's
    options as they were (frozen)."""
    ovn = ovn_of(rt)
    assert (rt.options.ovn_nb, rt.options.ovn_sb, rt.options.db) == (None, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rt.options.ovn_sb = "unix:/elsewhere"  # type: ignore[misc]
    link = rt.sources.ovn
    assert link is not None and (link.given_nb, link.given_sb, link.rundir) == (ovn.nb_remote, ovn.sb_remote, ovn.dir)
    # The endpoint is real: ovn-sbctl reaches the SB database there and lists the local chassis.
    assert LOCAL_CHASSIS in ovn.sbctl("--columns=name", "list", "Chassis")


def values(snap: Snapshot, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {frozenset(s.labels): s.value for s in snap.series if s.spec.name == name and not s.stale}


def one(snap: Snapshot, name: str, **labels: str) -> float:
    found = [v for k, v in values(snap, name).items() if set(labels.items()) <= k]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def bare(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip()]


def test_counts_equal_ctl_output(rt: Runtime) -> None:
    ovn = ovn_of(rt)
    snap = rt.sampler.sample()
    assert snap.health["ovn_nb"].up and snap.health["ovn_sb"].up, snap.health
    nb_list = lambda table, col="_uuid": bare(ovn.nbctl("--bare", f"--columns={col}", "list", table))  # noqa: E731
    assert one(snap, "ovn_logical_switches") == len(nb_list("Logical_Switch")) == 6
    assert one(snap, "ovn_logical_routers") == len(nb_list("Logical_Router")) == 2
    assert one(snap, "ovn_logical_router_ports") == len(nb_list("Logical_Router_Port")) == 4
    lsp_types = Counter(
        t.strip('"') or "vif"
        for t in ovn.nbctl(
            "--format=csv", "--no-headings", "--columns=type", "list", "Logical_Switch_Port"
        ).splitlines()
    )
    for ptype, n in lsp_types.items():
        assert one(snap, "ovn_logical_switch_ports", type=ptype) == n
    assert lsp_types == {"vif": 8, "router": 4, "localnet": 2}
    chassis = bare(ovn.sbctl("--bare", "--columns=name", "list", "Chassis"))
    assert one(snap, "ovn_chassis_registered") == len(chassis) == 1 + len(FAKE_CHASSIS)
    for name in chassis:
        uuid = ovn.sbctl("--bare", "--columns=_uuid", "find", "Chassis", f"name={name}").strip()
        n_bound = len(bare(ovn.sbctl("--bare", "--columns=_uuid", "find", "Port_Binding", f"chassis={uuid}")))
        assert one(snap, "ovn_chassis_port_bindings", chassis=name) == n_bound > 0
        ip = ovn.sbctl("--bare", "--columns=ip", "find", "Encap", f"chassis_name={name}").strip()
        assert one(snap, "ovn_chassis_info", chassis=name, encap_ip=ip, encap_type="geneve") == 1
        assert one(snap, "ovn_chassis_up", chassis=name) == 1
    assert one(snap, "ovn_controller_sb_connected", chassis=LOCAL_CHASSIS) == 1
    assert one(snap, "ovn_datapaths") == len(bare(ovn.sbctl("--bare", "--columns=_uuid", "list", "Datapath_Binding")))
    # Tenants: switches and ports per vpc (NB external_ids), bound ports per vpc (SB, joined through NB).
    for tenant in TENANTS:
        switches = bare(ovn.nbctl("--bare", "--columns=name", "find", "Logical_Switch", f"external_ids:vpc={tenant}"))
        assert (
            sum(v for k, v in values(snap, "ovn_tenant_logical_switches").items() if ("vpc", tenant) in k)
            == len(switches)
            == 3
        )
        assert one(snap, "ovn_tenant_logical_switches", vpc=tenant, workload="external") == 1
        bound = [
            line
            for line in ovn.sbctl(
                "--format=csv", "--no-headings", "--columns=logical_port,chassis", "list", "Port_Binding"
            ).splitlines()
            if line.startswith(tenant) and not line.endswith(",[]")
        ]
        assert one(snap, "ovn_tenant_port_bindings", vpc=tenant, workload="") == len(bound) == 4
    rows = {r["chassis"]: r for r in snap.tables["ovn_chassis"]}
    assert rows[LOCAL_CHASSIS]["local"] and rows[LOCAL_CHASSIS]["encap_ip"] == "10.0.0.1"


def test_tunnels_carry_remote_ip_tenant_and_chassis(rt: Runtime) -> None:
    snap = rt.sampler.sample()
    ovn = ovn_of(rt)
    ovs_tunnels = {}
    for line in bare(ovn.switch.vsctl("--bare", "--columns=name,options", "find", "Interface", "type=geneve")):
        if line.startswith("ovn-"):
            ovs_tunnels[line] = None
    assert len(ovs_tunnels) == len(FAKE_CHASSIS)
    by_ip = {c.ip: c.name for c in FAKE_CHASSIS}
    rows = [r for r in snap.tables["tunnels"] if r["tunnel"].startswith("ovn-")]
    assert {r["tunnel"] for r in rows} == set(ovs_tunnels)
    for row in rows:
        assert row["chassis"] == by_ip[row["remote_ip"]]
        assert (
            one(
                snap,
                "ovs_vswitchd_tunnel_up",
                tunnel=row["tunnel"],
                remote_ip=row["remote_ip"],
                vpc="shared",
                key="flow",
            )
            == 1
        )
        assert one(snap, "ovn_tunnel_chassis_info", tunnel=row["tunnel"], chassis=row["chassis"]) == 1
    # The sandbox's own geneve0 (br0) ends at chassis-2's address too.
    assert one(snap, "ovn_tunnel_chassis_info", tunnel="geneve0", remote_ip="10.0.0.2") == 1
    # OVS interfaces bound to logical ports carry their tenant from external_ids.
    assert one(snap, "ovs_vswitchd_interface_link_state", interface="vpc-b-ls0-vm0", vpc="vpc-b") in (0, 1)


def test_metrics_with_ovn_pass_promtool(rt: Runtime) -> None:
    with (
        serving(rt.sampler) as (_, server),
        urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=20) as resp,
    ):
        text = resp.read().decode()
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    families = {f.name for f in text_string_to_metric_families(text)}
    for name in (
        "ovn_logical_switches",
        "ovn_chassis_up",
        "ovn_chassis_info",
        "ovn_tunnel_chassis_info",
        "ovs_vswitchd_flow_table_active_flows",
        "ovs_vswitchd_flow_table_lookups",
        "ovs_vswitchd_bridge_n_flows",
    ):
        assert name in families, name


def sample_until(rt: Runtime, check, timeout: float = 30.0) -> Snapshot:
    """Collection rounds until ``check`` holds or ``timeout`` seconds pass; the last snapshot either way."""
    deadline = time.monotonic() + timeout
    while True:
        snap = rt.sampler.sample()
        if check(snap) or time.monotonic() > deadline:
            return snap
        time.sleep(0.1)


def check_state(snap: Snapshot, check: str) -> str:
    return next(r["state"] for r in snap.tables["health_checks"] if r["check"] == check)


def test_removed_chassis_and_stopped_controller_show_down() -> None:
    with running(Options(sandbox=True, sandbox_ports=1, traffic_pps=20, ovn=True, ebpf=False)) as runtime:
        ovn = ovn_of(runtime)
        snap = runtime.sampler.sample()
        assert one(snap, "ovn_chassis_up", chassis="chassis-3") == 1
        ovn.sbctl("chassis-del", "chassis-3")
        snap = sample_until(runtime, lambda s: one(s, "ovn_chassis_up", chassis="chassis-3") == 0)
        assert one(snap, "ovn_chassis_up", chassis="chassis-3") == 0
        assert one(snap, "ovn_chassis_registered") == 2
        gone = next(r for r in snap.tables["ovn_chassis"] if r["chassis"] == "chassis-3")
        assert gone["status"] == "removed from SB" and not gone["up"]

        assert one(snap, "ovn_chassis_up", chassis=LOCAL_CHASSIS) == 1
        assert check_state(snap, "ovn_connection") == "ok"
        ovn.stop_controller()
        snap = sample_until(runtime, lambda s: one(s, "ovn_chassis_up", chassis=LOCAL_CHASSIS) == 0)
        assert one(snap, "ovn_chassis_up", chassis=LOCAL_CHASSIS) == 0
        assert check_state(snap, "ovn_connection") == "fail"  # health check: the controller's SB link is gone
        assert one(snap, "ovn_chassis_up", chassis="chassis-2") == 1


def test_no_ovn_is_a_reason_not_an_error(rt: Runtime, tmp_path: Path) -> None:
    link = OvnLink(rundir=tmp_path)
    switch = ovn_of(rt).switch
    db = OvsdbSource(switch.db_remote)
    db.refresh()
    switch.vsctl("remove", "Open_vSwitch", ".", "external_ids", "ovn-remote")
    try:
        deadline = time.monotonic() + 30
        while True:  # until the replica has the change (ovs-vsctl's own answer is the truth)
            db.refresh()
            ids = db.rows("Open_vSwitch")[0].get("external_ids") or {}
            if "ovn-remote" not in ids:
                break
            assert time.monotonic() < deadline, "the OVSDB replica never saw ovn-remote removed"
            time.sleep(0.05)
        assert "ovn-remote" not in switch.vsctl("get", "Open_vSwitch", ".", "external_ids")
        snap = Sampler(Sources(ovsdb=db), [OvnSouthboundCollector(link)]).sample()
        health = snap.health["ovn_sb"]
        assert not health.up and health.reason.startswith("not configured")
    finally:
        switch.vsctl("set", "Open_vSwitch", ".", f"external_ids:ovn-remote={ovn_of(rt).sb_remote}")
        link.close()
        db.close()


def test_tui_chassis_and_tunnel_pane(rt: Runtime) -> None:
    """Pane 5 on the real OVN: one row per chassis and per tunnel, with the status the snapshot has."""
    import asyncio

    from textual.widgets import DataTable, Static

    from ovstop.tui.app import OvstopApp
    from ovstop.tui.feed import LiveFeed

    app = OvstopApp(LiveFeed(rt.sampler, 0.5))

    async def run() -> None:
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.press("5")
            loop = asyncio.get_running_loop()
            end = loop.time() + 20
            while app.snapshots_received < 2 or not app.pane(5).query_one("#chassis-table", DataTable).row_count:
                assert loop.time() < end, "pane 5 never filled"
                await asyncio.sleep(0.1)
            await pilot.pause()
            snap = app.shown
            assert snap is not None
            assert app.pane(5).display and not app.pane(1).display
            chassis = app.pane(5).query_one("#chassis-table", DataTable)
            rows = {str(k.value): [c.plain for c in chassis.get_row(k)] for k in chassis.rows}
            assert set(rows) == {r["chassis"] for r in snap.tables["ovn_chassis"]}
            for r in snap.tables["ovn_chassis"]:
                assert rows[r["chassis"]][-1].startswith("●" if r["up"] else "○ DOWN")
                assert rows[r["chassis"]][3] == (r["encap_ip"] or "–")
            tunnels = app.pane(5).query_one("#tunnel-table", DataTable)
            assert {str(k.value) for k in tunnels.rows} == {r["tunnel"] for r in snap.tables["tunnels"]}
            by_name = {str(k.value): [c.plain for c in tunnels.get_row(k)] for k in tunnels.rows}
            for r in snap.tables["tunnels"]:
                assert by_name[r["tunnel"]][3] == r["remote_ip"]
                assert by_name[r["tunnel"]][5] == (r.get("chassis") or "–")
            summary = str(app.pane(5).query_one("#ovn-summary", Static).render())
            assert f"{len(snap.tables['ovn_chassis'])} chassis" in summary

    asyncio.run(run())


def test_explain_of_an_ovn_flow_equals_ovn_detrace(rt: Runtime) -> None:
    """A packet the sandbox's known ACL drops (TCP port 23 from vpc-a-ls0): ovstop's explanation of the
    datapath flow it installs names the same logical flows, in the same order, and the same ACL as
    ``ofproto/trace | ovn-detrace`` for the same key."""
    import os
    import re
    import subprocess

    from ovstop.explain import explain_flow, trace_args, traceable
    from ovstop.sandbox.ovn import ACL_MATCH, ACL_PRIORITY

    ovn = ovn_of(rt)
    sw = ovn.switch
    packet = (
        "eth(src=02:bb:00:00:00:00,dst=02:bb:00:00:00:01),eth_type(0x0800),"
        "ipv4(src=192.168.0.10,dst=192.168.0.11,proto=6,tos=0,ttl=64,frag=no),tcp(src=1000,dst=23)"
    )
    deadline = time.monotonic() + 20
    while True:
        sw.appctl("netdev-dummy/receive", "vpc-a-ls0-vm0", packet)
        rows = [r for r in rt.sampler.sample().tables.get("dp_flows", []) if "dst=23" in str(r.get("key"))]
        if rows:
            break
        assert time.monotonic() < deadline, "the ACL's datapath flow never appeared"
        time.sleep(0.2)
    got = explain_flow(rt.sampler.sources, rows[0])
    trace = sw.appctl("ofproto/trace", *trace_args(rows[0], traceable(got.key)))
    detrace = subprocess.run(
        ["ovn-detrace", f"--ovnsb={ovn.sb_remote}", f"--ovnnb={ovn.nb_remote}"],
        input=trace,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ovn.env},
        check=True,
    ).stdout
    logical = re.findall(r"\* Logical flow: table=(\d+) \((\w+)\), priority=\d+, match=\((.*)\), actions=", detrace)
    assert logical and [(str(lf.table), lf.stage, lf.match) for lf in got.logical] == logical
    assert f"* ACL: from-lport, priority={ACL_PRIORITY}, match=({ACL_MATCH}), drop" in detrace
    [acl] = [lf for lf in got.logical if lf.nb.startswith("ACL ")]
    assert acl.stage == "ls_in_acl" and f"from-lport {ACL_PRIORITY} {ACL_MATCH} drop" in acl.nb
    assert got.trace.datapath_actions == "drop" == re.search(r"^Datapath actions: (.*)$", trace, re.M).group(1)  # type: ignore[union-attr]


def test_tui_flow_screen_names_the_acl(rt: Runtime) -> None:
    """Pilot: Enter on the ACL's datapath flow in pane 4 shows the logical flows and the ACL; Escape returns."""
    import asyncio

    from textual.widgets import DataTable, Static

    from ovstop.model.flows import flow_rows
    from ovstop.sandbox.ovn import ACL_MATCH
    from ovstop.tui.app import OvstopApp
    from ovstop.tui.feed import LiveFeed
    from ovstop.tui.flow_screen import FlowScreen
    from ovstop.tui.lookup_pane import flow_key

    ovn = ovn_of(rt)
    packet = (
        "eth(src=02:bb:00:00:00:00,dst=02:bb:00:00:00:01),eth_type(0x0800),"
        "ipv4(src=192.168.0.10,dst=192.168.0.11,proto=6,tos=0,ttl=64,frag=no),tcp(src=1001,dst=23)"
    )
    app = OvstopApp(LiveFeed(rt.sampler, 0.5))

    async def run() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            await pilot.press("4")
            table = app.query_one("#flows-table", DataTable)
            end = time.monotonic() + 20
            key = None
            while key is None or key not in {str(k.value) for k in table.rows}:
                assert time.monotonic() < end, "the ACL flow never showed in pane 4"
                ovn.switch.appctl("netdev-dummy/receive", "vpc-a-ls0-vm0", packet)
                await asyncio.sleep(0.3)
                rows = flow_rows(app.shown.tables) if app.shown is not None else []
                key = next((flow_key(r.id) for r in rows if "dst=23" in r.key), None)
            table.focus()
            table.move_cursor(row=table.get_row_index(key))
            await pilot.press("enter")
            assert isinstance(app.screen, FlowScreen)
            screen = app.screen
            while screen.explanation is None and not screen.error:
                assert time.monotonic() < end + 20, "explain never answered"
                await asyncio.sleep(0.05)
            assert screen.explanation is not None, screen.error
            logical = screen.query_one("#ovn-table", DataTable)
            cells = [" ".join(str(c) for c in logical.get_row_at(i)) for i in range(logical.row_count)]
            assert any("ls_in_acl " in c and "ACL " in c and ACL_MATCH in c for c in cells)
            assert "logical flows (ovn-detrace)" in str(screen.query_one("#ovn-status", Static).render())
            await pilot.press("escape")
            assert not isinstance(app.screen, FlowScreen) and app.pane(4).display

    asyncio.run(run())
