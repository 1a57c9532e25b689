"""``--sandbox``: a private switch plus its traffic generator, for as long as an ovstop mode runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator

if TYPE_CHECKING:
    from ovstop.runtime import Options


@dataclass
class SandboxSession:
    """The running sandbox: the switch, the generator, and where to reach them."""

    switch: SandboxSwitch
    traffic: TrafficGenerator

    @property
    def db_remote(self) -> str:
        return self.switch.db_remote

    def ctl_path(self) -> Path:
        """The current control socket (a restarted ovs-vswitchd has a new one)."""
        return self.switch.unixctl_path


@contextlib.contextmanager
def start_sandbox(options: Options) -> Iterator[SandboxSession]:
    """Start the switch and the traffic; stop both (leaving nothing behind) however the block exits."""
    with SandboxSwitch(n_ports=options.sandbox_ports) as switch:
        traffic = TrafficGenerator(switch, rate_pps=options.traffic_pps)
        traffic.start()
        try:
            yield SandboxSession(switch, traffic)
        finally:
            traffic.stop()
