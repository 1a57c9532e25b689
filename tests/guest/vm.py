"""Run a command inside the QEMU guest that boots Debian's kernel (built by scripts/guest/build-rootfs.sh).

The host kernel has no kprobes and no openvswitch module, so the OVS kernel hooks only fire in this guest.
The guest boots the ext4 root image with ``snapshot=on`` (every run starts clean, runs can overlap), shares
the checkout read-write over 9p at the same path, and has no network device. Its PID 1
(scripts/guest/guest-init.sh) reads the command from a per-run control share, runs it in the checkout with
output on the serial console, prints ``OVSTOP-GUEST-EXIT=<rc>`` and powers off.

Command line: ``python -m guest.vm [--timeout S] [--env K=V ...] -- CMD...`` (from tests/, or via
scripts/guest/run.sh) streams the console and exits with the guest command's exit code.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ovstop.errors import OvstopError

REPO = Path(__file__).resolve().parents[2]
GUEST_DIR = Path(os.environ.get("OVSTOP_GUEST_DIR", REPO / ".guest"))
QEMU = "qemu-system-x86_64"
BEGIN_RE = re.compile(r"^OVSTOP-GUEST-BEGIN uptime=([0-9.]+)$", re.M)
EXIT_RE = re.compile(r"^OVSTOP-GUEST-EXIT=(\d+)$", re.M)
GUEST_FILES = ("vmlinuz", "initrd.img", "rootfs.ext4", "image.stamp")
# A kernel that dies before init has started the command: the run never began, so it is booted again.
BOOT_CRASH_RE = re.compile(r"Kernel panic - not syncing|\bOops: ", re.M)
BOOT_ATTEMPTS = 2


class GuestError(OvstopError):
    """The guest could not be started, timed out, or ended without reporting an exit code."""


@dataclass(frozen=True)
class CompletedGuest:
    """Result of one guest run.

    ``output`` is what the command printed (stdout and stderr, interleaved as on the console);
    ``console`` is the whole serial log including kernel and init messages; ``boot_seconds`` is the guest
    uptime when the command started; ``wall_seconds`` is the host time from qemu start to exit.
    """

    returncode: int
    output: str
    console: str
    boot_seconds: float
    wall_seconds: float
    boot_crashes: tuple[str, ...] = ()


def unavailable_reason(guest_dir: Path = GUEST_DIR) -> str | None:
    """Why the guest cannot run here (qemu missing, image not built), or None when it can."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} not installed (apt-get install qemu-system-x86)"
    missing = [name for name in GUEST_FILES if not (guest_dir / name).exists()]
    if missing:
        return f"guest image not built in {guest_dir} (missing {', '.join(missing)}); run scripts/guest/build-rootfs.sh"
    return None


def _accel() -> list[str]:
    """TCG unless the CPU advertises hardware virtualisation.

    This machine's /dev/kvm is paravirtual and hangs in the decompressor of Debian's kernel, and its
    /proc/cpuinfo shows no vmx/svm, which is what tells the two apart. OVSTOP_GUEST_ACCEL overrides.
    """
    accel = os.environ.get("OVSTOP_GUEST_ACCEL")
    if accel is None:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        hw = re.search(r"^flags\s*:.*\b(vmx|svm)\b", cpuinfo, re.M) is not None
        accel = "kvm" if hw and os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    # One host thread for all vCPUs: multi-threaded TCG races on the kernel's int3-based code patching
    # (CI saw Debian 13's 6.12 die in boot with "Oops: int3" on the second vCPU); single costs nothing
    # measurable here (the Debian 13 smoke scenario: 31 s multi, 32 s single).
    return ["-accel", "tcg,thread=single", "-cpu", "max"]


def qemu_argv(ctl_dir: Path, *, guest_dir: Path = GUEST_DIR, memory_mb: int = 2048, cpus: int = 2) -> list[str]:
    """The qemu command line for one run whose command and environment are in ``ctl_dir``."""
    cmdline = "console=ttyS0 root=/dev/vda rw init=/sbin/ovstop-init quiet loglevel=3 panic=-1"
    return [
        QEMU, *_accel(), "-smp", str(cpus), "-m", str(memory_mb),
        "-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio",
        "-kernel", str(guest_dir / "vmlinuz"), "-initrd", str(guest_dir / "initrd.img"), "-append", cmdline,
        "-drive", f"file={guest_dir / 'rootfs.ext4'},format=raw,if=virtio,snapshot=on",
        "-virtfs", f"local,path={ctl_dir},mount_tag=ctl,security_model=none,readonly=on",
        "-virtfs", f"local,path={REPO},mount_tag=repo,security_model=none",
    ]  # fmt: skip


