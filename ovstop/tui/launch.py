"""``ovstop`` with no mode: build the feed (live runtime or replay), run the app, always clean up.

A startup failure (no switch, unreadable recording) raises :class:`OvstopError` before the screen is taken
over, so the CLI prints it as one line. SIGHUP (the ssh session or terminal went away) and SIGTERM make
the app exit through its normal path, which stops the sampler thread and closes the runtime (and sandbox).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
from types import FrameType

from ovstop.runtime import Options, open_runtime
from ovstop.tui.feed import LiveFeed, ReplayFeed, SnapshotFeed


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A signal handler that does nothing."""


def launch(options: Options, args: argparse.Namespace) -> int:
    from ovstop.tui.app import OvstopApp  # Textual loads only for the TUI mode

    with contextlib.ExitStack() as stack:
        feed: SnapshotFeed
        if getattr(args, "replay", None):
            feed = ReplayFeed(args.replay)
        else:
            runtime = open_runtime(options)
            stack.callback(runtime.close)
            runtime.first_sample()
            # --record is handled by the runtime itself (every snapshot and event goes to the file).
            feed = LiveFeed(
                runtime.sampler, args.delay, events=runtime.event_store, events_reason=runtime.events_reason,
                deep_switch=runtime.set_deep if runtime.capture is not None else None,
            )
        stack.callback(feed.stop)
        app = OvstopApp(feed)
        app.deep = options.ebpf_deep

        def _exit(signum: int, frame: FrameType | None) -> None:
            # A hangup comes with a SIGCONT, which Textual's driver takes for a return from ctrl+z: it would
            # restart its output thread during the shutdown and deadlock it. Nothing is to be resumed now.
            signal.signal(signal.SIGCONT, _ignore)
            app.call_later(app.exit, 128 + signum)

        for sig in (signal.SIGHUP, signal.SIGTERM):
            stack.callback(signal.signal, sig, signal.signal(sig, _exit))
        # Library loggers (ovs.*) must not write over the screen; Textual captures print() itself.
        root = logging.getLogger()
        quiet = logging.NullHandler()
        root.addHandler(quiet)
        stack.callback(root.removeHandler, quiet)
        result = app.run()
    return int(result or 0)
