"""In-guest USDT scenario (Debian 12): ovstop's recv_upcall and flow_operation events, captured live.

Run as root inside the Debian 12 guest (scripts/guest/run.sh -- python3 tests/guest/scenario_usdt.py).
Debian builds ovs-vswitchd without USDT probes, so the image carries one built with them from Debian's own
openvswitch-source, same version (scripts/guest/build-ovs-usdt.sh), and OVS's upcall_monitor.py from that
source tree. The kernel-datapath test switch (kernel_switch.py) runs that binary; ovstop's capture runs its
default probe set (the kernel upcall hooks and the two USDT probes) while upcall_monitor.py runs side by
side. After ``revalidator/purge``, N new 5-tuples (each one upcall: the ``learn`` rule makes every megaflow
exact on the 5-tuple) must give:
  * N new datapath flows in ``dpctl/dump-flows`` (the truth, from OVS),
  * N recv_upcall events (MISS) and N flow_operation put events,
  * each recv_upcall and each put linked by queue_id to a different kernel upcall of this burst (ovstop's
    correlator, which links them as Retis does), with no orphan,
  * upcall_monitor.py seeing the same N upcalls (count and packet sizes),
and ``ovstop --check`` must list recv_upcall and flow_operation as available on that binary.
Under emulation OVS 3.1's ovs-vswitchd can start with every upcall lost (kernel_switch.upcalls_lost): when the
whole burst is counted lost by the datapath and none of it reached ovs-vswitchd, the daemon is restarted once
("USDT-WARN ..."), both tools are attached to the new pid and everything runs again; a second loss fails.
Prints "USDT-OK <check>" per check, "USDT-PASS" at the end; exits 1 on the first failure.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kernel_switch import (
    flow_packets,
    kernel_switch,
    purge,
    restart_vswitchd,
    send_udp,
    sh,
    upcalls_lost,
    vswitchd_pid,
)
from scenario_lib import ScenarioFailure, capturing, checks, run, stopped

from ovstop.ebpf.capability import capabilities, probe_system
from ovstop.ebpf.capture import CaptureThread
from ovstop.ebpf.hooks import Kind
from ovstop.events.correlator import Correlator
from ovstop.events.pipeline import EventPipeline
from ovstop.events.schema import OvsEvent
from ovstop.events.store import EventStore

USDT_DIR = Path("/opt/ovs-usdt")
VSWITCHD = USDT_DIR / "ovs-vswitchd"
UPCALL_MONITOR = USDT_DIR / "upcall_monitor.py"
N_TUPLES = 8
COMPILE_TIMEOUT = 600.0  # bcc compiles under software emulation
EVENT_TIMEOUT = 60.0
# upcall_monitor.py's event line: TIME CPU COMM PID DPIF_NAME TYPE PKT_LEN FLOW_KEY_LEN
MONITOR_LINE = re.compile(r"^(\d+\.\d+)\s+\d+\s+\S+\s+\d+\s+(\S+)\s+(\d+)\s+(\d+)\s+\d+\s*$", re.M)

ok, expect = checks("USDT")


class UpcallsLost(ScenarioFailure):
    """The datapath lost the whole burst's upcalls: none reached ovs-vswitchd (a restart may cure it)."""


