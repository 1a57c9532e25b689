"""The sandbox switch and traffic generator, against real ovsdb-server/ovs-vswitchd processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ovstop.errors import OvstopError, SourceError
from ovstop.sandbox.switch import SandboxSwitch, sweep_stale
from ovstop.sandbox.traffic import TrafficGenerator
from ovstop.sources.unixctl import UnixctlClient

ROOT = Path(__file__).resolve().parents[1]


def processes_using(directory: Path) -> list[int]:
    """Pids whose command line or environment mentions ``directory`` (ovs-vswitchd only has it in env)."""
    needle = str(directory).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if needle in blob and state != "Z":
            found.append(int(entry.name))
    return found


def eventually(check, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def perf_totals(text: str) -> dict[str, int]:
    """Sum pmd-perf-show's per-pmd counters: upcalls and EMC/SMC/megaflow hits."""
    totals = {"upcalls": 0, "hits": 0}
    for name, value in re.findall(r"^\s+- (Upcalls|EMC hits|SMC hits|Megaflow hits):\s+(\d+)", text, re.M):
        totals["upcalls" if name == "Upcalls" else "hits"] += int(value)
    return totals


def test_switch_layout(sandbox: SandboxSwitch) -> None:
    assert sandbox.unixctl_path.name == f"ovs-vswitchd.{sandbox._pidfile('ovs-vswitchd')}.ctl"
    assert sandbox.unixctl_path.is_socket()
    assert sandbox.db_remote == f"unix:{sandbox.dir}/db.sock"
    assert sorted(sandbox.vsctl("list-br").split()) == ["br0", "br1"]
    for bridge, ports in sandbox.ports.items():
        assert sorted(sandbox.vsctl("list-ports", bridge).split()) == sorted(ports)

    def get(*args: str) -> str:
        return sandbox.vsctl("get", *args).strip().strip('"')

    assert get("Interface", "p1", "type") == "dummy-pmd"
    assert get("Interface", "p1", "ofport") == "1"
    assert get("Interface", "p1", "external_ids:workload") == "web"
    assert get("Interface", "geneve0", "options:remote_ip") == "10.0.0.2"
    assert get("Interface", "vxlan0", "options:key") == "200"
    assert get("Open_vSwitch", ".", "other_config:pmd-perf-metrics") == "true"
    dpif = sandbox.appctl("dpif/show")
    assert "geneve0 60001" in dpif and "vxlan0 60002" in dpif and "(patch: peer=patch-br0)" in dpif
    flows = sandbox.ofctl("dump-flows", "br0")
    assert "learn(table=10" in flows and "ct(commit,zone=1,nat(src=192.168.100.1))" in flows
    assert "NORMAL" in sandbox.ofctl("dump-flows", "br1")
    assert "pmd thread numa_id" in sandbox.appctl("dpif-netdev/pmd-rxq-show")


def test_helpers_raise_source_error(sandbox: SandboxSwitch) -> None:
    with pytest.raises(SourceError, match=r"ovs-vsctl failed: .*no-such-br"):
        sandbox.vsctl("list-ports", "no-such-br")
    with pytest.raises(SourceError, match="ovs-appctl failed"):
        sandbox.appctl("no-such/command")


