"""A private OVN next to a :class:`SandboxSwitch`: NB and SB ovsdb-servers, ovn-northd and one
ovn-controller managing ``br-int`` of the sandbox switch, all under ``<switch dir>/ovn``.

It builds two tenants (``vpc-a``, ``vpc-b``): per tenant a logical router and two logical switches
(tagged ``external_ids:vpc``), VIF ports bound on the local chassis through ``br-int`` interfaces, one
known ACL (vpc-a-ls0 drops TCP port 23 from its ports), and extra chassis faked in SB (``chassis-add`` plus
a ``Chassis_Private`` row, as an ovn-controller would write) with ports bound to them. Nothing touches
system services: every daemon gets explicit pidfile, log, unixctl and database paths inside the directory,
and OVS_*/OVN_* point there.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ovstop.errors import SourceError
from ovstop.sandbox.process import Service, check_alive, run_tool, spawn, terminate, wait_until
from ovstop.sandbox.switch import SandboxSwitch

NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
LOCAL_CHASSIS = "chassis-local"
LOCAL_ENCAP_IP = "10.0.0.1"
TENANTS = ("vpc-a", "vpc-b")
ACL_PRIORITY = 1001
ACL_MATCH = "ip4 && tcp.dst == 23"


@dataclass(frozen=True)
class FakeChassis:
    name: str
    ip: str


# chassis-2 sits behind the sandbox switch's own geneve0 tunnel (remote_ip 10.0.0.2).
FAKE_CHASSIS = (FakeChassis("chassis-2", "10.0.0.2"), FakeChassis("chassis-3", "10.0.0.4"))


class SandboxOvn(Service):
    """Private OVN control plane plus ovn-controller for ``switch``; stop it before the switch."""

    def __init__(self, switch: SandboxSwitch, vifs_per_switch: int = 2) -> None:
        self.switch = switch
        self.vifs_per_switch = vifs_per_switch
        self.dir = switch.dir / "ovn"
        self.nb_remote = f"unix:{self.dir / 'nb.sock'}"
        self.sb_remote = f"unix:{self.dir / 'sb.sock'}"
        self.env: dict[str, str] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.start_seconds = 0.0

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        for tool in ("ovn-northd", "ovn-controller", "ovn-nbctl", "ovn-sbctl"):
            if shutil.which(tool) is None:
                raise SourceError(f"--ovn sandbox needs {tool} (Debian packages ovn-central, ovn-host); not found")
        if not self.switch.running:
            raise SourceError("--ovn sandbox needs a running sandbox switch")
        t0 = time.monotonic()
        self.dir.mkdir()
        d = str(self.dir)
        self.env = {**self.switch.env, "OVN_RUNDIR": d, "OVN_DBDIR": d, "OVN_LOGDIR": d, "OVN_SYSCONFDIR": d}
        try:
            for db, schema in (("nb", NB_SCHEMA), ("sb", SB_SCHEMA)):
                self._run(["ovsdb-tool", "create", str(self.dir / f"{db}.db"), str(schema)])
                self._spawn(
                    f"ovsdb-server-{db}",
                    "ovsdb-server",
                    [f"--remote=punix:{self.dir / f'{db}.sock'}", str(self.dir / f"{db}.db")],
                )
                sock = self.dir / f"{db}.sock"
                self._wait_for(sock.exists, f"ovsdb-server-{db}")
            self.nbctl("init")
            self.sbctl("init")
            self._spawn("ovn-northd", "ovn-northd", [f"--ovnnb-db={self.nb_remote}", f"--ovnsb-db={self.sb_remote}"])
            self.switch.vsctl(
                "set",
                "Open_vSwitch",
                ".",
                f"external_ids:system-id={LOCAL_CHASSIS}",
                f"external_ids:ovn-remote={self.sb_remote}",
                "external_ids:ovn-encap-type=geneve",
                f"external_ids:ovn-encap-ip={LOCAL_ENCAP_IP}",
                "external_ids:ovn-bridge-datapath-type=netdev",
                "external_ids:hostname=ovstop-sandbox",
            )
            self.start_controller()
            self._build_tenants()
            self.nbctl("--wait=hv", "--timeout=60", "sync")
            for fake in FAKE_CHASSIS:
                self.add_fake_chassis(fake)
            self._bind_remote_ports()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0

    def start_controller(self) -> None:
        """Start ovn-controller on the sandbox switch and wait until it has registered its chassis."""
        self._spawn("ovn-controller", "ovn-controller", [self.switch.db_remote])
        deadline = time.monotonic() + 60
        while LOCAL_CHASSIS not in self.sbctl("--bare", "--columns=name", "list", "Chassis_Private"):
            self._check_alive("ovn-controller")
            if time.monotonic() > deadline:
                raise SourceError(f"sandbox ovn-controller registered no chassis in 60s (see {self.dir})")
            time.sleep(0.1)

    def stop_controller(self) -> None:
        """SIGTERM ovn-controller: it exits leaving its chassis rows in SB, as after a crash."""
        self._stop("ovn-controller")

    def stop(self) -> None:
        """Stop every OVN daemon (controller first). The switch's stop removes the directory."""
        for name in ("ovn-controller", "ovn-northd", "ovsdb-server-sb", "ovsdb-server-nb"):
            self._stop(name)

    # -- building -------------------------------------------------------------------------------------
    def _build_tenants(self) -> None:
        cmds: list[list[str]] = []
        for t, tenant in enumerate(TENANTS):
            lr = f"{tenant}-lr"
            cmds.append(["lr-add", lr, "--", "set", "Logical_Router", lr, f"external_ids:vpc={tenant}"])
            for s in range(2):
                ls = f"{tenant}-ls{s}"
                mac = f"02:aa:{t:02x}:{s:02x}:00:01"
                cmds += [
                    ["ls-add", ls, "--", "set", "Logical_Switch", ls, f"external_ids:vpc={tenant}"],
                    ["lrp-add", lr, f"{lr}-{ls}", mac, f"192.168.{10 * t + s}.1/24"],
                    ["lsp-add", ls, f"{ls}-rtr"],
                    ["lsp-set-type", f"{ls}-rtr", "router"],
                    ["lsp-set-addresses", f"{ls}-rtr", "router"],
                    ["lsp-set-options", f"{ls}-rtr", f"router-port={lr}-{ls}"],
                ]
                for v in range(self.vifs_per_switch):
                    lsp = f"{ls}-vm{v}"
                    cmds += [
                        ["lsp-add", ls, lsp],
                        ["lsp-set-addresses", lsp, f"02:bb:{t:02x}:{s:02x}:{v >> 8:02x}:{v & 0xFF:02x}"],
                    ]
            cmds.append(
                [
                    "ls-add",
                    f"{tenant}-ext",
                    "--",
                    "set",
                    "Logical_Switch",
                    f"{tenant}-ext",
                    f"external_ids:vpc={tenant}",
                ]
            )
            cmds += [
                ["lsp-add", f"{tenant}-ext", f"{tenant}-ln"],
                ["lsp-set-type", f"{tenant}-ln", "localnet"],
                ["lsp-set-options", f"{tenant}-ln", "network_name=physnet"],
            ]
        # A known ACL, for explain (flow -> Logical_Flow -> ACL): telnet from vpc-a-ls0's ports is dropped.
        cmds.append(["acl-add", f"{TENANTS[0]}-ls0", "from-lport", str(ACL_PRIORITY), ACL_MATCH, "drop"])
        self.nbctl(*_joined(cmds))
        # The first VIF of every logical switch is bound here, through a br-int interface.
        vsctl: list[list[str]] = []
        for tenant in TENANTS:
            for s in range(2):
                lsp = f"{tenant}-ls{s}-vm0"
                vsctl.append(
                    [
                        "add-port",
                        "br-int",
                        lsp,
                        "--",
                        "set",
                        "Interface",
                        lsp,
                        "type=dummy",
                        f"external_ids:iface-id={lsp}",
                        f"external_ids:vpc={tenant}",
                    ]
                )
        self.switch.vsctl(
            "--may-exist",
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "datapath_type=netdev",
            "fail_mode=secure",
            "--",
            *_joined(vsctl),
        )

    def add_fake_chassis(self, fake: FakeChassis) -> None:
        """A chassis as SB sees one whose ovn-controller is current with SB_Global.nb_cfg."""
        self.sbctl("chassis-add", fake.name, "geneve", fake.ip)
        nb_cfg = self.sbctl("get", "SB_Global", ".", "nb_cfg").strip()
        self.sbctl(
            "--id=@c",
            "get",
            "Chassis",
            fake.name,
            "--",
            "create",
            "Chassis_Private",
            f"name={fake.name}",
            "chassis=@c",
            f"nb_cfg={nb_cfg}",
            f"nb_cfg_timestamp={int(time.time() * 1000)}",
        )

    def _bind_remote_ports(self) -> None:
        binds = [
            ["lsp-bind", f"{tenant}-ls{s}-vm1", FAKE_CHASSIS[t % len(FAKE_CHASSIS)].name]
            for t, tenant in enumerate(TENANTS)
            for s in range(2)
            if self.vifs_per_switch > 1
        ]
        deadline = time.monotonic() + 30
        while binds:
            try:
                self.sbctl(*_joined(binds))
                return
            except SourceError:  # northd has not created the Port_Binding rows yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # -- command helpers ------------------------------------------------------------------------------
    def nbctl(self, *args: str) -> str:
        return self._run(["ovn-nbctl", f"--db={self.nb_remote}", *args])

    def sbctl(self, *args: str) -> str:
        return self._run(["ovn-sbctl", f"--db={self.sb_remote}", *args])

    def _spawn(self, name: str, program: str, args: list[str]) -> None:
        files = [f"--pidfile={self.dir / name}.pid", f"--log-file={self.dir / name}.log"]
        if program != "ovn-controller":  # it has no --unixctl: <OVN_RUNDIR>/ovn-controller.<pid>.ctl
            files.append(f"--unixctl={self.dir / name}.ctl")
        self._procs[name] = spawn([program, "--no-chdir", "-vconsole:off", *files, *args], self.env, self.dir, name)

    def _stop(self, name: str) -> None:
        terminate(self._procs.pop(name, None))

    def _check_alive(self, name: str) -> None:
        check_alive(self._procs.get(name), self.dir, name)

    def _wait_for(self, ready: Callable[[], bool], name: str, timeout: float = 30) -> None:
        wait_until(ready, f"{name} ready", self._procs.get(name), self.dir, name, timeout)

    def _run(self, argv: list[str], timeout: float = 90.0) -> str:
        return run_tool(argv, self.env, timeout)


def _joined(cmds: list[list[str]]) -> list[str]:
    """Several ctl commands as one transaction: ``a -- b -- c``."""
    out: list[str] = []
    for cmd in cmds:
        if out:
            out.append("--")
        out.extend(cmd)
    return out
