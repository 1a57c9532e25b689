"""ovstop's own cost, shown next to what it observes: its CPU and RSS on /metrics (checked against ``ps``),
and the kernel's run-time accounting of BPF programs (checked against packets sent through a real program).
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess

import pytest
from test_headless import headless, pick, samples, scrape

from ovstop.ebpf.bpfstats import enable_run_time_stats, program_stats
from ovstop.sandbox.switch import SandboxSwitch

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD = 5
_SO_ATTACH_BPF = 50


def test_own_cpu_and_memory_on_metrics_match_ps(sandbox: SandboxSwitch) -> None:
    with headless(sandbox) as url:
        first = samples(scrape(url)[1])
        text = scrape(url)[1]
        pid = int(
            subprocess.run(
                ["pgrep", "-n", "-f", "ovstop --headless"], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
        ps = subprocess.run(["ps", "-o", "rss=,cputimes=", "-p", str(pid)], capture_output=True, text=True)
    values = samples(text)
    [rss] = pick(values, "ovstop_process_resident_memory_bytes")
    [cpu] = pick(values, "ovstop_process_cpu_seconds_total")
    [cpu_before] = pick(first, "ovstop_process_cpu_seconds_total")
    rss_kib, cpu_ps = (int(x) for x in ps.stdout.split())
    assert 0.75 * rss_kib * 1024 <= rss <= 1.25 * rss_kib * 1024, (rss, rss_kib)
    assert 0 < cpu_before <= cpu <= cpu_ps + 1


def _socket_filter() -> int:
    """A minimal socket filter (``r0 = 0; exit``) loaded with the bpf() syscall; its descriptor."""
    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        pytest.skip("bpf() syscall number unknown here")
    insns = (ctypes.c_uint8 * 16)(0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0)
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = (ctypes.c_uint8 * 128)()
    ctypes.memmove(attr, (ctypes.c_uint32 * 2)(1, 2), 8)  # BPF_PROG_TYPE_SOCKET_FILTER, 2 instructions
    ctypes.memmove(
        ctypes.byref(attr, 8), (ctypes.c_uint64 * 2)(ctypes.addressof(insns), ctypes.addressof(license_)), 16
    )
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(number, _BPF_PROG_LOAD, attr, ctypes.sizeof(attr))
    if fd < 0:
        pytest.skip(f"cannot load a BPF program here: {os.strerror(ctypes.get_errno())}")
    return fd


def test_kernel_counts_program_runs_only_while_stats_are_on() -> None:
    prog = _socket_filter()
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        receiver.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_BPF, prog)

        def send(n: int) -> None:
            for _ in range(n):
                sender.sendto(b"x", receiver.getsockname())

        send(5)  # statistics off: the kernel does not count
        assert program_stats({"filter": prog}) == {"filter": (0, 0)}
        fd, reason = enable_run_time_stats()
        assert fd is not None, reason
        try:
            send(7)
            run_ns, runs = program_stats({"filter": prog})["filter"]
            assert runs == 7 and run_ns > 0
        finally:
            os.close(fd)
        send(3)  # off again once the descriptor is closed
        assert program_stats({"filter": prog})["filter"][1] == 7
    finally:
        receiver.close()
        sender.close()
        os.close(prog)
