"""Tests that run inside the QEMU guest with Debian's kernel (see tests/guest/vm.py).

Skipped, with the reason, only when qemu or the built guest image is missing; CI builds the image with
scripts/guest/build-rootfs.sh before the tests.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from guest.vm import GUEST_DIR, REPO, GuestError, run_in_guest, unavailable_reason

pytestmark = [
    pytest.mark.guest,
    pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or ""),
]

GUEST_TESTS = Path(__file__).resolve().parent / "guest"


def run_scenario(argv: list[str], timeout: float = 600.0) -> str:
    """Run an in-guest scenario (a path under tests/guest first in argv); fail with its output if it fails."""
    done = run_in_guest(argv, timeout=timeout)
    if done.boot_crashes:
        warnings.warn(f"guest kernel crashed in boot and was booted again: {done.boot_crashes}", stacklevel=2)
    assert done.returncode == 0, f"guest scenario {argv} exited {done.returncode}:\n{done.output}"
    return done.output


@pytest.mark.timeout(600)
def test_smoke_kernel_datapath_and_kprobe() -> None:
    out = run_scenario(["sh", str(GUEST_TESTS / "scenario_smoke.sh")])
    assert "SMOKE-FAIL" not in out
    assert "SMOKE-OK datapath system@ovs-system ports v1 v2" in out
    assert "SMOKE-OK ping ns1 10.0.0.1 to ns2 10.0.0.2" in out
    if "SMOKE-WARN" in out:
        warnings.warn(f"guest smoke: {out}", stacklevel=1)
    flows = re.search(r"^SMOKE-OK flows (\d+)$", out, re.M)
    assert flows and int(flows.group(1)) >= 1, out
    # The pings were forwarded by IPv4 datapath flows installed from the upcalls, with packet counts.
    ipv4_flow = r"flow: recirc_id\(0\),in_port\(\d+\),.*eth_type\(0x0800\).* packets:[1-9]\d*,.*actions:\d+$"
    assert re.search(ipv4_flow, out, re.M), out
    assert "SMOKE-OK tracepoint openvswitch:ovs_dp_upcall" in out
    assert "SMOKE-OK kallsyms ovs_flow_tbl_lookup_stats ovs_dp_upcall" in out
    upcalls = re.search(r"^SMOKE-OK upcalls (\d+)$", out, re.M)
    assert upcalls and int(upcalls.group(1)) >= 1, out
    assert "SMOKE-PASS" in out


@pytest.mark.timeout(600)
@pytest.mark.skipif(
    not (GUEST_TESTS / "scenario_ebpf.py").exists(), reason="tests/guest/scenario_ebpf.py not written yet"
)
def test_ebpf_scenario_in_guest() -> None:
    """Hook for the eBPF capture scenario: it runs with the guest venv's python and must pass every check."""
    out = run_scenario(["python3", str(GUEST_TESTS / "scenario_ebpf.py")])
    assert "EBPF-PASS" in out, out
    # The guest's own bcc decides: 0.26 (Debian 12) has no module fexit, 0.31 (Debian 13) has.
    version = (GUEST_DIR / "rootfs/usr/lib/python3/dist-packages/bcc/version.py").read_text()
    bcc = tuple(int(x) for x in re.findall(r"'(\d+)\.(\d+)", version)[0])
    probe = "fexit (fexit available)" if bcc >= (0, 28) else "kprobe+kretprobe (bcc"
    assert f"EBPF-OK flow_lookup_probe {probe}" in out, out


@pytest.mark.timeout(900)
def test_headless_in_guest_metrics_and_recording() -> None:
    """ovstop --headless --record on the kernel datapath: exact /metrics deltas, clean SIGTERM, a checked recording."""
    out = run_scenario(["python3", str(GUEST_TESTS / "scenario_headless.py")], timeout=900)
    assert "HEADLESS-FAIL" not in out, out
    for check in ("ready", "metrics", "stop", "recording"):
        assert f"HEADLESS-OK {check}" in out, out
    assert "HEADLESS-PASS" in out, out


@pytest.mark.timeout(900)
def test_kernel_drops_by_reason_in_guest() -> None:
    """Kernel drops by OVS reason: on Debian 13's 6.12, ovstop's count for the drop flow's reason equals the
    packets sent and dpctl/dump-flows' count on that flow; on Debian 12's 6.1, off with the reason."""
    out = run_scenario(["python3", str(GUEST_TESTS / "scenario_drops.py")], timeout=900)
    assert "DROPS-PASS" in out, out
    kernels = [p.name for p in (GUEST_DIR / "rootfs/lib/modules").iterdir()]
    assert len(kernels) == 1, kernels
    has_reasons = tuple(int(x) for x in kernels[0].split(".")[:2]) >= (6, 4)
    if has_reasons:
        counted = r"^DROPS-OK counted OVS_DROP_\w+ port v2: \+25 = 25 sent = dump-flows packets \+25$"
        assert re.search(counted, out, re.M), out
    else:
        assert "DROPS-OK off" in out and "no openvswitch drop reasons" in out, out


@pytest.mark.timeout(600)
def test_explain_uses_detrace_where_ovs_has_it() -> None:
    """OVS 3.5 (Debian 13): explain's steps equal ``ofproto/detrace``'s rules; OVS 3.1: ofproto/trace."""
    out = run_scenario(["python3", str(GUEST_TESTS / "scenario_detrace.py")])
    assert "DETRACE-PASS" in out, out
    expected = "DETRACE-OK detrace " if guest_ovs_version() >= (3, 4) else "DETRACE-OK trace "
    assert expected in out, out


