"""A small HTTP/1.1 server for ovstop's endpoints that holds up when exposed.

One event-loop thread (asyncio) owns every socket: it accepts, applies the limits, runs TLS handshakes
without blocking, parses requests and writes answers. An application answers a request at once from what it
already holds (ovstop's pages are rendered once per round), or hands back a function that may block (waiting
for a round, rendering a page, checking a password with bcrypt), which one of a few worker threads runs while
the loop goes on serving. So the threads that want Python's GIL are the loop, the workers and the collector,
never one per connection: hundreds of open connections cost a selector entry each, not a thread taking its
turn on the GIL, and the answer to a request does not queue behind hundreds of others.

In front of every endpoint is what an exporter people deploy needs: TLS and basic auth from
:mod:`ovstop.export.webconfig`, a bounded number of connections (beyond it a connection is closed at once
rather than queued without end), an idle timeout between requests and a read timeout within one (and for a
TLS handshake, and for a client that stops reading its answer), a listen backlog that absorbs a burst, 405
for methods other than GET and HEAD, HEAD without a body, and no ``Server`` banner naming the runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TypeVar

from ovstop.errors import OvstopError
from ovstop.export.webconfig import WebConfig

ALLOWED_METHODS = ("GET", "HEAD")
# What a Go exporter answers to plain HTTP on its TLS port: a hint instead of a silent close.
PLAIN_TO_TLS = b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
MAX_HEAD = 16384
"""Bytes a request line and its headers may take (431 beyond), and what a client may send ahead while its
previous request is answered (closed beyond)."""
_STATUS_LINES = {status.value: f"HTTP/1.1 {status.value} {status.phrase}" for status in HTTPStatus}
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_ACCEPT_BATCH = 64  # connections accepted per wake-up before the loop serves the others


@dataclass(frozen=True)
class Limits:
    """Connection limits. The idle timeout outlasts a usual scrape interval so Prometheus keeps its connection."""

    max_connections: int = 512
    idle_timeout: float = 60.0  # between requests on a kept-alive connection
    read_timeout: float = 10.0  # for a request once begun, a TLS handshake, a client reading its answer
    backlog: int = 512
    workers: int = 8  # threads for the answers that may block


@dataclass(frozen=True)
class Request:
    """A GET (or HEAD, answered as a GET without the body). Header names are lower-case."""

    path: str
    query: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]  # the server adds Date, Content-Length and Connection
    body: bytes


def text(status: int, message: str) -> Response:
    """A plain-text answer."""
    return Response(status, (("Content-Type", "text/plain"),), message.encode())


Answer = Response | Callable[[], Response]
App = Callable[[Request], Answer]
"""An application: the answer now, or a function (that may block) the server runs on a worker thread."""

_UNAUTHORIZED = Response(
    401, (("WWW-Authenticate", 'Basic realm="ovstop"'), ("Content-Type", "text/plain")), b"Unauthorized\n"
)
_T = TypeVar("_T")


def _guarded(path: str, make: Callable[[], _T]) -> _T | Response:
    """``make()``, or a 500 and one line on stderr when it raises (a bug in an endpoint; the server goes on)."""
    try:
        return make()
    except Exception as exc:
        print(f"ovstop: internal error answering {path}: {exc!r}", file=sys.stderr, flush=True)
        return text(500, "internal error\n")


class _Date:
    """The ``Date`` header's value, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second, self._value = second, formatdate(second, usegmt=True)
        return self._value


