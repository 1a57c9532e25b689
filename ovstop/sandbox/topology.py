"""What the sandbox switch looks like: bridges, ports, addresses and OpenFlow rules.

Kept apart from the process handling so that the traffic generator addresses packets with the same
plan the switch was configured from. Addressing: pmd port ``p<k>`` (OpenFlow port ``k``) owns
``10.<1 + k // 256>.<k % 256>.0/24`` and MAC ``02:00:00:00:<k>``; traffic to the ``172.16/16``,
``172.18/16`` and ``172.17/16`` ranges leaves through the geneve tunnel, the vxlan tunnel and the
patch port to ``br1``; ``10.99/16`` is dropped.

Every IP packet entering ``br0`` passes a ``learn`` action keyed on its 5-tuple, which makes the
datapath megaflow exact on that 5-tuple: one new 5-tuple gives exactly one upcall and one megaflow,
repeats of it hit that megaflow (or the EMC).
"""

from __future__ import annotations

from dataclasses import dataclass

from ovstop.errors import OvstopError

BRIDGE = "br0"
SIDE_BRIDGE = "br1"
GENEVE = ("geneve0", 60001, "10.0.0.2", "100")
VXLAN = ("vxlan0", 60002, "10.0.0.3", "200")
PATCH_OFPORT = 60003
UNDERLAY_IP = "10.0.0.1/24"
SIDE_PORTS = ("d1", "d2")
MAX_PMD_PORTS = 32

TUNNEL_NET = "172.16"
VXLAN_NET = "172.18"
SIDE_NET = "172.17"
DROP_NET = "10.99"

_LABELS: tuple[dict[str, str], ...] = (
    {"vpc": "vpc-a", "workload": "web"},
    {"vpc": "vpc-a", "workload": "db"},
    {"vpc": "vpc-b"},
    {},
)


def mac_of(k: int) -> str:
    """The MAC address of pmd port ``k``'s workload."""
    return f"02:00:00:00:{(k >> 8) & 0xFF:02x}:{k & 0xFF:02x}"


def subnet_of(k: int) -> str:
    """The first three octets of the /24 that pmd port ``k`` owns."""
    return f"10.{1 + k // 256}.{k % 256}"