def guest_suite() -> str:
    """The Debian codename of the guest image (bookworm, trixie)."""
    os_release = (GUEST_DIR / "rootfs/etc/os-release").read_text()
    match = re.search(r"^VERSION_CODENAME=(\w+)$", os_release, re.M)
    assert match, "no VERSION_CODENAME in the guest's /etc/os-release"
    return match.group(1)


@pytest.mark.timeout(900)
def test_usdt_events_live_agree_with_upcall_monitor() -> None:
    """Debian 12 guest, ovs-vswitchd built with USDT probes from Debian's openvswitch-source: N new flows give
    N recv_upcall and N flow_operation put events, linked by queue_id to the kernel upcalls, and OVS's own
    upcall_monitor.py counts the same N upcalls."""
    if guest_suite() != "bookworm":
        pytest.skip("the USDT build of ovs-vswitchd is made for the Debian 12 guest only")
    binary = GUEST_DIR / "ovs-usdt/ovs-vswitchd"
    assert binary.exists(), f"{binary} missing: run scripts/guest/build-rootfs.sh --suite bookworm"
    out = run_scenario(["python3", str(GUEST_TESTS / "scenario_usdt.py")], timeout=900)
    assert "USDT-FAIL" not in out, out
    for warn in re.findall(r"^USDT-WARN .*$", out, re.M):  # ovs-vswitchd lost every upcall and was restarted
        warnings.warn(f"guest USDT: {warn}", stacklevel=1)
    for check in ("binary", "check", "truth", "events", "correlation", "upcall_monitor", "detach"):
        assert f"USDT-OK {check}" in out, out
    binary_line = r"^USDT-OK binary pid \d+ runs /opt/ovs-usdt/ovs-vswitchd: ovs-vswitchd \(Open vSwitch\) "
    assert re.search(binary_line, out, re.M), out
    n = re.search(r"^USDT-OK truth dpctl/dump-flows: (\d+) new ufids$", out, re.M)
    assert n and int(n.group(1)) > 0, out
    assert f"USDT-OK events {n.group(1)} recv_upcall (MISS), {n.group(1)} flow_operation put" in out, out
    assert f"upcall_monitor.py counted {n.group(1)} upcalls, ovstop {n.group(1)};" in out, out
    assert "USDT-PASS" in out, out


def guest_ovs_version() -> tuple[int, int]:
    """Major and minor of the guest image's openvswitch-switch package (from its dpkg status file)."""
    status = (GUEST_DIR / "rootfs/var/lib/dpkg/status").read_text()
    match = re.search(r"^Package: openvswitch-switch\n(?:[^\n]+\n)*?Version: (\d+)\.(\d+)", status, re.M)
    assert match, "openvswitch-switch not installed in the guest image"
    return int(match.group(1)), int(match.group(2))


@pytest.mark.timeout(900)
def test_collectors_equal_appctl_on_the_guests_ovs() -> None:
    """The host's collector equality tests (values equal ovs-appctl/ovs-vsctl on a sandbox switch), run
    against the guest's own OVS: 3.1 in the Debian 12 guest, 3.5 in the Debian 13 one."""
    # (the guest's venv takes ovs from Debian's python3-openvswitch: no second library to compare with)
    tests = ["tests/test_collectors_unixctl.py", "tests/test_parsers.py", "-k", "not debian_12s_ovs_library"]
    # The guest's package version says which unixctl format ovstop must use there: JSON from OVS 3.4.
    expected = "json" if guest_ovs_version() >= (3, 4) else "text"
    script = 'ovs-vswitchd --version | head -1; exec python3 -m pytest -p no:cacheprovider -q "$@"'
    argv = ["env", f"OVSTOP_EXPECT_UNIXCTL_FORMAT={expected}", "sh", "-c", script, "-"]
    out = run_scenario([*argv, *tests], timeout=900)
    assert re.search(r"^ovs-vswitchd \(Open vSwitch\) \d+\.\d+", out, re.M), out
    assert re.search(r"^\d+ passed(, \d+ deselected)? in ", out, re.M) and " skipped" not in out, out


def test_runner_reports_exit_code_and_output() -> None:
    done = run_in_guest(["sh", "-c", 'echo "kernel $(uname -r) in $PWD"; echo oops >&2; exit 7'], timeout=300)
    assert done.returncode == 7
    assert re.search(rf"^kernel \d+\.\d+\.\d+\S*-amd64 in {REPO}$", done.output, re.M), done.output
    assert "oops" in done.output
    assert "OVSTOP-GUEST" not in done.output
    assert done.boot_seconds > 0


def orphan_guests() -> list[int]:
    """Pids of qemu processes whose per-run control directory is gone (the run ended, qemu did not)."""
    orphans = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            ctl = re.match(rb"local,path=(.+),mount_tag=ctl,", arg)
            if ctl and not Path(ctl.group(1).decode()).exists():
                orphans.append(int(cmdline.parent.name))
    return orphans


def test_runner_timeout_kills_qemu() -> None:
    with pytest.raises(GuestError, match="timed out after 5 s"):
        run_in_guest(["sleep", "600"], timeout=5)
    assert orphan_guests() == []
