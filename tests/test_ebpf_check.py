"""Capability detection for eBPF capture (``ovstop --check``): the real host, and system views
describing the other situations ovstop meets (userspace datapath, old kernels, no privileges)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ebpf_support import build_usdt_binary

from ovstop.ebpf.bcc_import import import_bcc
from ovstop.ebpf.capability import (
    SystemView,
    capabilities,
    format_check_table,
    plan_hooks,
    probe_system,
)
from ovstop.ebpf.hooks import DEEP_OFF, EVENTS, HOOKS, PER_PACKET, Kind
from ovstop.ebpf.kernel_drops import DropLayout
from ovstop.ebpf.layout import VERIFIED, Layout
from ovstop.ebpf.usdt_notes import usdt_probes
from ovstop.errors import SourceError

KERNEL_SYMBOLS = {h.target for h in HOOKS if h.kind in (Kind.KPROBE, Kind.KRETPROBE)}
TRACEPOINTS = {h.target for h in HOOKS if h.kind is Kind.RAW_TRACEPOINT}
USDT = {h.target for h in HOOKS if h.kind is Kind.USDT}
NO_DROP_REASONS = "this kernel has no openvswitch drop reasons (Linux 6.4+)"


def _view(**facts: object) -> SystemView:
    """A fully capable Debian 12 system with OVS on the kernel datapath; ``facts`` take pieces away."""
    base: dict[str, object] = {
        "kernel_release": "6.1.0-57-amd64",
        "privileged": True,
        "privilege_reason": "running as root",
        "headers": "/lib/modules/6.1.0-57-amd64/build",
        "module_loaded": True,
        "kernel_datapath": True,
        "kprobes": True,
        "tracepoints": set(TRACEPOINTS),
        "symbols": set(KERNEL_SYMBOLS),
        "vswitchd_pid": 1234,
        "vswitchd_exe": "/usr/sbin/ovs-vswitchd",
        "usdt": set(USDT),
        "layout": Layout(source="verified table for 6.1.0-57-amd64", values=dict(VERIFIED["6.1.0-57-amd64"])),
        "drops_error": NO_DROP_REASONS,  # what kernel_drops.system_layout() says on 6.1
    }
    base.update(facts)
    return SystemView(**base)  # type: ignore[arg-type]


def _by_name(view: SystemView) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.available, c.reason) for c in capabilities(view)}


def test_this_host_reports_what_is_missing_with_reasons() -> None:
    view = probe_system()
    caps = _by_name(view)
    assert list(caps)[:6] == ["privileges", "bcc", "kernel_headers", "openvswitch_module", "kprobes", "ring_buffer"]
    assert set(EVENTS) <= set(caps)
    assert all(reason for _, reason in caps.values())
    if not Path("/sys/module/openvswitch").exists():
        assert caps["openvswitch_module"][0] is False
        assert "openvswitch kernel module not loaded" in caps["openvswitch_module"][1]
        for event in ("upcall", "upcall_return", "upcall_enqueue", "action_execute", "flow_lookup"):
            assert caps[event][0] is False
        assert caps["kernel_drops"][0] is False
    kprobe_pmu = Path("/sys/bus/event_source/devices/kprobe").exists()
    kprobe_events = Path("/sys/kernel/tracing/kprobe_events").exists()
    assert caps["kprobes"][0] is (kprobe_pmu or kprobe_events)
    if not caps["kprobes"][0]:
        assert "CONFIG_KPROBES" in caps["kprobes"][1]
    table = format_check_table(capabilities(view)).splitlines()
    assert table[0].split() == ["capability", "ok", "reason"]
    assert len(table) == len(caps) + 1
    assert any(line.startswith("openvswitch_module") for line in table)


def test_everything_available_plans_every_hook() -> None:
    view = _view()
    hooks, missing = plan_hooks(view)
    assert missing == {}
    assert {h.fn for h in hooks} == {h.fn for h in HOOKS if not h.fallback_for and not h.replaces}
    assert all(available for name, (available, _) in _by_name(view).items() if name != "kernel_drops")
    assert _by_name(view)["kernel_drops"] == (False, NO_DROP_REASONS)
    assert _by_name(view)["flow_lookup"][1].startswith(
        "kprobe ovs_flow_tbl_lookup_stats, kretprobe ovs_flow_tbl_lookup_stats (not fexit: fexit support not checked)"
    )
    assert _by_name(view)["upcall"][1] == (
        "raw_tracepoint ovs_dp_upcall; struct offsets from verified table for 6.1.0-57-amd64"
    )


def test_fexit_replaces_the_lookup_kprobe_pair_where_bcc_and_the_kernel_allow() -> None:
    view = _view(fexit_error="")
    hooks, missing = plan_hooks(view)
    assert missing == {}
    lookup = [h for h in hooks if h.event == "flow_lookup"]
    assert [(h.kind, h.fn) for h in lookup] == [(Kind.FEXIT, "kretfunc__openvswitch__ovs_flow_tbl_lookup_stats")]
    assert _by_name(view)["flow_lookup"][1] == (
        "fexit ovs_flow_tbl_lookup_stats; struct offsets from verified table for 6.1.0-57-amd64"
        " (per-packet: only with --ebpf-deep)"
    )
    old_bcc = _view(fexit_error="bcc 0.26 cannot attach fexit to module functions (needs 0.28+)")
    assert "(not fexit: bcc 0.26 cannot attach" in _by_name(old_bcc)["flow_lookup"][1]
    # fexit without the struct layout is off like the kretprobe: the event is off, with the layout's reason
    no_layout = _view(fexit_error="", layout=Layout(missing={"OVS_FLOW_UFID": "openvswitch BTF has no sw_flow.id"}))
    assert plan_hooks(no_layout)[1]["flow_lookup"] == "struct layout unknown: openvswitch BTF has no sw_flow.id"


def test_kernel_drops_with_the_reasons_from_btf_and_without() -> None:
    reasons = {(2 << 16) + i: name for i, name in enumerate(("OVS_DROP_LAST_ACTION", "OVS_DROP_EXPLICIT"), 1)}
    view = _view(kernel_release="6.12.57-amd64", drops_error="", drop_layout=DropLayout(2, 16, reasons, 16, 224))
    assert _by_name(view)["kernel_drops"] == (
        True,
        "raw_tracepoint skb:kfree_skb, 2 OVS drop reasons and offsets from BTF",
    )
    assert _by_name(_view(privileged=False, privilege_reason="not root"))["kernel_drops"] == (False, "not root")


def test_userspace_datapath_only_says_unixctl_fallback() -> None:
    view = _view(module_loaded=False, kernel_datapath=False, tracepoints=set(), symbols=set(), usdt=set())
    caps = _by_name(view)
    available, reason = caps["openvswitch_module"]
    assert not available
    assert "userspace (netdev) datapath" in reason and "unixctl" in reason
    assert caps["flow_lookup"] == (False, "openvswitch kernel module not loaded")


def test_kernel_before_5_14_uses_kprobe_for_upcall_and_loses_action_execute() -> None:
    view = _view(kernel_release="5.10.0-28-amd64", tracepoints=set())
    hooks, missing = plan_hooks(view)
    upcall = [h for h in hooks if h.event == "upcall"]
    assert [(h.kind, h.target) for h in upcall] == [(Kind.KPROBE, "ovs_dp_upcall")]
    assert "action_execute" in missing and "Linux < 5.14" in missing["action_execute"]
    assert "upcall" not in missing and "flow_lookup" not in missing


def test_old_kernel_falls_back_to_perf_buffer() -> None:
    caps = _by_name(_view(kernel_release="5.4.0-150-generic"))
    assert caps["ring_buffer"] == (False, "Linux < 5.8: perf buffer used instead")


def test_no_kprobes_keeps_tracepoint_events_only() -> None:
    hooks, missing = plan_hooks(_view(kprobes=False))
    assert {h.event for h in hooks} == {"upcall", "action_execute", "recv_upcall", "flow_operation"}
    assert missing["flow_lookup"] == "kernel without kprobe support (CONFIG_KPROBES)"
    # the optional queue_id helper of action_execute is a kprobe: left out, the event still works
    assert not any(h.optional for h in hooks)


def test_missing_symbol_is_named() -> None:
    _, missing = plan_hooks(_view(symbols=KERNEL_SYMBOLS - {"queue_userspace_packet"}))
    assert missing == {"upcall_enqueue": "kernel symbol queue_userspace_packet not found in /proc/kallsyms"}


def test_unprivileged_blocks_every_event_with_the_reason() -> None:
    reason = "not root and without CAP_BPF+CAP_PERFMON: run ovstop with sudo for eBPF capture"
    hooks, missing = plan_hooks(_view(privileged=False, privilege_reason=reason))
    assert hooks == []
    assert missing == dict.fromkeys(EVENTS, reason)


def test_missing_headers_and_bcc_are_reported() -> None:
    caps = _by_name(_view(headers="", bcc_error="bcc (BPF Compiler Collection) Python bindings not found"))
    assert caps["bcc"][0] is False
    assert caps["kernel_headers"][0] is False and "BCC_KERNEL_SOURCE" in caps["kernel_headers"][1]
    assert caps["upcall"][1] == "bcc (BPF Compiler Collection) Python bindings not found"


def test_debian_vswitchd_has_no_usdt_notes() -> None:
    binary = Path("/usr/sbin/ovs-vswitchd")
    if not binary.exists():
        pytest.skip("openvswitch-switch not installed")
    probes = usdt_probes(binary)
    assert not probes & USDT
    _, missing = plan_hooks(_view(usdt=probes))
    assert "--enable-usdt-probes" in missing["recv_upcall"]
    assert "--enable-usdt-probes" in missing["flow_operation"]


def test_usdt_notes_of_a_binary_with_ovs_probes(tmp_path: Path) -> None:
    binary = build_usdt_binary(tmp_path)
    if binary is None:
        pytest.fail("gcc and sys/sdt.h needed: apt-get install systemtap-sdt-dev")
    assert usdt_probes(binary) == USDT


def test_usdt_notes_errors_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an elf at all")
    with pytest.raises(SourceError, match="not a 64-bit little-endian ELF") as err:
        usdt_probes(junk)
    assert "\n" not in str(err.value)
    with pytest.raises(SourceError, match="cannot read"):
        usdt_probes(tmp_path / "absent")


def test_vswitchd_not_running() -> None:
    _, missing = plan_hooks(_view(vswitchd_pid=None, vswitchd_exe="", usdt=set()))
    assert missing["recv_upcall"] == "ovs-vswitchd is not running"


def test_bcc_imports_from_the_distribution() -> None:
    bcc = import_bcc()
    assert hasattr(bcc, "BPF") and hasattr(bcc, "USDT")


def test_default_probe_set_is_the_upcall_path_only() -> None:
    view = _view()
    hooks, missing = plan_hooks(view, deep=False)
    assert {h.event for h in hooks} == {"upcall", "upcall_return", "upcall_enqueue", "recv_upcall", "flow_operation"}
    assert missing == dict.fromkeys(PER_PACKET, DEEP_OFF)
    deep, _ = plan_hooks(view, deep=True)
    assert {h.event for h in deep} - {h.event for h in hooks} == PER_PACKET
