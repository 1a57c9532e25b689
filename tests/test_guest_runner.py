"""The guest runner's reading of a serial console (host-only: no qemu is started here).

The crash console is the one CI recorded on 2026-12-04 (Debian 13 guest, 6.12.117+deb13-amd64, multi-threaded
TCG): the kernel died in boot before init ran the test's command, so the run never began.
"""

from __future__ import annotations

import pytest
from guest.vm import GuestError, crash_before_command, parse_console

CI_BOOT_CRASH = """\
[    2.923508] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI
[    2.923906] CPU: 1 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.117+deb13-amd64 #1  Debian 6.12.117-1
[    2.934110] PKRU: 55555554
[    2.934146] CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Tainted: G      D            6.12.117+deb13-amd64 #1
[    2.934275] Kernel panic - not syncing: Fatal exception in interrupt
[    5.281312] Shutting down cpus with NMI
"""

COMMAND_THEN_CRASH = """\
OVSTOP-GUEST-BEGIN uptime=11.40
loading the probes
[   40.100000] Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP
[   40.200000] Kernel panic - not syncing: Fatal exception
"""


def test_a_kernel_crash_before_the_command_is_a_boot_crash() -> None:
    assert crash_before_command(CI_BOOT_CRASH) == "[    2.923508] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI"
    with pytest.raises(GuestError, match=r"ended without an exit code.*Kernel panic"):
        parse_console(CI_BOOT_CRASH, 6.7)


def test_a_crash_after_the_command_started_is_the_commands_result() -> None:
    assert crash_before_command(COMMAND_THEN_CRASH) is None
    assert crash_before_command("OVSTOP-GUEST-BEGIN uptime=9.1\nhello\nOVSTOP-GUEST-EXIT=0\n") is None


def test_a_clean_run_keeps_the_crashes_of_earlier_boots() -> None:
    done = parse_console("OVSTOP-GUEST-BEGIN uptime=9.1\nhello\nOVSTOP-GUEST-EXIT=3\n", 20.0, ("Oops: int3",))
    assert (done.returncode, done.output, done.boot_crashes) == (3, "hello\n", ("Oops: int3",))