def test_inject_installs_one_megaflow_per_new_tuple(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    n_new, repeats = 40, 3
    gen = TrafficGenerator(sw, seed=7)
    sent = gen.inject(n_new, repeats)
    assert gen.counters.packets == n_new * (1 + repeats) and gen.counters.new_tuples == n_new
    totals = eventually(
        lambda: (t := perf_totals(sw.appctl("dpif-netdev/pmd-perf-show")))["hits"] >= n_new * repeats and t
    )
    assert totals and totals["upcalls"] >= n_new and totals["hits"] >= n_new * repeats
    dump = sw.appctl("dpctl/dump-flows")
    for flow in sent:
        src, dst = re.search(r"udp\(src=(\d+),dst=(\d+)\)", flow).groups()  # type: ignore[union-attr]
        ip_src = re.search(r"ipv4\(src=([\d.]+)", flow).group(1)  # type: ignore[union-attr]
        matching = [ln for ln in dump.splitlines() if f"src={ip_src}," in ln and f"udp(src={src},dst={dst})" in ln]
        assert len(matching) == 1, flow
        assert "packets:" in matching[0]
    # The learn action recorded every new tuple as an OpenFlow rule in table 10.
    assert sw.ofctl("dump-flows", "br0", "table=10").count("hard_timeout=30") == n_new


def _packets_after(gen: TrafficGenerator, n: int, timeout: float = 60.0) -> float:
    """Wait until the generator has sent ``n`` packets; return when (monotonic)."""
    deadline = time.monotonic() + timeout
    while gen.counters.packets < n:
        assert time.monotonic() < deadline, f"generator sent {gen.counters.packets} of {n} packets"
        time.sleep(0.01)
    return time.monotonic()


def test_generator_runs_at_adjustable_rate(fresh_sandbox: SandboxSwitch) -> None:
    """Paced, not flooding: a loaded machine can only slow the generator down, so the slow phase is checked
    against its ceiling; after the change it must go faster than the old ceiling allows."""
    gen = TrafficGenerator(fresh_sandbox, rate_pps=500, new_flow_fraction=0.2, seed=3)
    t0 = time.monotonic()
    gen.start()
    try:
        t1 = _packets_after(gen, 500)
        slow = gen.counters.packets
        assert slow <= 500 * (t1 - t0) + 20  # at most the rate (plus one batch)
        gen.rate_pps = 4000
        t2 = _packets_after(gen, slow + 2000)
        fast = gen.counters.packets - slow
    finally:
        gen.stop()
    assert fast / (t2 - t1) > 500 * 1.2 and fast <= 4000 * (t2 - t1) + 100
    c = gen.counters
    assert c.errors == 0, c.last_error
    assert 0.1 * c.packets <= c.new_tuples <= 0.35 * c.packets
    totals = perf_totals(fresh_sandbox.appctl("dpif-netdev/pmd-perf-show"))
    assert totals["upcalls"] > 0 and totals["hits"] > 0
    # Some packets went to the geneve tunnel through conntrack NAT, some over the patch port to br1.
    assert "192.168.100.1" in fresh_sandbox.appctl("dpctl/dump-conntrack")
    assert "n_packets=0" not in fresh_sandbox.ofctl("dump-flows", "br1")


def test_kill_and_restart_gives_new_control_socket(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    client = UnixctlClient(lambda: sw.unixctl_path, timeout=2.0, backoff_initial=0.01)
    assert "Open vSwitch" in client.call("version")
    old = sw.unixctl_path
    sw.kill_vswitchd()
    assert not sw.running
    with pytest.raises(SourceError):
        client.call("version")
    sw.start_vswitchd()
    assert sw.unixctl_path != old and sw.unixctl_path.is_socket()
    assert eventually(lambda: _version_or_none(client))
    assert "learn(table=10" in sw.ofctl("dump-flows", "br0")  # rules are reloaded after a restart
    gen = TrafficGenerator(sw, seed=5)
    gen.inject(5)
    assert eventually(lambda: perf_totals(sw.appctl("dpif-netdev/pmd-perf-show"))["upcalls"] >= 5)


def _version_or_none(client: UnixctlClient) -> str | None:
    try:
        return client.call("version")
    except SourceError:
        return None


def test_stop_leaves_nothing(tmp_path: Path) -> None:
    sw = SandboxSwitch(n_ports=1, base_dir=tmp_path)
    sw.start()
    d = sw.dir
    assert len(processes_using(d)) == 2
    sw.stop()
    sw.stop()  # idempotent
    assert not d.exists() and processes_using(d) == []


_OWNER = """
import sys, time
from ovstop.sandbox.switch import SandboxSwitch
sw = SandboxSwitch(n_ports=1, base_dir=sys.argv[1])
sw.start()
print(sw.dir, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL])
def test_owner_death_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert owner.stdout is not None
    d = Path(owner.stdout.readline().strip())
    assert d.is_dir() and len(processes_using(d)) == 2
    owner.send_signal(sig)
    owner.wait(timeout=15)
    assert eventually(lambda: processes_using(d) == []), "ovs daemons outlived their owner"
    if sig == signal.SIGKILL:
        # Nothing ran in the owner; the daemons died by PDEATHSIG, the next sandbox sweeps the directory.
        assert sweep_stale(tmp_path) == [d]
    assert not d.exists()


def test_bad_port_count_is_one_line_error() -> None:
    with pytest.raises(OvstopError, match="port count"):
        SandboxSwitch(n_ports=0)