def wait_for(cond: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    """Poll ``cond`` until it holds; ScenarioFailure saying ``what()`` when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise ScenarioFailure(f"after {timeout:g} s: {what()}")
        time.sleep(0.1)


class Events:
    """ovstop's events as the live pipeline keeps them (held back, correlated, stored), as the TUI reads them."""

    def __init__(self) -> None:
        self.pipeline = EventPipeline(Correlator(), EventStore())
        self._lock = threading.Lock()

    def __call__(self, event: OvsEvent) -> None:
        with self._lock:
            self.pipeline(event)

    @property
    def correlator(self) -> Correlator:
        return self.pipeline.correlator

    def _kept(self) -> list[OvsEvent]:
        with self._lock:
            return self.pipeline.store.snapshot()

    def timeline(self, since: int) -> str:
        """Every event from ``since`` on, in delivery order: kind, time, queue_id, series."""
        rows = [f"{e.event_type}/{e.op_type or ''} t={e.timestamp} q={e.queue_id} id={e.corr_id}"
                for e in self._kept() if e.timestamp >= since]  # fmt: skip
        return "\n" + "\n".join(rows)

    def of(self, kind: str, since: int, op: str | None = None) -> list[OvsEvent]:
        return [e for e in self._kept() if e.event_type == kind and e.timestamp >= since and e.op_type == op]


class UpcallMonitor:
    """OVS's utilities/usdt-scripts/upcall_monitor.py on ``pid``, its output in a file."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        with out.open("wb") as sink:
            argv = [sys.executable, "-u", str(UPCALL_MONITOR), "--pid", str(pid)]
            self.proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def ready(self) -> bool:
        """Its header is printed once its program is compiled and attached."""
        expect(self.proc.poll() is None, f"upcall_monitor.py exited {self.proc.returncode}: {self.text()}")
        return self.text().startswith("TIME ")

    def upcalls(self, since_ns: int) -> list[tuple[str, int, int]]:
        """(dpif name, upcall type, packet length) of each upcall it printed from ``since_ns`` on."""
        return [
            (m.group(2), int(m.group(3)), int(m.group(4)))
            for m in MONITOR_LINE.finditer(self.text())
            if float(m.group(1)) * 1e9 >= since_ns
        ]

    def stop(self) -> None:
        """Interrupt it as a user would (Ctrl-C): it reports dropped events on its way out."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)


def check_binary(pid: int) -> None:
    exe = os.readlink(f"/proc/{pid}/exe")
    expect(exe == str(VSWITCHD), f"ovs-vswitchd runs {exe}, not the USDT build {VSWITCHD}")
    version = subprocess.run([exe, "--version"], check=True, capture_output=True, text=True).stdout.splitlines()[0]
    ok("binary", f"pid {pid} runs {exe}: {version}")
    table = subprocess.run([sys.executable, "-m", "ovstop", "--check"], capture_output=True, text=True)
    print(table.stdout, flush=True)
    for name in ("recv_upcall", "flow_operation"):
        row = re.search(rf"^{name}\s+(yes|no)\s+(.*)$", table.stdout, re.M)
        expect(row is not None and row.group(1) == "yes", f"ovstop --check: {row.group(0) if row else table}")
    ok("check", "ovstop --check: recv_upcall and flow_operation available")


def scenario(events: Events, monitor: UpcallMonitor) -> None:
    purge()
    wait_for(lambda: not flow_packets(), 30, lambda: f"datapath flows left after revalidator/purge: {flow_packets()}")
    orphans = events.correlator.stats().orphans
    lost = upcalls_lost()
    t0 = time.monotonic_ns()
    send_udp(list(range(20000, 20000 + N_TUPLES)), 5000)

    def counts() -> dict[str, int]:
        kinds = ("upcall", "upcall_enqueue", "upcall_return", "recv_upcall")
        return {
            **{kind: len(events.of(kind, t0)) for kind in kinds},
            "flow_operation put": len(events.of("flow_operation", t0, "put")),
            "flow_operation exec": len(events.of("flow_operation", t0, "exec")),
            "upcall_monitor.py": len(monitor.upcalls(t0)),
            "dump-flows": len(flow_packets()),
            "dpctl/show lost": upcalls_lost() - lost,
        }

    def arrived() -> bool:
        now = counts()
        return all(
            now[k] >= N_TUPLES for k in ("upcall_return", "recv_upcall", "flow_operation put", "upcall_monitor.py")
        )

    def stuck() -> str:
        dump = sh("ovs-appctl", "dpctl/dump-flows", "-m")
        return f"events since the burst {counts()}; upcall_monitor.py: {monitor.text()[-2000:]}; flows: {dump}"

    def all_lost() -> bool:
        """OVS's own counters: the datapath lost every upcall of the burst, ovs-vswitchd got none of them."""
        return not events.of("recv_upcall", t0) and upcalls_lost() - lost >= N_TUPLES and not flow_packets()

    wait_for(lambda: arrived() or all_lost(), EVENT_TIMEOUT, stuck)
    if all_lost():
        raise UpcallsLost(
            f"the datapath lost all {N_TUPLES} upcalls of the burst, ovs-vswitchd received none: {counts()}"
        )
    flows = flow_packets()
    expect(len(flows) == N_TUPLES, f"{len(flows)} datapath flows from v1 after {N_TUPLES} new 5-tuples: {flows}")
    ok("truth", f"dpctl/dump-flows: {len(flows)} new ufids")

    upcalls = events.of("upcall", t0)
    recvs = events.of("recv_upcall", t0)
    puts = events.of("flow_operation", t0, "put")
    expect(len(upcalls) == N_TUPLES, f"{len(upcalls)} kernel upcalls")
    expect(len(recvs) == N_TUPLES, f"{len(recvs)} recv_upcall events for {N_TUPLES} new 5-tuples")
    expect(all(e.upcall_type == 0 for e in recvs), f"recv_upcall types {[e.upcall_type for e in recvs]} (0 = MISS)")
    expect(len(puts) == N_TUPLES, f"{len(puts)} flow_operation put events for {N_TUPLES} new 5-tuples")
    ok("events", f"{len(recvs)} recv_upcall (MISS), {len(puts)} flow_operation put")

    enqueued = {e.queue_id for e in events.of("upcall_enqueue", t0)}
    for name, usdt in (("recv_upcall", recvs), ("flow_operation put", puts)):
        expect({e.queue_id for e in usdt} == enqueued, f"{name} queue_ids are not the kernel's: {events.timeline(t0)}")
    kernel_ids = {e.corr_id for e in upcalls}
    for name, usdt in (("recv_upcall", recvs), ("flow_operation put", puts)):
        ids = {e.corr_id for e in usdt}
        expect(ids == kernel_ids, f"{name} not linked to the kernel upcalls: {events.timeline(t0)}")
    orphans = events.correlator.stats().orphans - orphans
    expect(orphans == 0, f"{orphans} events named a queue_id or upcall the correlator never saw")
    late = events.pipeline.holdback.released_late
    ok("correlation", f"each recv_upcall and put linked by queue_id to its own kernel upcall ({N_TUPLES} series; "
       f"{late} userspace events overtook their enqueue and waited for it)")  # fmt: skip

    seen = monitor.upcalls(t0)
    expect(len(seen) == N_TUPLES, f"upcall_monitor.py printed {len(seen)} upcalls, ovstop {len(recvs)}")
    expect(all(dpif == "system@ovs-system" and kind == 0 for dpif, kind, _ in seen), f"upcall_monitor.py: {seen}")
    sizes = sorted(size for _, _, size in seen)
    expect(sizes == sorted(e.pkt_size or 0 for e in recvs), f"packet sizes: monitor {sizes}, ovstop {recvs}")
    ok("upcall_monitor", f"upcall_monitor.py counted {len(seen)} upcalls, ovstop {len(recvs)}; sizes {sizes}")


def main() -> int:
    return run("USDT", body)


def body() -> None:
    with kernel_switch(str(VSWITCHD)) as rundir, tempfile.TemporaryDirectory() as tmp:
        pid = vswitchd_pid(rundir)
        try:
            live(pid, Path(tmp))
        except UpcallsLost as exc:
            new = restart_vswitchd(rundir, str(VSWITCHD))
            print(f"USDT-WARN ovs-vswitchd restarted (pid {pid} -> {new}), run again on the new pid: {exc}", flush=True)
            live(new, Path(tmp))  # a second loss fails the scenario


def live(pid: int, tmp: Path) -> None:
    """Every check on ovs-vswitchd ``pid``, with upcall_monitor.py and ovstop's capture attached to it."""
    check_binary(pid)
    monitor = UpcallMonitor(pid, tmp / f"upcall_monitor.{pid}.out")
    try:
        started = time.monotonic()
        wait_for(monitor.ready, COMPILE_TIMEOUT, lambda: f"upcall_monitor.py did not start: {monitor.text()}")
        ok("upcall_monitor_attach", f"in {time.monotonic() - started:.1f} s")
        view = probe_system(pid)
        caps = {c.name: c for c in capabilities(view)}
        for name in ("recv_upcall", "flow_operation", "upcall", "upcall_enqueue", "upcall_return"):
            expect(caps[name].available, f"{name}: {caps[name].reason}")
        events = Events()
        started = time.monotonic()
        with capturing(CaptureThread(events, view=view, max_events_per_sec=0), COMPILE_TIMEOUT) as capture:
            usdt = sorted(h.target for h in capture.attached if h.kind is Kind.USDT)
            ok("attach", f"{len(capture.attached)} hooks in {time.monotonic() - started:.1f} s; USDT {usdt}")
            scenario(events, monitor)
            expect(capture.events_lost == 0, f"ovstop lost {capture.events_lost} events")
            stopped(capture)
        monitor.stop()
        expect("WARNING" not in monitor.text(), f"upcall_monitor.py: {monitor.text().splitlines()[-3:]}")
        ok("detach", "probes detached; no events lost by either")
    finally:
        monitor.stop()


if __name__ == "__main__":
    sys.exit(main())
