"""Where ovstop's log records (collector errors with their tracebacks, library warnings) go.

``--log FILE``: every record from DEBUG up, with tracebacks, to FILE. Without it, warnings and errors are
one line each on stderr (``ovstop: …``, no traceback) in headless and snapshot modes, and nowhere in the TUI,
which owns the terminal. While the TUI runs, C-level output on file descriptor 2 (bcc's compiler
diagnostics) goes to the log file, or to /dev/null, never over the screen (:func:`stderr_to_log`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from ovstop.errors import OvstopError, describe

_path: str | None = None


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"ovstop: {' '.join(record.getMessage().split())}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {describe(record.exc_info[1])}"
        return text


def setup(path: str | None, terminal_is_ui: bool) -> None:
    """Install the handlers described in the module docstring (once, from the CLI)."""
    global _path
    root = logging.getLogger()
    if path:
        try:
            # Created 0600 like snapshots and recordings: tracebacks carry hostnames, paths and flows.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
            handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as exc:
            raise OvstopError(f"--log {path}: {exc.strerror or exc}") from None
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        _path = path
    if terminal_is_ui:
        root.addHandler(logging.NullHandler())
    else:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(_OneLine())
        root.addHandler(console)


@contextlib.contextmanager
def stderr_to_log() -> Iterator[None]:
    """Give Python's ``sys.stderr`` (what Textual draws on) a descriptor of its own for the terminal and point
    descriptor 2 at the log file (or /dev/null) for the duration of the block."""
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w", encoding=sys.stderr.encoding, errors="replace", closefd=True)
    saved_fd = os.dup(2)
    sink = os.open(_path or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(sink, 2)
    os.close(sink)
    saved = sys.stderr, sys.__stderr__
    sys.stderr = sys.__stderr__ = terminal  # type: ignore[misc]  # Textual reads sys.__stderr__
    try:
        yield
    finally:
        sys.stderr, sys.__stderr__ = saved  # type: ignore[misc]
        terminal.close()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