def _parse(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    """Method, target, version and headers (names lower-case) of a request head; None when malformed."""
    line, *lines = head.decode("latin-1").split("\n")
    parts = line.rstrip("\r").split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1") or not parts[1]:
        return None
    headers: dict[str, str] = {}
    for raw in lines:
        name, sep, value = raw.rstrip("\r").partition(":")
        if not sep or not name or name != name.strip():  # also refuses obsolete line folding
            return None
        name, value = name.lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return parts[0], parts[1], parts[2], headers


class _Connection(asyncio.Protocol):
    """One client connection: its requests in order, one at a time, each within the connection's timeouts."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.timer: asyncio.TimerHandle | None = None
        self.deadline: float | None = None  # loop time by which the connection must make progress (None: none)
        self.expired: Callable[[], None] = lambda: None  # what happens then
        self.waiting = False  # a worker is making the answer to the current request
        self.blocked = False  # the client does not read its answers fast enough
        self.closing = False
        self.ended = False  # the client half-closed: the answer being made is its last

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)
        self._expect(self.server.limits.idle_timeout, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None
        self.server.connections.discard(self)
        self.server.release()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # a request body or pipelined requests after a final answer: discarded
        self.buffer += data
        if self.waiting or self.blocked:
            if len(self.buffer) > MAX_HEAD and self.transport is not None:
                self.transport.abort()
            return
        self._next()

    def eof_received(self) -> bool:
        # A client that half-closes after its request (``nc -N``) still gets the answer a worker is making
        # (over TLS a half-close cannot be kept: asyncio closes the connection).
        assert self.transport is not None
        self.ended = self.waiting and self.transport.get_extra_info("sslcontext") is None
        return self.ended

    def pause_writing(self) -> None:
        assert self.transport is not None
        self.blocked = True
        self._expect(self.server.limits.read_timeout, self.transport.abort)

    def resume_writing(self) -> None:
        self.blocked = False
        self._next()

    def _expect(self, seconds: float, then: Callable[[], None]) -> None:
        """Call ``then`` unless the connection makes progress (the next ``_expect``) within ``seconds``. One
        timer per connection, moved only when the new deadline is earlier (a request a millisecond would
        otherwise cost a timer cancelled and one scheduled each)."""
        loop = self.server.loop
        self.deadline, self.expired = loop.time() + seconds, then
        if self.timer is not None and self.timer.when() > self.deadline:
            self.timer.cancel()
            self.timer = None
        if self.timer is None:
            self.timer = loop.call_at(self.deadline, self._check)

    def _check(self) -> None:
        self.timer = None
        if self.transport is None or self.deadline is None:
            return
        if self.server.loop.time() < self.deadline:
            self.timer = self.server.loop.call_at(self.deadline, self._check)
        else:
            self.expired()

    def _next(self) -> None:
        """Answer the complete requests held, in order, until one needs a worker or none is complete."""
        while self.transport is not None and not (self.waiting or self.blocked or self.closing):
            end = _END_OF_HEAD.search(self.buffer)
            if end is None:
                if len(self.buffer) > MAX_HEAD:
                    self._send(text(431, "request head too large\n"), head_only=False, close=True)
                elif self.buffer:
                    self._expect(self.server.limits.read_timeout, self.transport.close)
                else:
                    self._expect(self.server.limits.idle_timeout, self.transport.close)
                return
            head = bytes(self.buffer[: end.start()])
            del self.buffer[: end.end()]
            self._request(head)

    def _request(self, head: bytes) -> None:
        parsed = _parse(head)
        if parsed is None:
            self._send(text(400, "bad request\n"), head_only=False, close=True)
            return
        method, target, version, headers = parsed
        if method not in ALLOWED_METHODS:
            # The request's body (if any) is not read: close rather than parse it as the next request.
            allow = (("Allow", ", ".join(ALLOWED_METHODS)), ("Content-Type", "text/plain"))
            self._send(Response(405, allow, b"ovstop answers GET and HEAD only\n"), head_only=False, close=True)
            return
        connection = {token.strip() for token in headers.get("connection", "").lower().split(",")}
        close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        # No body is read on GET or HEAD either: a request announcing one is the connection's last.
        close = close or headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        path, _, query = target.partition("?")
        answer = self.server.answer(Request(path, query, headers))
        head_only = method == "HEAD"
        if isinstance(answer, Response):
            self._send(answer, head_only, close)
            return
        self.waiting = True
        self.deadline = None  # no timeout while the answer is made
        self.server.workers.submit(path, answer, lambda response: self._answered(response, head_only, close))

    def _answered(self, response: Response, head_only: bool, close: bool) -> None:
        self.waiting = False
        if self.transport is not None and not self.transport.is_closing():
            self._send(response, head_only, close or self.ended)
            self._next()

    def _send(self, response: Response, head_only: bool, close: bool) -> None:
        assert self.transport is not None
        lines = [_STATUS_LINES[response.status], f"Date: {self.server.date.now()}"]
        lines += [f"{name}: {value}" for name, value in response.headers]
        lines.append(f"Content-Length: {len(response.body)}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.transport.write(head if head_only else head + response.body)
        if close:
            self.closing = True
            self.buffer.clear()
            if self.transport.can_write_eof() and not self.ended:
                # Half-close and read on until the client closes: closing with its unread bytes (a request
                # body) would reset the connection, which can discard the answer before the client reads it.
                self.transport.write_eof()
                self._expect(self.server.limits.read_timeout, self.transport.abort)
            else:
                self.transport.close()


class _Workers:
    """A fixed set of daemon threads running answers that may block; each result goes back to the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[tuple[str, Callable[[], Response], Callable[[Response], None]] | None]
        self._jobs = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"ovstop-http-worker-{n}", daemon=True) for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, path: str, job: Callable[[], Response], done: Callable[[Response], None]) -> None:
        self._jobs.put((path, job, done))

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            path, job, done = item
            response = _guarded(path, job)
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped meanwhile
                self._loop.call_soon_threadsafe(done, response)

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


