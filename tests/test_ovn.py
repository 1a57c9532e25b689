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

from ovstop.collect.base import Sources
from ovstop.collect.ovn import OvnSouthboundCollector
from ovstop.collect.sampler import Sampler
from ovstop.export.server import MetricsEndpoint, serve
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
    with running(Options(sandbox=True, sandbox_ports=1, traffic_pps=20, ovn=True,
                         labels=str(tmp / "labels.toml"), ebpf=False)) as runtime:
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
    lsp_types = Counter(t.strip('"') or "vif" for t in ovn.nbctl("--format=csv", "--no-headings", "--columns=type",
                                                                  "list", "Logical_Switch_Port").splitlines())
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
        assert sum(v for k, v in values(snap, "ovn_tenant_logical_switches").items()
                   if ("vpc", tenant) in k) == len(switches) == 3
        assert one(snap, "ovn_tenant_logical_switches", vpc=tenant, workload="external") == 1
        bound = [line for line in ovn.sbctl("--format=csv", "--no-headings", "--columns=logical_port,chassis", "list",
                                            "Port_Binding").splitlines()
                 if line.startswith(tenant) and not line.endswith(",[]")]
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
        assert one(snap, "ovs_vswitchd_tunnel_up", tunnel=row["tunnel"], remote_ip=row["remote_ip"], vpc="shared",
                   key="flow") == 1
        assert one(snap, "ovn_tunnel_chassis_info", tunnel=row["tunnel"], chassis=row["chassis"]) == 1
    # The sandbox's own geneve0 (br0) ends at chassis-2's address too.
    assert one(snap, "ovn_tunnel_chassis_info", tunnel="geneve0", remote_ip="10.0.0.2") == 1
    # OVS interfaces bound to logical ports carry their tenant from external_ids.
    assert one(snap, "ovs_vswitchd_interface_link_state", interface="vpc-b-ls0-vm0", vpc="vpc-b") in (0, 1)


def test_metrics_with_ovn_pass_promtool(rt: Runtime) -> None:
    endpoint = MetricsEndpoint()
    endpoint.sampler = rt.sampler
    server = serve(endpoint, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=20) as resp:
            text = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    families = {f.name for f in text_string_to_metric_families(text)}
    for name in ("ovn_logical_switches", "ovn_chassis_up", "ovn_chassis_info", "ovn_tunnel_chassis_info",
                 "ovs_vswitchd_flow_table_active_flows", "ovs_vswitchd_flow_table_lookups",
                 "ovs_vswitchd_bridge_n_flows"):
        assert name in families, name


def sample_until(rt: Runtime, check, timeout: float = 30.0) -> Snapshot:
    """Collection rounds until ``check`` holds or ``timeout`` seconds pass; the last snapshot either way."""
    deadline = time.monotonic() + timeout
    while True:
        snap = rt.sampler.sample()
        if check(snap) or time.monotonic() > deadline:
            return snap
        time.sleep(0.1)


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
        ovn.stop_controller()
        snap = sample_until(runtime, lambda s: one(s, "ovn_chassis_up", chassis=LOCAL_CHASSIS) == 0)
        assert one(snap, "ovn_chassis_up", chassis=LOCAL_CHASSIS) == 0
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
