"""The headless HTTP server: ``/metrics`` over prometheus-client's threaded WSGI server."""

from __future__ import annotations

import ipaddress
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from ovstop.errors import OvstopError

DEFAULT_PORT = 6103  # the port the OVS metrics RFC registers for its exporter


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


def serve(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Start serving in a daemon thread; a port in use or a bad address is one clear error."""
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise OvstopError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return server