class Server:
    """The listening socket, the loop that serves it (:meth:`serve_forever`) and the worker threads."""

    def __init__(self, address: tuple[str, int], app: App, web_config: WebConfig, limits: Limits) -> None:
        self.app = app
        self.web_config = web_config
        self.limits = limits
        self.socket = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(limits.backlog)
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_port = int(self.socket.getsockname()[1])
        self.scheme = "https" if web_config.ssl_context else "http"
        self.loop = asyncio.new_event_loop()
        self.workers = _Workers(self.loop, limits.workers)
        self.date = _Date()
        self.connections: set[_Connection] = set()
        self._open = 0  # sockets accepted and not yet closed (connections, and those before or in a handshake)
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        """Serve on this thread until :meth:`shutdown`."""
        try:
            self.loop.add_reader(self.socket.fileno(), self._accept)
            self.loop.run_forever()
            self.loop.remove_reader(self.socket.fileno())
            self.loop.run_until_complete(self._close_all())
            self.loop.close()
        finally:
            self._stopped.set()

    async def _close_all(self) -> None:
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, asyncio.sleep(0), return_exceptions=True)

    def shutdown(self) -> None:
        """Stop serving (from another thread) and close every connection; returns once the loop has ended."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._stopped.wait()

    def server_close(self) -> None:
        self.socket.close()
        self.workers.stop()

    def release(self) -> None:
        self._open -= 1

    def answer(self, request: Request) -> Answer:
        """The application's answer behind basic auth; checking a password not seen before is a worker's job."""
        config, path = self.web_config, request.path
        credentials = request.headers.get("authorization")
        if config.remembered(credentials):
            return _guarded(path, lambda: self.app(request))

        def checked() -> Response:
            if not config.authorized(credentials):
                return _UNAUTHORIZED
            answer = self.app(request)
            return answer if isinstance(answer, Response) else answer()

        return checked

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, _ = self.socket.accept()
            except OSError:  # none left (EAGAIN), or one aborted or out of descriptors: the next wake-up
                return
            if self._open >= self.limits.max_connections:
                sock.close()  # over the limit: closed at once, the client sees it and retries
                continue
            self._open += 1
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            context = self.web_config.ssl_context
            if context is None:
                self.loop.create_task(self._start(sock, None))
            else:
                self._sniff(sock, context)

    def _sniff(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        """On the TLS port: a handshake once the client opens with a TLS record (0x16); plain HTTP gets the
        Go exporters' hint; a client that sends nothing within the read timeout is closed."""
        fd = sock.fileno()

        def first_byte() -> None:
            self.loop.remove_reader(fd)
            timer.cancel()
            try:
                first = sock.recv(1, socket.MSG_PEEK)
                if first == b"\x16":
                    self.loop.create_task(self._start(sock, context))
                    return
                if first:
                    sock.recv(MAX_HEAD)  # read what was sent, so that closing does not reset the hint away
                    sock.send(PLAIN_TO_TLS)
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self._drop(sock)

        def expired() -> None:
            self.loop.remove_reader(fd)
            self._drop(sock)

        timer = self.loop.call_later(self.limits.read_timeout, expired)
        self.loop.add_reader(fd, first_byte)

    async def _start(self, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        timeout = self.limits.read_timeout if context else None
        try:
            await self.loop.connect_accepted_socket(
                lambda: _Connection(self), sock, ssl=context, ssl_handshake_timeout=timeout
            )
        except OSError:  # a failed or timed-out handshake, a client certificate refused, a reset
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        sock.close()
        self.release()


def serve_app(
    app: App, host: str, port: int, web_config: WebConfig | None = None, limits: Limits | None = None
) -> Server:
    """Start serving ``app`` in a daemon thread; a port in use or a bad address is one clear error."""
    try:
        server = Server((host, port), app, web_config or WebConfig(), limits or Limits())
    except OSError as exc:
        raise OvstopError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name="ovstop-http", daemon=True).start()
    return server