def _write_ctl(ctl_dir: Path, cmd: Sequence[str], env: Mapping[str, str]) -> None:
    exports = {"OVSTOP_REPO": str(REPO), **env}
    (ctl_dir / "env").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items()))
    (ctl_dir / "cmd").write_text(shlex.join(cmd) + "\n")


def parse_console(console: str, wall: float, boot_crashes: tuple[str, ...] = ()) -> CompletedGuest:
    begin = BEGIN_RE.search(console)
    ends = list(EXIT_RE.finditer(console))
    if not ends:
        tail = " | ".join(console.strip().splitlines()[-5:])
        raise GuestError(f"guest ended without an exit code; console tail: {tail}")
    end = ends[-1]
    start = begin.end() + 1 if begin else 0
    return CompletedGuest(
        returncode=int(end.group(1)),
        output=console[start : end.start()],
        console=console,
        boot_seconds=float(begin.group(1)) if begin else float("nan"),
        wall_seconds=wall,
        boot_crashes=boot_crashes,
    )


def _boot(cmd: Sequence[str], timeout: float, env: Mapping[str, str], on_line: Callable[[str], None] | None,
          guest_dir: Path) -> tuple[str, float]:  # fmt: skip
    """One qemu run: the whole console and the wall time; GuestError when it times out."""
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ovstop-guest-") as tmp:
        ctl_dir = Path(tmp)
        _write_ctl(ctl_dir, cmd, env)
        start = time.monotonic()
        proc = subprocess.Popen(
            qemu_argv(ctl_dir, guest_dir=guest_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n")
                lines.append(line)
                if on_line is not None:
                    on_line(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join(5)
            tail = " | ".join(lines[-3:])
            raise GuestError(f"guest run timed out after {timeout:g} s and was killed; last lines: {tail}") from None
        finally:
            if proc.poll() is None:  # interrupted (e.g. KeyboardInterrupt): leave no qemu behind
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reader.join(5)
    return "\n".join(lines) + "\n", time.monotonic() - start


def crash_before_command(console: str) -> str | None:
    """The kernel's first crash line when the guest died before its init started the command, else None."""
    if BEGIN_RE.search(console):
        return None
    crash = BOOT_CRASH_RE.search(console)
    if crash is None:
        return None
    line_start = console.rfind("\n", 0, crash.start()) + 1
    return console[line_start : console.find("\n", crash.start())].strip()


def run_in_guest(
    cmd: Sequence[str],
    timeout: float = 600.0,
    *,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    guest_dir: Path = GUEST_DIR,
) -> CompletedGuest:
    """Boot the guest, run ``cmd`` in the checkout as root, return its exit code and output.

    ``timeout`` covers boot and command of one attempt; on expiry qemu's process group is killed and
    GuestError raised. ``on_line`` sees each console line as it arrives (for streaming). A kernel that
    crashes before the command starts is booted once more; the crash is kept in ``boot_crashes``. A crash
    after the command started is the command's result and is never retried.
    """
    if not cmd:
        raise GuestError("no command given to run in the guest")
    reason = unavailable_reason(guest_dir)
    if reason:
        raise GuestError(reason)
    crashes: list[str] = []
    for _attempt in range(BOOT_ATTEMPTS):
        console, wall = _boot(cmd, timeout, env or {}, on_line, guest_dir)
        crash = crash_before_command(console)
        if crash is None:
            break
        crashes.append(crash)
        print(f"guest kernel crashed before the command started ({crash}); booting again", file=sys.stderr)
    return parse_console(console, wall, tuple(crashes))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.sh", description="Run a command in the ovstop QEMU guest.")
    parser.add_argument("--timeout", type=float, default=600.0, help="hard limit for boot + command (s)")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="export in the guest")
    parser.add_argument("cmd", nargs="+", help="command (after --), run in the checkout as root")
    args = parser.parse_args(argv)
    env = dict(item.partition("=")[::2] for item in args.env)
    try:
        done = run_in_guest(args.cmd, args.timeout, env=env, on_line=print)
    except GuestError as exc:
        print(f"run.sh: {exc}", file=sys.stderr)
        return 124
    print(f"run.sh: exit {done.returncode}, command started {done.boot_seconds:.1f} s after boot, "
          f"{done.wall_seconds:.1f} s in all", file=sys.stderr)  # fmt: skip
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
