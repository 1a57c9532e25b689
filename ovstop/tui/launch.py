"""``ovstop`` with no mode: build the feed (live runtime, replay or ``--connect``), run the app, always clean up.

A startup failure (no switch, unreadable recording) raises :class:`OvstopError` before the screen is taken
over, so the CLI prints it as one line. SIGHUP (the ssh session or terminal went away) and SIGTERM make
the app exit through its normal path, which stops the sampler thread and closes the runtime (and sandbox).
"""

from __future__ import annotations

import contextlib
import signal

from ovstop import logs, signals
from ovstop.errors import OvstopError
from ovstop.remote.attach import REMOTE, RemoteSource
from ovstop.remote.fleet import Fleet
from ovstop.remote.http import HttpClient, base_url, read_credentials
from ovstop.runtime import Options, open_runtime
from ovstop.tui.app import OvstopApp
from ovstop.tui.feed import LiveFeed, RemoteFeed, ReplayFeed, SnapshotFeed


def connect_source(options: Options, connect: str) -> RemoteSource:
    """``--connect URL`` (a /metrics or /snapshot.json URL names the same exporter), polled once: a remote
    that cannot be reached at start-up is one line, as a local switch that is not there."""
    url = base_url(connect, "--connect", strip=("/metrics", "/snapshot.json"))
    client = HttpClient(url, options.connect_ca, read_credentials(options.connect_auth_file), options.timeout)
    source = RemoteSource(client)
    first = source.sample()
    if source.last is None:
        raise OvstopError(first.health[REMOTE].reason)
    return source


def launch(options: Options, fleet: Fleet | None = None, fleet_source: str = "") -> int | str:
    """The exit status, or the ``host:port`` the user picked in the fleet pane (``fleet``, from
    ``--prometheus``) to attach to."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(logs.stderr_to_log())  # bcc's compiler (fd 2) must not write over the screen
        feed: SnapshotFeed
        if options.replay:
            feed = ReplayFeed(options.replay)
        elif options.connect:
            feed = RemoteFeed(connect_source(options, options.connect), options.interval)
        else:
            runtime = open_runtime(options)
            stack.callback(runtime.close)
            runtime.first_sample()
            # --record is handled by the runtime itself (every snapshot and event goes to the file).
            feed = LiveFeed(
                runtime.sampler,
                options.interval,
                events=runtime.event_store,
                events_reason=runtime.events_reason,
                deep_switch=runtime.set_deep if runtime.capture is not None else None,
            )
        stack.callback(feed.stop)
        app = OvstopApp(
            feed,
            history_depth=options.history_depth,
            fleet=fleet,
            fleet_source=fleet_source,
            fleet_interval=options.interval,
        )
        app.deep = options.ebpf_deep

        def _exit(signum: int) -> None:
            # A hangup comes with a SIGCONT, which Textual's driver takes for a return from ctrl+z: it would
            # restart its output thread during the shutdown and deadlock it. Nothing is to be resumed now.
            signals.ignore(signal.SIGCONT)
            app.call_later(app.exit, 128 + signum)

        stack.enter_context(signals.exit_by(_exit))
        result = app.run()
    return result if isinstance(result, str) else int(result or 0)
