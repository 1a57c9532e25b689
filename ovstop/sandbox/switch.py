"""A private Open vSwitch (ovsdb-server + ovs-vswitchd on the dummy datapath) in a temporary directory.

Nothing leaks, however the owner ends:

* ``stop()`` (also ``with`` exit) sends SIGTERM, then SIGKILL after a grace period, waits, and removes
  the directory.
* An ``atexit`` hook stops every live sandbox on normal exit and on an uncaught exception, including
  KeyboardInterrupt.
* SIGTERM and SIGHUP stop every sandbox before ovstop exits (:mod:`ovstop.signals`, registered when a
  sandbox starts on the main thread).
* The daemons run in the foreground as children with ``PR_SET_PDEATHSIG=SIGKILL``, so the kernel kills
  them even if the owner is SIGKILLed or crashes. (The death signal follows the *thread* that started
  them: start the sandbox from a thread that outlives it, normally the main thread.)
* A directory left behind by a SIGKILLed owner is removed by the next sandbox started in the same base
  directory: each directory records its owner's pid.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ovstop import signals
from ovstop.errors import SourceError
from ovstop.sandbox.process import Service, run_tool, spawn, terminate, wait_until
from ovstop.sandbox.topology import BRIDGE, SIDE_BRIDGE, Topology

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
DIR_PREFIX = "ovstop-sandbox-"
OWNER_FILE = "owner.pid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(base: Path) -> list[Path]:
    """Remove sandbox directories under ``base`` whose owner process no longer exists."""
    removed = []
    for d in base.glob(f"{DIR_PREFIX}*"):
        try:
            owner = int((d / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not _pid_alive(owner):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


class SandboxSwitch(Service):
    """A private switch: ``br0`` (netdev) with ``n_ports`` dummy-pmd ports, two tunnels, a patch to ``br1``."""

    def __init__(self, n_ports: int = 4, pmd: bool = True, base_dir: str | Path | None = None) -> None:
        self.topology = Topology(n_ports, pmd)
        self.base_dir = Path(base_dir) if base_dir is not None else Path(tempfile.gettempdir())
        self.dir = Path()
        self.env: dict[str, str] = {}
        self.db_remote = ""
        self.unixctl_path = Path()
        self.bridges = [BRIDGE, SIDE_BRIDGE]
        self.ports = self.topology.ports
        self.start_seconds = 0.0
        self._ovsdb: subprocess.Popen[bytes] | None = None
        self._vswitchd: subprocess.Popen[bytes] | None = None
        self._cfg_serial = 0

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._vswitchd is not None and self._vswitchd.poll() is None

    def start(self) -> None:
        """Create the database, start both daemons, build the bridges and load the OpenFlow rules."""
        for tool in ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ovs-ofctl"):
            if shutil.which(tool) is None:
                raise SourceError(f"sandbox needs {tool} (Debian package openvswitch-switch); not found")
        t0 = time.monotonic()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        sweep_stale(self.base_dir)
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=self.base_dir))
        (self.dir / OWNER_FILE).write_text(str(os.getpid()))
        _register(self)
        d = str(self.dir)
        self.env = {"OVS_RUNDIR": d, "OVS_DBDIR": d, "OVS_LOGDIR": d, "OVS_SYSCONFDIR": d}
        self.db_remote = f"unix:{self.dir / 'db.sock'}"
        try:
            self._run(["ovsdb-tool", "create", str(self.dir / "conf.db"), str(SCHEMA)])
            self._ovsdb = self._spawn(
                "ovsdb-server",
                [
                    f"--remote=punix:{self.dir / 'db.sock'}",
                    "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                    str(self.dir / "conf.db"),
                ],
            )
            wait_until(
                lambda: (self.dir / "db.sock").exists(), "ovsdb-server socket", self._ovsdb, self.dir, "ovsdb-server"
            )
            # The whole switch goes into the database before ovs-vswitchd starts, so that it configures
            # everything in one pass (1000 ports in seconds, not minutes).
            self.vsctl("--no-wait", "init", *self.topology.vsctl_args(self._pmd_cpu_mask()))
            self.start_vswitchd()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0

    def start_vswitchd(self) -> None:
        """Start ovs-vswitchd (again, after ``kill_vswitchd``) and wait until it has applied the config."""
        if self.running:
            raise SourceError("sandbox ovs-vswitchd is already running")
        self._vswitchd = self._spawn(
            "ovs-vswitchd",
            ["--enable-dummy=override", "--disable-system", "--disable-system-route"],
        )
        pid = self._vswitchd.pid
        ctl = self.dir / f"ovs-vswitchd.{pid}.ctl"
        wait_until(
            lambda: self._pidfile("ovs-vswitchd") == pid and ctl.exists(),
            "ovs-vswitchd control socket",
            self._vswitchd,
            self.dir,
            "ovs-vswitchd",
        )
        self.unixctl_path = ctl
        self._cfg_serial += 1
        # A change without --no-wait returns only once ovs-vswitchd has caught up with the database.
        self.vsctl("set", "Open_vSwitch", ".", f"external_ids:ovstop-sandbox-start={self._cfg_serial}")
        for cmd in self.topology.underlay_commands():
            self.appctl(*cmd)
        rules = self.dir / "br0.flows"
        rules.write_text("\n".join(self.topology.flow_rules()) + "\n")
        self.ofctl("add-flows", BRIDGE, str(rules))

    def kill_vswitchd(self) -> None:
        """SIGKILL ovs-vswitchd (for restart tests); ovsdb-server keeps running."""
        if self._vswitchd is not None:
            self._vswitchd.kill()
            self._vswitchd.wait()

    def stop(self) -> None:
        """Stop both daemons (TERM, then KILL), wait for them and remove the directory. Idempotent."""
        for proc in (self._vswitchd, self._ovsdb):
            terminate(proc)
        self._vswitchd = self._ovsdb = None
        if self.dir != Path() and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        _unregister(self)

    # -- command helpers (setup and tests; ovstop itself talks JSON-RPC) -------------------------------
    def appctl(self, *args: str, timeout: float = 10.0) -> str:
        return self._run(["ovs-appctl", "-t", str(self.unixctl_path), f"--timeout={int(timeout)}", *args], timeout)

    def vsctl(self, *args: str, timeout: float = 60.0) -> str:
        opts = [f"--db={self.db_remote}", f"--timeout={int(timeout)}"]
        return self._run(["ovs-vsctl", *opts, *args], timeout + 5)

    def ofctl(self, *args: str, timeout: float = 30.0) -> str:
        return self._run(["ovs-ofctl", f"--timeout={int(timeout)}", *args], timeout + 5)

    # -- internals -------------------------------------------------------------------------------------
    def _pmd_cpu_mask(self) -> str:
        return "0x3" if (os.cpu_count() or 1) >= 2 else "0x1"

    def _pidfile(self, daemon: str) -> int | None:
        try:
            return int((self.dir / f"{daemon}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _spawn(self, daemon: str, args: list[str]) -> subprocess.Popen[bytes]:
        argv = [daemon, "--no-chdir", "--pidfile", "--log-file", "-vconsole:off", *args]
        return spawn(argv, self.env, self.dir, daemon)

    def _run(self, argv: list[str], timeout: float = 30.0) -> str:
        return run_tool(argv, self.env, timeout)


# -- process-wide cleanup ------------------------------------------------------------------------------
_live: set[SandboxSwitch] = set()
_live_lock = threading.Lock()
_hooks_installed = False


def stop_all() -> None:
    """Stop every sandbox this process started."""
    with _live_lock:
        live = list(_live)
    for sw in live:
        sw.stop()


def _register(sw: SandboxSwitch) -> None:
    global _hooks_installed
    with _live_lock:
        _live.add(sw)
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(stop_all)
    signals.on_exit(stop_all)


def _unregister(sw: SandboxSwitch) -> None:
    with _live_lock:
        _live.discard(sw)
