"""A small HTTP/1.1 server for ovstop's endpoints that holds up when exposed.

It hosts a WSGI application (responses are small and built whole), and puts in front of every endpoint
what an exporter people deploy needs: TLS and basic auth from :mod:`ovstop.export.webconfig`, a bounded
number of connections (beyond it a connection is closed at once rather than queued without end), an idle
timeout between requests and a read timeout within one, a listen backlog that absorbs a burst, 405 for
methods other than GET and HEAD, HEAD without a body, and no ``Server`` banner naming the runtime.
"""

from __future__ import annotations

import io
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ovstop.errors import OvstopError
from ovstop.export.webconfig import WebConfig

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ALLOWED_METHODS = ("GET", "HEAD")
# What a Go exporter answers to plain HTTP on its TLS port: a hint instead of a silent close.
PLAIN_TO_TLS = b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"


@dataclass(frozen=True)
class Limits:
    """Connection limits. The idle timeout outlasts a usual scrape interval so Prometheus keeps its connection."""

    max_connections: int = 512
    idle_timeout: float = 60.0  # between requests on a kept-alive connection
    read_timeout: float = 10.0  # for each read once a request (or the TLS handshake) has begun
    backlog: int = 512


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def handle_one_request(self) -> None:
        # Idle until the first byte of a request, then the read timeout for the rest of it.
        self.connection.settimeout(self.server.limits.idle_timeout)
        if not self._wait_for_request():
            self.close_connection = True
            return
        self.connection.settimeout(self.server.limits.read_timeout)
        super().handle_one_request()

    def _wait_for_request(self) -> bool:
        """Block until request bytes arrive (True) or the idle timeout, a reset or EOF ends the connection."""
        assert isinstance(self.rfile, io.BufferedReader)
        try:
            return bool(self.rfile.peek(1))
        except OSError:
            return False

    def send_response(self, code: int, message: str | None = None) -> None:
        # BaseHTTPRequestHandler would add "Server: BaseHTTP/0.6 Python/3.x": only the status and Date.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log on stderr (a scrape a second would flood it)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def __getattr__(self, name: str) -> Any:
        # Any other method (POST, PUT, DELETE, OPTIONS, made-up ones): 405, not 501 or a 200.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _method_not_allowed(self) -> None:
        # The request's body (if any) is not read: close rather than parse it as the next request.
        self.close_connection = True
        self._reply(
            405,
            "405 Method Not Allowed",
            [("Allow", ", ".join(ALLOWED_METHODS)), ("Connection", "close")],
            b"ovstop answers GET and HEAD only\n",
        )

    def _reply(self, code: int, status: str, headers: list[tuple[str, str]], body: bytes, head: bool = False) -> None:
        self.send_response(code, status.partition(" ")[2])
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        config = self.server.web_config
        if not config.authorized(self.headers.get("Authorization")):
            self._reply(
                401,
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="ovstop"'), ("Content-Type", "text/plain")],
                b"Unauthorized\n",
                head,
            )
            return
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",  # HEAD is answered as GET without the body
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": self.request_version,
            "wsgi.url_scheme": "https" if config.ssl_context else "http",
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = value
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started[:] = [status, headers]

        try:
            body = b"".join(self.server.app(environ, start_response))
            status, headers = started
        except Exception as exc:  # a bug in an endpoint: one line on stderr and a 500; the server goes on
            print(f"ovstop: internal error answering {path}: {exc!r}", file=sys.stderr, flush=True)
            self._reply(500, "500 Internal Server Error", [("Content-Type", "text/plain")], b"internal error\n", head)
            return
        self._reply(int(status.split()[0]), status, headers, body, head)


def _plain_http(sock: socket.socket) -> bool:
    """Whether the client opened with something other than a TLS handshake record (0x16), e.g. ``GET``."""
    first = sock.recv(1, socket.MSG_PEEK)
    return bool(first) and first != b"\x16"


class Server(ThreadingHTTPServer):
    """One thread per connection, at most ``limits.max_connections`` of them."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: WsgiApp, web_config: WebConfig, limits: Limits) -> None:
        self.app = app
        self.web_config = web_config
        self.limits = limits
        self.request_queue_size = limits.backlog
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host's FQDN (a DNS query at start-up) for nothing.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def scheme(self) -> str:
        return "https" if self.web_config.ssl_context else "http"

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # Over the limit the connection is closed at once: the client sees it and retries, nothing piles up.
        return self._slots.acquire(blocking=False)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            context = self.web_config.ssl_context
            if context is not None:
                request.settimeout(self.limits.read_timeout)
                try:
                    if _plain_http(request):
                        request.sendall(PLAIN_TO_TLS)
                        raise ssl.SSLError("plain HTTP on the TLS port")
                    request = context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    # Plain HTTP to the TLS port, a failed handshake, a client certificate refused.
                    self.shutdown_request(request)
                    return
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets or times out is not an error worth a traceback on stderr.
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handle_error(request, client_address)


def serve_app(
    app: WsgiApp, host: str, port: int, web_config: WebConfig | None = None, limits: Limits | None = None
) -> Server:
    """Start serving ``app`` in a daemon thread; a port in use or a bad address is one clear error."""
    try:
        server = Server((host, port), app, web_config or WebConfig(), limits or Limits())
    except OSError as exc:
        raise OvstopError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name="ovstop-http", daemon=True).start()
    return server
