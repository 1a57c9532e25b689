"""Running the sandbox's daemons and tools: what the switch and the OVN sandbox both need.

Daemons run in the foreground as children in their own session, with ``PR_SET_PDEATHSIG=SIGKILL`` so
the kernel kills them even when their owner is SIGKILLed; their stderr goes to ``<dir>/<name>.stderr``.
A tool that fails or a daemon that dies is one :class:`SourceError` line with its last words.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from ovstop.errors import SourceError

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


class Service:
    """Something started and stopped as a whole (the switch, OVN): ``with`` starts it and always stops it."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def die_with_parent() -> None:
    """Runs in the forked child before exec: ask the kernel to SIGKILL it when its parent dies."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv: list[str], env: Mapping[str, str], directory: Path, name: str) -> subprocess.Popen[bytes]:
    """Start a daemon in the foreground; ``name`` names its stderr file and its errors.

    A thread waits for it, so a daemon that dies (killed from outside, crashed) is reaped at once rather
    than left a zombie until ovstop exits; ``poll()``/``wait()`` keep working from other threads.
    """
    with open(directory / f"{name}.stderr", "wb") as stderr:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
    threading.Thread(target=proc.wait, name=f"ovstop-reap-{name}", daemon=True).start()
    return proc


def terminate(proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """SIGTERM a daemon, SIGKILL it if it is still there after ``grace`` seconds, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def last_words(directory: Path, name: str) -> str:
    """The last line a daemon wrote to its stderr file, else to its log."""
    for file in (f"{name}.stderr", f"{name}.log"):
        with contextlib.suppress(OSError):
            lines = (directory / file).read_text(errors="replace").strip().splitlines()
            if lines:
                return lines[-1]
    return "no output"


def check_alive(proc: subprocess.Popen[bytes] | None, directory: Path, name: str) -> None:
    if proc is not None and proc.poll() is not None:
        raise SourceError(f"sandbox {name} exited with status {proc.returncode}: {last_words(directory, name)}")


def wait_until(
    ready: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[bytes] | None,
    directory: Path,
    name: str,
    timeout: float = 60,
) -> None:
    """Poll ``ready`` until true; fail as soon as the daemon dies, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        check_alive(proc, directory, name)
        if time.monotonic() > deadline:
            raise SourceError(f"sandbox: no {what} after {timeout:.0f}s (see {directory})")
        time.sleep(0.02)


def run_tool(argv: list[str], env: Mapping[str, str], timeout: float = 30.0) -> str:
    """Run a ctl tool to completion and return its stdout."""
    try:
        res = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SourceError(f"sandbox: {argv[0]} {argv[1] if len(argv) > 1 else ''} timed out") from None
    if res.returncode != 0:
        msg = " ".join(res.stderr.split()) or f"exit status {res.returncode}"
        raise SourceError(f"sandbox: {argv[0]} failed: {msg[:300]}")
    return res.stdout
