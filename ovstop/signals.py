"""The one place where ovstop handles signals.

SIGTERM and SIGHUP (the ssh session or terminal went away) end ovstop. The handler runs the registered
cleanups (every live sandbox stops) and raises ``SystemExit(128 + signum)`` in the main thread, so every
``with`` block and ``atexit`` hook on the way out runs too. A mode that must exit another way (the TUI
asks its app to exit, so the terminal is restored) takes the signals over for as long as it runs with
:func:`exit_by`. Handlers can only be installed from the main thread; elsewhere :func:`install` does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

_lock = threading.Lock()
_installed = False
_cleanups: list[Callable[[], None]] = []
_override: list[Callable[[int], None]] = []


def install() -> None:
    """Handle the exit signals (once per process, main thread only)."""
    global _installed
    with _lock:
        if _installed or threading.current_thread() is not threading.main_thread():
            return
        _installed = True
    for sig in EXIT_SIGNALS:
        signal.signal(sig, _on_exit_signal)


def on_exit(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` when an exit signal arrives (before exiting); also installs the handlers."""
    with _lock:
        if cleanup not in _cleanups:
            _cleanups.append(cleanup)
    install()


@contextlib.contextmanager
def exit_by(handler: Callable[[int], None]) -> Iterator[None]:
    """Within the block an exit signal calls ``handler(signum)`` instead of raising SystemExit."""
    install()
    _override.append(handler)
    try:
        yield
    finally:
        _override.remove(handler)


def ignore(sig: signal.Signals) -> None:
    """Ignore ``sig`` from now on (the TUI's shutdown must not be resumed by the SIGCONT a hangup brings)."""
    signal.signal(sig, signal.SIG_IGN)


def _on_exit_signal(signum: int, frame: FrameType | None) -> None:
    if _override:
        _override[-1](signum)
        return
    for cleanup in list(_cleanups):
        cleanup()
    raise SystemExit(128 + signum)
