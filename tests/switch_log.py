"""What ovs-vswitchd itself says it was asked: its unixctl module logs every request it receives at debug
level. Tests count requests there, so "ovstop did not send X" is checked outside ovstop."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from ovstop.sandbox.switch import SandboxSwitch

_REQUEST = re.compile(r"\|unixctl\|DBG\|received request ([^\[\s]+)\[")


class RequestLog:
    """The unixctl requests ovs-vswitchd logged since the last :meth:`mark`."""

    def __init__(self, sw: SandboxSwitch) -> None:
        sw.appctl("vlog/set", "unixctl:file:dbg")
        self.path = Path(sw.env["OVS_LOGDIR"]) / "ovs-vswitchd.log"
        self.offset = 0
        self.mark()

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def counts(self) -> Counter[str]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return Counter(_REQUEST.findall(text))
