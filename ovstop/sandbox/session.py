"""``--sandbox``: a private switch plus its traffic generator, for as long as an ovstop mode runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ovstop.sandbox.ovn import SandboxOvn
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator

if TYPE_CHECKING:
    from ovstop.runtime import Options


@dataclass
class SandboxSession:
    """The running sandbox: the switch, the generator, and where to reach them."""

    switch: SandboxSwitch
    traffic: TrafficGenerator
    ovn: SandboxOvn | None = None

    @property
    def db_remote(self) -> str:
        return self.switch.db_remote

    def ctl_path(self) -> Path:
        """The current control socket (a restarted ovs-vswitchd has a new one)."""
        return self.switch.unixctl_path


@contextlib.contextmanager
def start_sandbox(options: Options) -> Iterator[SandboxSession]:
    """Start the switch, the traffic and, with ``options.ovn``, a private OVN (pointing ``options`` at it);
    stop them all (leaving nothing behind) however the block exits."""
    switch_ctx = SandboxSwitch(n_ports=options.sandbox_ports, pmd=options.sandbox_pmd)
    with switch_ctx as switch, contextlib.ExitStack() as stack:
        ovn = None
        if options.ovn:
            ovn = stack.enter_context(SandboxOvn(switch))
            options.ovn_nb, options.ovn_sb = ovn.nb_remote, ovn.sb_remote
            options.extra["ovn_rundir"] = ovn.dir
        traffic = TrafficGenerator(switch, rate_pps=options.traffic_pps)
        traffic.start()
        try:
            yield SandboxSession(switch, traffic, ovn)
        finally:
            traffic.stop()
