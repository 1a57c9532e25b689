"""The headless HTTP server: ``/metrics`` rendered once per snapshot and shared by concurrent scrapes.

A scrape never waits for a collection round: rounds run on the refresher's thread
(:mod:`ovstop.collect.refresher`), and a scrape is answered from the newest snapshot it published, when
that is younger than the refresher's bound, with the snapshot's age on the page
(``ovstop_snapshot_age_seconds``). An older snapshot is never served: the scrape waits for the round in
flight within its budget (80% of ``X-Prometheus-Scrape-Timeout-Seconds``), else gets 503 and the reason.
Scrapes share one rendering per snapshot and format (Prometheus text or OpenMetrics, by content
negotiation), so twenty scrapers cost one collection and one page, not twenty.

For ``ovstop --connect`` (a TUI attached to this host) the same server answers ``/snapshot.json`` (the
versioned snapshot document, rendered once per round like the metrics page) and ``/events?since=N`` (the
captured events numbered after N, in Retis's envelope, at most ``EVENTS_PER_PAGE`` per answer). Events are
polled, not streamed: every answer is whole, so a client holds no connection slot between polls and the
server's connection limits and timeouts apply to it as to a scraper. Every path sits behind the same TLS and
basic auth (:mod:`ovstop.export.httpd`).
"""

from __future__ import annotations

import ipaddress
import json
import math
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client.exposition import choose_encoder, gzip_accepted

from ovstop.collect.demand import EVERYTHING
from ovstop.collect.refresher import Published, Refresher
from ovstop.errors import OvstopError
from ovstop.events.schema import encode
from ovstop.events.store import EventStore
from ovstop.export import snapshot as snapshot_doc
from ovstop.export.httpd import Answer, Limits, Request, Response, Server, serve_app, text
from ovstop.export.pages import PageCache
from ovstop.export.prometheus import SCRAPE_SECONDS, SNAPSHOT_AGE, Tail
from ovstop.export.webconfig import WebConfig
from ovstop.model.store import Snapshot

DEFAULT_PORT = 6103  # the port the OVS metrics RFC registers for its exporter
SCRAPE_SHARE = 0.8  # of a scraper's timeout, what waiting for a young enough snapshot may use
DEFAULT_SCRAPE_TIMEOUT = 10.0  # Prometheus's default scrape_timeout, for a client that does not say
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


def scrape_budget(headers: Mapping[str, str]) -> float:
    """How long a request may wait for a young enough snapshot: 80% of ``X-Prometheus-Scrape-Timeout-Seconds``
    (the rest is for rendering and the network), of Prometheus's default timeout without a usable header."""
    try:
        seconds = float(headers.get("x-prometheus-scrape-timeout-seconds", ""))
    except ValueError:
        seconds = DEFAULT_SCRAPE_TIMEOUT
    if not (math.isfinite(seconds) and seconds > 0):
        seconds = DEFAULT_SCRAPE_TIMEOUT
    return seconds * SCRAPE_SHARE


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


class _Page:
    """One snapshot rendered in one format, shared by every request for it. ``body`` stops before the
    per-request tail (on /metrics: the scrape's own series, then OpenMetrics' ``# EOF``); its gzip form is
    compressed once (by the first request that wants it, or ahead of them on the refresher's thread), and each
    request compresses only its tail onto a copy of that state."""

    def __init__(self, seq: int, body: bytes) -> None:
        self.seq = seq
        self.body = body
        self._gzip: tuple[bytes, Any] | None = None
        self._gzip_lock = threading.Lock()

    @property
    def gzip_ready(self) -> bool:
        """Whether the body is compressed already (a gzipped answer then costs only its tail)."""
        return self._gzip is not None

    def compress(self) -> tuple[bytes, Any]:
        """The body's gzip form and the compressor's state after it (made once)."""
        with self._gzip_lock:
            if self._gzip is None:
                compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
                self._gzip = (compressor.compress(self.body), compressor)
            return self._gzip

    def encoded(self, tail: bytes, gzipped: bool) -> bytes:
        if not gzipped:
            return self.body + tail
        head, compressor = self.compress()
        own = compressor.copy()  # zlib locks it while copying; nothing compresses into it after compress()
        return head + own.compress(tail) + own.flush()


Renderer = Callable[[Snapshot], bytes]


