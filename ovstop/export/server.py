"""The headless HTTP server: ``/metrics`` rendered once per snapshot and shared by concurrent scrapes.

Scrapes arriving together share one collection (the sampler serializes rounds and reuses one younger
than ``max_age``) and one rendering per format (Prometheus text or OpenMetrics, by content
negotiation), so twenty scrapers cost one collection and one page, not twenty.
"""

from __future__ import annotations

import gzip
import ipaddress
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.exposition import choose_encoder, gzip_accepted

from ovstop.collect.sampler import Sampler
from ovstop.errors import OvstopError, SourceError
from ovstop.export.httpd import Limits, Server, serve_app
from ovstop.export.prometheus import render
from ovstop.export.webconfig import WebConfig

DEFAULT_PORT = 6103  # the port the OVS metrics RFC registers for its exporter
SCRAPE_SHARE = 0.8  # of a scraper's timeout, what collection may use


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


class MetricsEndpoint:
    """The WSGI application; answers 503 until a sampler is attached (while ovstop starts)."""

    def __init__(self, max_age: float = 1.0) -> None:
        self.max_age = max_age
        self.sampler: Sampler | None = None
        self._lock = threading.Lock()
        self._page: tuple[tuple[int, str], bytes] | None = None
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

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"ovstop serves /metrics\n"]
        if self.sampler is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ovstop is starting\n"]
        try:
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


def serve(endpoint: MetricsEndpoint, host: str, port: int, web_config: WebConfig | None = None,
          limits: Limits | None = None) -> Server:
    """Start serving in a daemon thread (see :mod:`ovstop.export.httpd`); a port in use is one clear error."""
    return serve_app(endpoint, host, port, web_config, limits)


def exposed_without_protection(host: str, web_config: WebConfig) -> str | None:
    """A warning when ``host`` is reachable beyond this machine and the web config has no TLS or no auth."""
    if ipaddress.ip_address(host).is_loopback:
        return None
    context = web_config.ssl_context
    client_certs = context is not None and context.verify_mode == ssl.CERT_REQUIRED
    missing = [what for what, there in (("TLS", context), ("authentication", web_config.auth_required or client_certs))
               if not there]
    if not missing:
        return None
    return (f"listening on {host} without {' or '.join(missing)}: anyone who can reach this port reads the "
            "switch's ports, flows and tenants (see --web.config.file)")
