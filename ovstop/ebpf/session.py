"""Starting eBPF capture for a run, or saying in one line why it does not start.

Capture starts only where it can do something: root (or CAP_BPF), bcc, kernel headers, the openvswitch
module and at least one hook. Everywhere else (the sandbox's userspace datapath, a host without the
module) the reason is what the UI and the snapshot show, and ovstop runs on unixctl alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ovstop.ebpf.capability import plan_hooks, probe_system
from ovstop.ebpf.capture import CaptureThread
from ovstop.events.schema import OvsEvent

SANDBOX_REASON = "the sandbox runs the userspace datapath: no kernel hooks to attach"


def start_capture(
    enabled: bool,
    sandbox: bool,
    deliver: Callable[[OvsEvent], Any],
    stack: contextlib.ExitStack,
    deep: bool = False,
    on_idle: Callable[[int], None] | None = None,
) -> tuple[CaptureThread | None, str]:
    """The running capture thread (stopped when ``stack`` closes), or None and the reason."""
    if not enabled:
        return None, "disabled (--no-ebpf)"
    if sandbox:
        return None, SANDBOX_REASON
    view = probe_system()
    hooks, missing = plan_hooks(view, deep)
    if not hooks:
        return None, next(iter(missing.values()), "no hook available")

    capture = CaptureThread(deliver, view=view, deep=deep, on_idle=on_idle)
    capture.start()
    stack.callback(capture.stop)
    return capture, ""
