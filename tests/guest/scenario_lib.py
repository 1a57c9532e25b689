"""What every in-guest scenario shares: its check lines, its failure, and how it reports its end.

A scenario named X prints ``X-OK <check> <detail>`` per check, then ``X-PASS``, or ``X-FAIL <why>`` at the
first failure (tests/test_guest.py reads these lines from the guest's console).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ovstop.ebpf.capability import Capability, SystemView
    from ovstop.ebpf.capture import CaptureThread


class ScenarioFailure(Exception):
    """A check of the scenario did not hold; the message says which and what was seen."""


def checks(name: str) -> tuple[Callable[..., None], Callable[[bool, str], None]]:
    """``ok(check, detail="")`` and ``expect(cond, what)`` for the scenario ``name``."""

    def ok(check: str, detail: object = "") -> None:
        print(f"{name}-OK {check} {detail}".rstrip(), flush=True)

    def expect(cond: bool, what: str) -> None:
        if not cond:
            raise ScenarioFailure(what)

    return ok, expect


def run(name: str, body: Callable[[], None], also: tuple[type[BaseException], ...] = ()) -> int:
    """Run the scenario ``name`` as root (as the guest's init runs it): ``X-PASS`` and 0 when ``body``
    returns, ``X-FAIL <why>`` and 1 when a check or a command (or one of ``also``) fails."""
    if os.geteuid() != 0:
        print(f"{name}-FAIL must run as root inside the guest", flush=True)
        return 1
    try:
        body()
    except (ScenarioFailure, subprocess.CalledProcessError, *also) as exc:
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else exc
        print(f"{name}-FAIL {detail}", flush=True)
        return 1
    print(f"{name}-PASS", flush=True)
    return 0


@contextmanager
def capturing(capture: CaptureThread, timeout: float) -> Iterator[CaptureThread]:
    """``capture`` started and ready (its programs built, verified and attached) within ``timeout``
    seconds without error; stopped on the way out whatever happened (stopping twice is harmless)."""
    capture.start()
    try:
        if not capture.ready.wait(timeout):
            raise ScenarioFailure(f"capture not ready after {timeout:g} s")
        if capture.error is not None:
            raise ScenarioFailure(f"capture failed: {capture.error}")
        yield capture
    finally:
        capture.stop()


def stopped(capture: CaptureThread) -> None:
    """Stop ``capture`` and check that its thread ended (its programs are then detached)."""
    capture.stop()
    if capture.is_alive():
        raise ScenarioFailure("capture thread did not stop")


def probed() -> tuple[SystemView, dict[str, Capability]]:
    """The guest as ovstop's capture sees it and its capabilities by name, their table printed to the log."""
    from ovstop.ebpf.capability import capabilities, format_check_table, probe_system

    view = probe_system()
    caps = {c.name: c for c in capabilities(view)}
    print(format_check_table(caps.values()), flush=True)
    return view, caps
