"""What every in-guest scenario shares: its check lines, its failure, and how it reports its end.

A scenario named X prints ``X-OK <check> <detail>`` per check, then ``X-PASS``, or ``X-FAIL <why>`` at the
first failure (tests/test_guest.py reads these lines from the guest's console).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable


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


def not_root(name: str) -> bool:
    """True (and the failure printed) unless running as root, as the guest's init runs scenarios."""
    if os.geteuid() == 0:
        return False
    print(f"{name}-FAIL must run as root inside the guest", flush=True)
    return True


def passed(name: str) -> int:
    print(f"{name}-PASS", flush=True)
    return 0


def failed(name: str, exc: BaseException) -> int:
    """The failure line for ``exc`` (a command's stderr when a command failed); the exit status 1."""
    detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else exc
    print(f"{name}-FAIL {detail}", flush=True)
    return 1