@dataclass(frozen=True)
class Topology:
    """The sandbox plan for ``n_ports`` ports on ``br0``.

    The first :data:`MAX_PMD_PORTS` are dummy-pmd ports (none when ``pmd`` is false), the rest plain dummy
    ports polled by the main thread: ovs-vswitchd 3.1 reconfigures its pmd threads once per added pmd
    port, which costs seconds per port beyond a hundred (100 pmd ports start in 12 s, 200 in 51 s).
    """

    n_ports: int = 4
    pmd: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.n_ports <= 10000:
            raise OvstopError(f"sandbox port count must be 1..10000, got {self.n_ports}")

    @property
    def pmd_ports(self) -> list[str]:
        return [f"p{k}" for k in range(1, self.n_ports + 1)]

    @property
    def ports(self) -> dict[str, list[str]]:
        """Non-internal ports per bridge."""
        return {
            BRIDGE: [*self.pmd_ports, GENEVE[0], VXLAN[0], "patch-br1"],
            SIDE_BRIDGE: [*SIDE_PORTS, "patch-br0"],
        }

    def port_type(self, k: int) -> str:
        return "dummy-pmd" if self.pmd and k <= MAX_PMD_PORTS else "dummy"

    def vsctl_args(self, pmd_cpu_mask: str) -> list[str]:
        """One ``ovs-vsctl`` transaction (``--``-separated commands) that builds the whole switch."""
        cmds: list[list[str]] = [
            [
                "set",
                "Open_vSwitch",
                ".",
                "other_config:pmd-perf-metrics=true",
                f"other_config:pmd-cpu-mask={pmd_cpu_mask}",
                # pmd threads busy-poll; letting them sleep when idle keeps the sandbox cheap.
                "other_config:pmd-maxsleep=1000",
            ],
            ["add-br", BRIDGE],
            ["set", "Bridge", BRIDGE, "datapath_type=netdev", "protocols=OpenFlow10,OpenFlow13,OpenFlow15"],
            ["add-br", SIDE_BRIDGE],
            ["set", "Bridge", SIDE_BRIDGE, "datapath_type=netdev"],
        ]
        for k, name in enumerate(self.pmd_ports, start=1):
            iface = ["set", "Interface", name, f"type={self.port_type(k)}", f"ofport_request={k}"]
            iface += [f"external_ids:{key}={val}" for key, val in _LABELS[(k - 1) % len(_LABELS)].items()]
            cmds += [["add-port", BRIDGE, name], iface]
        for name, ofport, remote, key in (GENEVE, VXLAN):
            kind = name.rstrip("0")
            cmds += [
                ["add-port", BRIDGE, name],
                [
                    "set",
                    "Interface",
                    name,
                    f"type={kind}",
                    f"ofport_request={ofport}",
                    f"options:remote_ip={remote}",
                    f"options:key={key}",
                ],
            ]
        cmds += [
            ["add-port", BRIDGE, "patch-br1"],
            ["set", "Interface", "patch-br1", "type=patch", "options:peer=patch-br0", f"ofport_request={PATCH_OFPORT}"],
            ["add-port", SIDE_BRIDGE, "patch-br0"],
            ["set", "Interface", "patch-br0", "type=patch", "options:peer=patch-br1"],
        ]
        for name in SIDE_PORTS:
            cmds += [["add-port", SIDE_BRIDGE, name], ["set", "Interface", name, "type=dummy"]]
        args: list[str] = []
        for cmd in cmds:
            args += ["--", *cmd]
        return args

    def flow_rules(self) -> list[str]:
        """``br0``'s OpenFlow rules, one ``ovs-ofctl add-flows`` line each (br1 keeps its NORMAL rule)."""
        learn = (
            "learn(table=10,hard_timeout=30,priority=1,eth_type=0x800,nw_proto={proto},"
            "NXM_OF_IP_SRC[],NXM_OF_IP_DST[],{l4}_SRC[],{l4}_DST[],output:NXM_OF_IN_PORT[])"
        )
        rules = [
            "table=0,priority=50,ip,actions=resubmit(,1)",
            "table=0,priority=0,actions=normal",
            f"table=1,priority=200,udp,actions={learn.format(proto=17, l4='NXM_OF_UDP')},resubmit(,2)",
            f"table=1,priority=200,tcp,actions={learn.format(proto=6, l4='NXM_OF_TCP')},resubmit(,2)",
            "table=1,priority=0,actions=resubmit(,2)",
            f"table=2,priority=300,ip,nw_dst={DROP_NET}.0.0/16,actions=drop",
            f"table=2,priority=200,ip,nw_dst={TUNNEL_NET}.0.0/16,"
            f"actions=ct(commit,zone=1,nat(src=192.168.100.1)),output:{GENEVE[1]}",
            f"table=2,priority=200,ip,nw_dst={VXLAN_NET}.0.0/16,actions=output:{VXLAN[1]}",
            f"table=2,priority=200,ip,nw_dst={SIDE_NET}.0.0/16,actions=output:{PATCH_OFPORT}",
            "table=2,priority=0,actions=drop",
        ]
        rules += [
            f"table=2,priority=100,ip,nw_dst={subnet_of(k)}.0/24,actions=output:{k}" for k in range(1, self.n_ports + 1)
        ]
        return rules

    def underlay_commands(self) -> list[tuple[str, ...]]:
        """``ovs-appctl`` commands that give the tunnels a route and ARP entry, so they encapsulate."""
        cmds: list[tuple[str, ...]] = [
            ("netdev-dummy/ip4addr", BRIDGE, UNDERLAY_IP),
            ("ovs/route/add", UNDERLAY_IP.replace(".1/", ".0/"), BRIDGE),
        ]
        for i, (_, _, remote, _) in enumerate((GENEVE, VXLAN)):
            cmds.append(("tnl/arp/set", BRIDGE, remote, f"02:00:00:ff:00:{i + 2:02x}"))
        return cmds
