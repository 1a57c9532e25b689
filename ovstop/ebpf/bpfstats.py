"""The kernel's own accounting of ovstop's BPF programs: run time and run count per program.

The kernel counts only while BPF run-time statistics are on. ``BPF_ENABLE_STATS`` turns them on for as
long as the returned file descriptor stays open (Linux 5.8+), so they are on exactly while capture runs
and go off with it, even if ovstop dies; no global sysctl is left changed. Each program's figures are the
``run_time_ns`` and ``run_cnt`` lines of its descriptor's ``/proc/self/fdinfo`` entry.
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351}
_BPF_ENABLE_STATS = 32
_BPF_STATS_RUN_TIME = 0


def enable_run_time_stats() -> tuple[int | None, str]:
    """A descriptor that keeps BPF run-time statistics on while open, or None and why not."""
    number = _SYS_BPF.get(platform.machine())
    if number is None:
        return None, f"no bpf() syscall number known for {platform.machine()}"
    libc = ctypes.CDLL(None, use_errno=True)
    attr = (ctypes.c_uint32 * 2)(_BPF_STATS_RUN_TIME, 0)
    fd = libc.syscall(number, _BPF_ENABLE_STATS, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        return None, f"BPF_ENABLE_STATS failed: {os.strerror(ctypes.get_errno())}"
    return fd, ""


def program_stats(fds: dict[str, int]) -> dict[str, tuple[int, int]]:
    """``{program: (run_time_ns, run_cnt)}`` for the given program descriptors of this process."""
    out: dict[str, tuple[int, int]] = {}
    for name, fd in fds.items():
        try:
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if "run_time_ns" in fields and "run_cnt" in fields:
            out[name] = (int(fields["run_time_ns"]), int(fields["run_cnt"]))
    return out
