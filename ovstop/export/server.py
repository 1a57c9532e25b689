"""The headless HTTP server: ``/metrics`` rendered once per snapshot and shared by concurrent scrapes.

Scrapes arriving together share one collection (the sampler serializes rounds and reuses one younger
than ``max_age``) and one rendering per format (Prometheus text or OpenMetrics, by content
negotiation), so twenty scrapers cost one collection and one page, not twenty.

For ``ovstop --connect`` (a TUI attached to this host) the same server answers ``/snapshot.json`` (the
versioned snapshot document, rendered once per round like the metrics page) and ``/events?since=N`` (the
captured events numbered after N, in Retis's envelope, at most ``EVENTS_PER_PAGE`` per answer). Events are
polled, not streamed: every answer is whole, so a client holds no connection slot between polls and the
server's connection limits and timeouts apply to it as to a scraper. Every path sits behind the same TLS and
basic auth (:mod:`ovstop.export.httpd`).
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import math
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.exposition import choose_encoder, gzip_accepted

from ovstop.collect.demand import EVERYTHING
from ovstop.collect.sampler import Sampler
from ovstop.errors import OvstopError, SourceError
from ovstop.events.schema import encode
from ovstop.events.store import EventStore
from ovstop.export import snapshot as snapshot_doc
from ovstop.export.httpd import Limits, Server, serve_app
from ovstop.export.prometheus import render
from ovstop.export.webconfig import WebConfig

DEFAULT_PORT = 6103  # the port the OVS metrics RFC registers for its exporter
SCRAPE_SHARE = 0.8  # of a scraper's timeout, what collection may use
EVENTS_PER_PAGE = 1000
PATHS = ("/metrics", "/snapshot.json", "/events")
REMOTE_VIEWER = "remote viewer"
REMOTE_LEASE = 10.0
"""Seconds a ``/snapshot.json`` poll keeps everything collected (a viewer polls every interval)."""
JSON = "application/json"


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT`` -> (address, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
        ipaddress.ip_address(host)
    except ValueError:
        raise OvstopError(f"--listen {text!r}: expected ADDR:PORT such as 127.0.0.1:{DEFAULT_PORT}") from None
    return host, port


def scrape_budget(environ: dict[str, Any]) -> float | None:
    """The collection budget a scraper allows: 80% of ``X-Prometheus-Scrape-Timeout-Seconds`` (the rest is
    for rendering and the network), None without a usable header."""
    try:
        seconds = float(environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS", ""))
    except ValueError:
        return None
    return seconds * SCRAPE_SHARE if math.isfinite(seconds) and seconds > 0 else None


def _since(query: str) -> int:
    """``since=N`` of an /events query (0, everything held, when absent); a bad value is a ValueError."""
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "since":
            seq = int(value)
            if seq < 0:
                raise ValueError(value)
            return seq
    return 0


class MetricsEndpoint:
    """The WSGI application; answers 503 until a sampler is attached (while ovstop starts).

    ``events`` is the live event store when something captures events (None otherwise, with
    ``events_reason`` saying why, which /events passes on to a remote TUI's upcall pane).
    """

    def __init__(self, max_age: float = 1.0) -> None:
        self.max_age = max_age
        self.sampler: Sampler | None = None
        self.events: EventStore | None = None
        self.events_reason = "no event capture"
        self._lock = threading.Lock()
        self._page: tuple[tuple[int, str], bytes] | None = None
        self._doc: tuple[int, bytes] | None = None
        self.renders = 0

    def page(self, accept: str, budget: float | None = None) -> tuple[bytes, str]:
        """The body and content type for one scrape with this Accept header, collected within ``budget``."""
        if self.sampler is None:
            raise SourceError("ovstop is starting: no collection yet")
        started = time.monotonic()
        snapshot = self.sampler.sample(max_age=self.max_age, budget=budget)
        encoder, content_type = choose_encoder(accept)
        key = (snapshot.seq, content_type)
        with self._lock:
            if self._page is None or self._page[0] != key:
                self._page = (key, render(snapshot, encoder, time.monotonic() - started))
                self.renders += 1
            return self._page[1], content_type

    def snapshot_json(self) -> bytes:
        """The current round as the versioned snapshot document (shared by every client of that round)."""
        if self.sampler is None:
            raise SourceError("ovstop is starting: no collection yet")
        # A TUI attached here shows every pane (flows too): collect everything while it keeps polling.
        self.sampler.need(REMOTE_VIEWER, EVERYTHING, ttl=REMOTE_LEASE)
        snapshot = self.sampler.sample(max_age=self.max_age)
        with self._lock:
            if self._doc is None or self._doc[0] != snapshot.seq:
                self._doc = (snapshot.seq, json.dumps(snapshot_doc.to_dict(snapshot)).encode())
            return self._doc[1]

    def events_json(self, since: int) -> bytes:
        """Events numbered after ``since``: ``first`` is the number of the first one listed (a reader that
        fell behind the ring sees the gap), ``latest`` the newest number accepted (below ``since`` when this
        ovstop restarted); without a store, ``reason`` says why there are none."""
        if self.events is None:
            return json.dumps({"reason": self.events_reason, "first": 1, "latest": 0, "events": []}).encode()
        held, stats = self.events.since(since, sys.maxsize)  # every one still held, oldest first
        first = stats.accepted - len(held) + 1
        page = [encode(ev) for ev in held[:EVENTS_PER_PAGE]]
        return json.dumps({"first": first, "latest": stats.accepted, "events": page}).encode()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path not in ("/", *PATHS):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [f"ovstop serves {', '.join(PATHS)}\n".encode()]
        if self.sampler is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ovstop is starting\n"]
        try:
            if path == "/snapshot.json":
                body, content_type = self.snapshot_json(), JSON
            elif path == "/events":
                try:
                    since = _since(environ.get("QUERY_STRING", ""))
                except ValueError:
                    start_response("400 Bad Request", [("Content-Type", "text/plain")])
                    return [b"since= takes an event number (0 or more)\n"]
                body, content_type = self.events_json(since), JSON
            else:
                body, content_type = self.page(environ.get("HTTP_ACCEPT", ""), scrape_budget(environ))
        except OvstopError as exc:  # e.g. the recording listener of this round could not write
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"ovstop: {exc}\n".encode()]
        headers = [("Content-Type", content_type)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]


def serve(
    endpoint: MetricsEndpoint, host: str, port: int, web_config: WebConfig | None = None, limits: Limits | None = None
) -> Server:
    """Start serving in a daemon thread (see :mod:`ovstop.export.httpd`); a port in use is one clear error."""
    return serve_app(endpoint, host, port, web_config, limits)


def exposed_without_protection(host: str, web_config: WebConfig) -> str | None:
    """A warning when ``host`` is reachable beyond this machine and the web config has no TLS or no auth."""
    if ipaddress.ip_address(host).is_loopback:
        return None
    context = web_config.ssl_context
    client_certs = context is not None and context.verify_mode == ssl.CERT_REQUIRED
    missing = [
        what
        for what, there in (("TLS", context), ("authentication", web_config.auth_required or client_certs))
        if not there
    ]
    if not missing:
        return None
    return (
        f"listening on {host} without {' or '.join(missing)}: anyone who can reach this port reads the "
        "switch's ports, flows and tenants (see --web.config.file)"
    )
