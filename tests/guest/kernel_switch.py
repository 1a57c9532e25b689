"""The in-guest test switch shared by the guest scenarios and the guest benchmark (run as root in the guest).

A private Open vSwitch (ovsdb-server + ovs-vswitchd with OVS_RUNDIR/DBDIR/LOGDIR/SYSCONFDIR in a temp dir)
on the kernel datapath: bridge br0 with veth pairs v1/v2 into namespaces ns1 (10.0.0.1) and ns2
(10.0.0.2). ns1 reaches 10.0.0.2 through a static ARP entry for a MAC that ns2 ignores, and IPv6 is off,
so nothing answers and the only traffic is what a scenario sends. OpenFlow rules:
  * UDP from v1 to :data:`NAT_PORT` goes through ct(commit,zone=5,nat(dst=10.0.0.2-10.0.0.3:7000-7010));
  * other UDP from v1 runs a ``learn`` keyed on the 5-tuple (so every megaflow is exact on it: one new
    5-tuple, one upcall) and is output to v2;
  * everything else is dropped.
``max-idle`` is raised so datapath flows outlive a slow (emulated) bcc compile.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from scenario_lib import ScenarioFailure

FAKE_MAC = "02:00:00:00:00:99"
NAT_PORT = 9999
OVS_DIRS = ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR")
_LEARN = (
    "learn(table=10,idle_timeout=600,eth_type=0x800,nw_proto=17,NXM_OF_IP_SRC[],NXM_OF_IP_DST[],"
    "NXM_OF_UDP_SRC[],NXM_OF_UDP_DST[],output:NXM_OF_IN_PORT[])"
)
# Sends argv[2] datagrams of 64 bytes from each source port argv[3:] of 10.0.0.1 to 10.0.0.2:argv[1].
_SENDER = (
    "import socket,sys\n"
    "for p in map(int,sys.argv[3:]):\n"
    " c=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); c.bind(('10.0.0.1',p))\n"
    " for _ in range(int(sys.argv[2])): c.sendto(b'x'*64,('10.0.0.2',int(sys.argv[1])))\n"
    " c.close()\n"
)


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def start_ovs(rundir: Path, vswitchd: str = "ovs-vswitchd") -> None:
    """Start the private OVS in ``rundir`` (exported in os.environ for ovs-* and ovstop) and build br0.

    ``vswitchd`` is the ovs-vswitchd binary to run (Debian's by default).
    """
    for var in OVS_DIRS:
        os.environ[var] = str(rundir)
    sh("ovsdb-tool", "create", f"{rundir}/conf.db", "/usr/share/openvswitch/vswitch.ovsschema")
    sh("ovsdb-server", f"{rundir}/conf.db", f"--remote=punix:{rundir}/db.sock", "--pidfile", "--detach",
       "--log-file", "-vconsole:off")  # fmt: skip
    sh("ovs-vsctl", "--no-wait", "init")
    start_vswitchd(vswitchd)
    sh("ovs-vsctl", "set", "Open_vSwitch", ".", "other_config:max-idle=600000")
    sh("ovs-vsctl", "add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=system")
    for i in (1, 2):
        sh("ip", "netns", "add", f"ns{i}")
        # Explicit MACs: early in an emulated boot the kernel's random ones can repeat, which breaks ARP.
        sh(
            "ip",
            "link",
            "add",
            f"v{i}",
            "address",
            f"02:00:00:00:0{i}:01",
            "type",
            "veth",
            "peer",
            "name",
            f"v{i}p",
            "address",
            f"02:00:00:00:0{i}:02",
        )
        sh("sysctl", "-qw", f"net.ipv6.conf.v{i}.disable_ipv6=1")
        sh("ip", "link", "set", f"v{i}p", "netns", f"ns{i}")
        sh("ip", "netns", "exec", f"ns{i}", "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "-n", f"ns{i}", "addr", "add", f"10.0.0.{i}/24", "dev", f"v{i}p")
        sh("ip", "-n", f"ns{i}", "link", "set", f"v{i}p", "up")
        sh("ip", "link", "set", f"v{i}", "up")
        sh("ovs-vsctl", "add-port", "br0", f"v{i}")
    sh("ip", "-n", "ns1", "neigh", "replace", "10.0.0.2", "lladdr", FAKE_MAC, "dev", "v1p")
    add_rules()


def start_vswitchd(vswitchd: str) -> None:
    """Start ``vswitchd`` as the switch's ovs-vswitchd; ``--detach`` returns once it has applied the database."""
    sh(vswitchd, "--pidfile", "--detach", "--log-file", "-vconsole:off")


def add_rules() -> None:
    """The OpenFlow rules of br0 (above), in place of any; ovs-vswitchd keeps them in memory only."""
    sh("ovs-ofctl", "del-flows", "br0")
    sh("ovs-ofctl", "add-flow", "br0", f"priority=100,udp,in_port=v1,actions={_LEARN},output:v2")
    sh("ovs-ofctl", "add-flow", "br0",
       f"priority=200,udp,in_port=v1,tp_dst={NAT_PORT},"
       "actions=ct(commit,zone=5,nat(dst=10.0.0.2-10.0.0.3:7000-7010)),output:v2")  # fmt: skip
    sh("ovs-ofctl", "add-flow", "br0", "priority=0,actions=drop")


def vswitchd_pid(rundir: Path) -> int:
    """The pid of the switch's ovs-vswitchd (its pidfile)."""
    return int((rundir / "ovs-vswitchd.pid").read_text())


def restart_vswitchd(rundir: Path, vswitchd: str = "ovs-vswitchd", timeout: float = 60.0) -> int:
    """Stop the switch's ovs-vswitchd and start ``vswitchd`` in its place; the new pid.

    ``ovs-appctl exit`` (without ``--cleanup``) leaves the kernel datapath, its ports and OVSDB as they are;
    the new daemon opens its handlers' netlink sockets afresh and hands them to the datapath (the cure when
    the first one lost every upcall, see :func:`upcalls_lost`), and gets br0's OpenFlow rules again.
    """
    old = vswitchd_pid(rundir)
    sh("ovs-appctl", "exit")
    pidfile = rundir / "ovs-vswitchd.pid"
    deadline = time.monotonic() + timeout
    while pidfile.exists():  # removed by the daemon on its way out
        if time.monotonic() > deadline:
            raise ScenarioFailure(f"ovs-vswitchd {old} still running {timeout:g} s after ovs-appctl exit")
        time.sleep(0.1)
    start_vswitchd(vswitchd)
    add_rules()
    return vswitchd_pid(rundir)


def stop_ovs(rundir: Path) -> None:
    for daemon in ("ovs-vswitchd", "ovsdb-server"):
        pidfile = rundir / f"{daemon}.pid"
        if pidfile.exists():
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)
    for i in (1, 2):
        subprocess.run(["ip", "netns", "del", f"ns{i}"], check=False, capture_output=True)


