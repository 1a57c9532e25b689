"""``--sandbox``: a private switch plus its traffic generator, for as long as an ovstop mode runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ovstop.sandbox.ovn import SandboxOvn
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator


@dataclass(frozen=True)
class SandboxConfig:
    """What sandbox to build."""

    ports: int = 4
    """Dummy ports on br0."""
    traffic_pps: float = 200.0
    """Packets per second the traffic generator injects (0: none)."""
    ovn: bool = False
    """Add a private OVN (NB, SB, northd, one ovn-controller)."""
    pmd: bool = True
    """dummy-pmd ports polled by PMD threads; False: plain dummy ports polled by the main thread."""


@dataclass
class SandboxSession:
    """The running sandbox: the switch, the generator, and where to reach them (its endpoints)."""

    switch: SandboxSwitch
    traffic: TrafficGenerator
    ovn: SandboxOvn | None = None

    @property
    def db_remote(self) -> str:
        return self.switch.db_remote

    def ctl_path(self) -> Path:
        """The current control socket (a restarted ovs-vswitchd has a new one)."""
        return self.switch.unixctl_path

    @property
    def ovn_nb(self) -> str | None:
        return self.ovn.nb_remote if self.ovn is not None else None

    @property
    def ovn_sb(self) -> str | None:
        return self.ovn.sb_remote if self.ovn is not None else None

    @property
    def ovn_rundir(self) -> Path | None:
        return self.ovn.dir if self.ovn is not None else None


@contextlib.contextmanager
def start_sandbox(config: SandboxConfig) -> Iterator[SandboxSession]:
    """Start the switch, the traffic and, with ``config.ovn``, a private OVN; stop them all (leaving nothing
    behind) however the block exits. Where to reach them is on the session it yields."""
    with SandboxSwitch(n_ports=config.ports, pmd=config.pmd) as switch, contextlib.ExitStack() as stack:
        ovn = stack.enter_context(SandboxOvn(switch)) if config.ovn else None
        traffic = TrafficGenerator(switch, rate_pps=config.traffic_pps)
        traffic.start()
        try:
            yield SandboxSession(switch, traffic, ovn)
        finally:
            traffic.stop()
