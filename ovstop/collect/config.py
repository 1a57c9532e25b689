"""What the collection layer is told by whoever assembles a run: limits and where optional sources are.

The runtime builds one from the user's options (and a sandbox's endpoints); collectors only read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CollectConfig:
    timeout: float = 2.0
    """Seconds per call to any source."""
    max_flows: int = 10_000
    """Datapath flows read per round."""
    ovn_nb: str | None = None
    """OVN Northbound remote; None: look for one (see :mod:`ovstop.sources.ovn`)."""
    ovn_sb: str | None = None
    """OVN Southbound remote; None: look for one."""
    ovn_rundir: Path | None = None
    """Where OVN's sockets are; None: OVN_RUNDIR, else /var/run/ovn."""
