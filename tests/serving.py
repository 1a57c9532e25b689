"""The headless endpoint in a test's own process, as ``ovstop --headless`` assembles it: a refresher running
the sampler's rounds on its thread, the endpoint answering from what it publishes, the real HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ovstop.collect.refresher import Refresher
from ovstop.collect.sampler import Sampler
from ovstop.export.httpd import Server
from ovstop.export.server import MetricsEndpoint, serve
from ovstop.export.webconfig import WebConfig


@contextmanager
def serving(
    sampler: Sampler,
    interval: float = 1.0,
    web_config: WebConfig | None = None,
    fresh: float | None = None,
    bound: float | None = None,
) -> Iterator[tuple[MetricsEndpoint, Server]]:
    """Serve ``sampler``'s rounds (one every ``interval`` s, see :class:`Refresher` for ``fresh`` and
    ``bound``) on a free loopback port until the block ends."""
    endpoint = MetricsEndpoint()
    server = serve(endpoint, "127.0.0.1", 0, web_config)
    refresher = Refresher(sampler, interval, fresh, bound)
    endpoint.attach(refresher)
    try:
        with refresher:
            yield endpoint, server
    finally:
        server.shutdown()
        server.server_close()