@contextlib.contextmanager
def kernel_switch(vswitchd: str = "ovs-vswitchd") -> Iterator[Path]:
    """``with kernel_switch() as rundir:`` the switch above, stopped on the way out."""
    sh("modprobe", "openvswitch")
    rundir = Path(tempfile.mkdtemp(prefix="ovs-kernel."))
    try:
        start_ovs(rundir, vswitchd)
        yield rundir
    finally:
        stop_ovs(rundir)


def dp_ports() -> dict[str, int]:
    """Datapath port numbers by name (``dpctl/show``)."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"port (\d+): (\S+)", sh("ovs-appctl", "dpctl/show"))}


def upcalls_lost() -> int:
    """The kernel datapath's ``lost`` count (``dpctl/show``): packets whose upcall never reached ovs-vswitchd.

    Under emulation an ovs-vswitchd (seen with OVS 3.1) can start without its handlers' sockets reaching the
    datapath: every upcall is then lost, no datapath flow is installed, and only a restart
    (:func:`restart_vswitchd`) cures it.
    """
    show = sh("ovs-appctl", "dpctl/show")
    lost = re.search(r"^system@ovs-system:\n  lookups: hit:\d+ missed:\d+ lost:(\d+)$", show, re.M)
    if lost is None:
        raise ScenarioFailure(f"dpctl/show: no lookups line for system@ovs-system: {show}")
    return int(lost.group(1))


def flow_packets() -> dict[str, int]:
    """Packet count per UFID of the datapath flows from v1 (``dpctl/dump-flows -m``)."""
    dump = sh("ovs-appctl", "dpctl/dump-flows", "-m")
    return {
        m.group(1): int(m.group(2)) for m in re.finditer(r"ufid:([0-9a-f-]+),.*?in_port\(v1\).*?packets:(\d+)", dump)
    }


def flow_recirc_ids() -> set[int]:
    """The recirc_id of every datapath flow from v1 (``dpctl/dump-flows -m``)."""
    dump = sh("ovs-appctl", "dpctl/dump-flows", "-m")
    return {int(m.group(1), 0) for m in re.finditer(r"recirc_id\((0x[0-9a-f]+|\d+)\),.*?in_port\(v1\)", dump)}


def purge() -> None:
    """Empty the datapath: ``revalidator/purge`` (``dpctl/del-flows`` leaves ukeys behind)."""
    sh("ovs-appctl", "revalidator/purge")


def send_udp(src_ports: list[int], dst_port: int, repeats: int = 1) -> None:
    """From ns1, ``repeats`` datagrams from each source port to 10.0.0.2:``dst_port``."""
    sh("ip", "netns", "exec", "ns1", sys.executable, "-c", _SENDER, str(dst_port), str(repeats),
       *map(str, src_ports))  # fmt: skip
