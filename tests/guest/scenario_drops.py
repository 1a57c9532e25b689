"""In-guest kernel drops scenario: ovstop's count by OVS drop reason against the dropping datapath flow.

Run as root inside the QEMU guest (scripts/guest/run.sh -- python3 tests/guest/scenario_drops.py).
The kernel switch of kernel_switch.py drops everything but UDP from v1 (``priority=0,actions=drop``).
From ns2, UDP to 10.0.0.1 (a static ARP entry, IPv6 off: no other traffic from v2) hits that rule: the
first packet is upcalled and installs a datapath flow from ``in_port(v2)`` whose action drops; the next N
are dropped by the kernel on that flow.

On a kernel with OVS drop reasons (Linux 6.4+, by uname: Debian 13's 6.12) ``--check`` must say
kernel_drops yes, and ovstop's ``ovs_vswitchd_kernel_drops_total{port="v2"}`` must grow by exactly N, all
under one reason (the explicit drop action's, or the last-action one on a datapath without it), equal to
the growth of that flow's packet count in ``ovs-appctl dpctl/dump-flows -m``. On a kernel without them
(Debian 12's 6.1), ``--check``'s kernel_drops row and the collector's ``kernel_drops`` table must both say
off, with the same reason. Prints "DROPS-OK <check>" per check and "DROPS-PASS", or "DROPS-FAIL <why>".
"""

from __future__ import annotations

import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kernel_switch import FAKE_MAC, kernel_switch, sh
from scenario_lib import capturing, checks, probed, run, stopped

from ovstop.collect.base import Sources, Tables
from ovstop.ebpf.capture import CaptureThread
from ovstop.ebpf.collector import EbpfCollector
from ovstop.ebpf.kernel_drops import KERNEL_DROPS

N = 25
DROP_REASONS = ("OVS_DROP_EXPLICIT", "OVS_DROP_LAST_ACTION")
# Sends argv[1] datagrams from 10.0.0.2:30000 to 10.0.0.1:5000 (in ns2).
_SENDER = (
    "import socket,sys\n"
    "c=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); c.bind(('10.0.0.2',30000))\n"
    "for _ in range(int(sys.argv[1])): c.sendto(b'x'*64,('10.0.0.1',5000))\n"
)

ok, expect = checks("DROPS")


def send(count: int) -> None:
    sh("ip", "netns", "exec", "ns2", sys.executable, "-c", _SENDER, str(count))


def drop_flow_packets() -> int | None:
    """Packets of the datapath flow from v2 (the only one: the priority-0 drop rule's), or None before it exists."""
    dump = sh("ovs-appctl", "dpctl/dump-flows", "-m")
    found = re.findall(r"in_port\(v2\).*?packets:(\d+),.*actions:drop$", dump, re.M)
    expect(len(found) <= 1, f"more than one datapath flow from v2:\n{dump}")
    return int(found[0]) if found else None


def until(what: str, check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        expect(time.monotonic() < deadline, f"{what}: not within {seconds:g} s")
        time.sleep(0.1)


def counted(collector: EbpfCollector) -> tuple[dict[str, float], dict[str, object]]:
    """ovstop's drops on port v2 by reason, and its kernel_drops status row, from one collector round."""
    tables = Tables()
    samples = collector.collect(Sources(), tables)
    drops = {
        dict(s.labels)["reason"]: float(s.value)  # type: ignore[arg-type]
        for s in samples
        if s.spec is KERNEL_DROPS and dict(s.labels)["port"] == "v2"
    }
    return drops, tables.rows["kernel_drops"][0]


def scenario(capture: CaptureThread, check_row: tuple[bool, str]) -> None:
    collector = EbpfCollector(capture)
    has_reasons = tuple(int(x) for x in platform.release().split(".")[:2]) >= (6, 4)
    drops, status = counted(collector)
    if not has_reasons:
        expect(not check_row[0], f"--check says kernel_drops yes on {platform.release()}")
        expect(status == {"counted": False, "reason": check_row[1]}, f"collector {status}, --check {check_row}")
        expect(not drops, f"drops counted on a kernel without drop reasons: {drops}")
        ok("off", f"{platform.release()}: {check_row[1]}")
        return
    expect(check_row[0], f"--check kernel_drops: {check_row[1]}")
    expect(status == {"counted": True, "reason": ""}, f"collector kernel_drops {status}")
    sh("ip", "-n", "ns2", "neigh", "replace", "10.0.0.1", "lladdr", FAKE_MAC, "dev", "v2p")
    send(1)  # upcalled: installs the dropping datapath flow
    until("the drop flow from v2 in dpctl/dump-flows", lambda: drop_flow_packets() is not None)
    before, flow_before = counted(collector)[0], drop_flow_packets() or 0
    send(N)
    until(f"{N} more packets on the drop flow", lambda: (drop_flow_packets() or 0) >= flow_before + N)
    flow_delta = (drop_flow_packets() or 0) - flow_before
    after = counted(collector)[0]
    grew = {r: after[r] - before.get(r, 0.0) for r in after if after[r] != before.get(r, 0.0)}
    expect(flow_delta == N, f"dump-flows counted {flow_delta} packets on the drop flow for {N} sent")
    expect(len(grew) == 1 and next(iter(grew)) in DROP_REASONS, f"reasons that grew on v2: {grew}")
    reason, delta = next(iter(grew.items()))
    expect(delta == N == flow_delta, f"ovstop counted {delta} {reason} drops on v2, dump-flows {flow_delta}")
    ok("counted", f"{reason} port v2: +{delta:g} = {N} sent = dump-flows packets +{flow_delta}")


def main() -> int:
    return run("DROPS", body)


def body() -> None:
    with kernel_switch():
        view, caps = probed()
        with capturing(CaptureThread(lambda _event: None, view=view, max_events_per_sec=0), 600) as capture:
            scenario(capture, (caps["kernel_drops"].available, caps["kernel_drops"].reason))
            stopped(capture)
            expect(capture.read_kernel_drops() is None, "the drops program outlived capture")
            ok("detach", capture.drops_reason)


if __name__ == "__main__":
    sys.exit(main())