class MetricsEndpoint:
    """The application (see :data:`ovstop.export.httpd.App`); answers 503 until a :class:`Refresher` is
    attached (while ovstop starts).

    Each snapshot is rendered once per format: by the first request for it, or, when the previous
    snapshot was asked for in that format, on the refresher's thread before the snapshot is published, and
    gzip-compressed there too when it was asked for compressed (so under steady scraping no request waits for
    a rendering or a compression either). A request that finds its page rendered
    (and, for gzip, compressed) for a snapshot young enough is answered at once on the server's event loop;
    one that must wait for a round or a rendering, every /snapshot.json (it renews the viewer's lease on the
    sampler, which waits for a round in flight) and every /events page are answered on a worker thread.

    ``events`` is the live event store when something captures events (None otherwise, with
    ``events_reason`` saying why, which /events passes on to a remote TUI's upcall pane).
    """

    def __init__(self) -> None:
        self.refresher: Refresher | None = None
        self.events: EventStore | None = None
        self.events_reason = "no event capture"
        self._lock = threading.Lock()  # held only to read or replace the dictionaries below
        self._render_lock = threading.Lock()  # one rendering on request at a time (so each is done once)
        self._pages: dict[str, _Page] = {}  # content type -> the newest rendering in that format
        self._caches: dict[str, PageCache] = {}  # content type -> the families of its last page
        self._wanted: dict[str, tuple[Renderer, bool]] = {}  # formats asked for since the last round, gzip too?
        self._tails: dict[str, Tail] = {}  # content type -> its per-scrape tail
        self.renders = 0

    def attach(self, refresher: Refresher) -> None:
        """Serve what ``refresher`` publishes; render the formats in demand before it publishes them."""
        refresher.prepare.append(self._prerender)
        self.refresher = refresher

    def _prerender(self, snapshot: Snapshot) -> None:
        """On the refresher's thread: this snapshot in the formats the previous one was asked in."""
        with self._lock:
            wanted, self._wanted = self._wanted, {}
        for content_type, (renderer, gzipped) in wanted.items():
            page = _Page(snapshot.seq, renderer(snapshot))
            if gzipped:
                page.compress()
            with self._lock:
                self._pages[content_type] = page
                self.renders += 1

    def _page(
        self, published: Published, content_type: str, renderer: Renderer, block: bool, gzipped: bool
    ) -> _Page | None:
        """``published`` in this format, shared by every request for it; when it is not rendered yet, None
        unless ``block`` (then this request renders it)."""
        seq = published.snapshot.seq
        with self._lock:
            gzip_wanted = gzipped or (content_type in self._wanted and self._wanted[content_type][1])
            self._wanted[content_type] = (renderer, gzip_wanted)
            page = self._pages.get(content_type)
        if page is not None and page.seq == seq:
            return page
        if not block:
            return None
        with self._render_lock:
            with self._lock:
                page = self._pages.get(content_type)
            if page is not None and page.seq == seq:
                return page  # rendered by the request before this one
            fresh = _Page(seq, renderer(published.snapshot))
            with self._lock:
                page = self._pages.get(content_type)
                if page is None or page.seq < seq:  # not over a newer one the refresher rendered meanwhile
                    self._pages[content_type] = fresh
                self.renders += 1
            return fresh

    def _published(self, until: float, block: bool) -> Published | None:
        assert self.refresher is not None
        if not block:
            return self.refresher.ready()
        return self.refresher.read(max(0.0, until - time.monotonic()))

    def metrics(
        self, accept: str, started: float, until: float, block: bool, gzipped: bool
    ) -> tuple[_Page, bytes, str] | None:
        """One scrape with this Accept header: the shared page, this scrape's tail and the content type (None
        when that needs a wait, unless ``block``)."""
        published = self._published(until, block)
        if published is None:
            return None
        encoder, content_type = choose_encoder(accept)

        pages = self._caches.get(content_type) or self._caches.setdefault(content_type, PageCache(encoder))
        renderer = pages.render  # the page without OpenMetrics' # EOF: the tail ends the page

        page = self._page(published, content_type, renderer, block, gzipped)
        if page is None:
            return None
        tail = self._tails.get(content_type) or self._tails.setdefault(content_type, Tail(encoder))
        values = {SNAPSHOT_AGE: published.age(), SCRAPE_SECONDS: time.monotonic() - started}
        return page, tail.render(values), content_type

    def snapshot_json(self, until: float, gzipped: bool) -> _Page:
        """The newest round as the versioned snapshot document (shared by every client of that round). May
        block: renewing the viewer's lease waits for the sampler's round in flight."""
        assert self.refresher is not None
        # A TUI attached here shows every pane (flows too): collect everything while it keeps polling.
        self.refresher.sampler.need(REMOTE_VIEWER, EVERYTHING, ttl=REMOTE_LEASE)
        published = self.refresher.read(max(0.0, until - time.monotonic()))
        page = self._page(published, JSON, _snapshot_document, True, gzipped)
        assert page is not None  # rendered here when it was not
        return page

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

    def __call__(self, request: Request) -> Answer:
        path = request.path
        if path not in ("/", *PATHS):
            return text(404, f"ovstop serves {', '.join(PATHS)}\n")
        if self.refresher is None:
            return text(503, "ovstop is starting\n")
        gzipped = gzip_accepted(request.headers.get("accept-encoding", ""))
        if path == "/events":
            try:
                since = _since(request.query)
            except ValueError:
                return text(400, "since= takes an event number (0 or more)\n")
            return lambda: _ok(_Page(0, self.events_json(since)), b"", JSON, gzipped)
        started = time.monotonic()
        until = started + scrape_budget(request.headers)

        def answer(block: bool) -> Response | None:
            try:
                found = (
                    (self.snapshot_json(until, gzipped), b"", JSON)
                    if path == "/snapshot.json"
                    else self.metrics(request.headers.get("accept", ""), started, until, block, gzipped)
                )
            except OvstopError as exc:  # no snapshot young enough, or rounds stopped (a recording that failed)
                return text(503, f"ovstop: {exc}\n")
            if found is None or (gzipped and not block and not found[0].gzip_ready):
                return None
            page, tail, content_type = found
            return _ok(page, tail, content_type, gzipped)

        def waited() -> Response:
            response = answer(block=True)
            assert response is not None  # a blocking read returns a snapshot or raises; a page is rendered
            return response

        return (None if path == "/snapshot.json" else answer(block=False)) or waited


def _ok(page: _Page, tail: bytes, content_type: str, gzipped: bool) -> Response:
    headers = [("Content-Type", content_type)]
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    return Response(200, tuple(headers), page.encoded(tail, gzipped))


def _snapshot_document(snapshot: Snapshot) -> bytes:
    return json.dumps(snapshot_doc.to_dict(snapshot)).encode()


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
