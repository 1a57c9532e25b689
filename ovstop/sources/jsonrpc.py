"""One JSON-RPC request with a deadline over an ``ovs.jsonrpc.Connection``.

The ``ovs`` library's ``transact_block`` waits forever for a reply; every ovstop call needs a deadline,
so this loop polls the connection with a timer instead.

Replies are decoded by :class:`Connection`, the library's connection with the standard library's JSON
decoder in place of its own: the ``ovs`` wheel on PyPI comes without its C parser, and the pure-Python
one costs about a microsecond per byte (seconds for the 3 MB reply of a 10,000-flow ``dpctl/dump-flows``;
134 ms against 3.9 ms for the 390 KB OVSDB update of 1,000 interfaces' statistics). The OVSDB replica's
sessions adopt their connections too (:meth:`Connection.adopt`).
"""

from __future__ import annotations

import errno
import json
import os
import time
from typing import Any

import ovs.jsonrpc
import ovs.poller
import ovs.stream


class RpcError(Exception):
    """The connection failed, closed, or the deadline passed; the message says which."""


def strerror(error: int) -> str:
    return "connection closed" if error in (0, ovs.jsonrpc.EOF) else os.strerror(error)


class Connection(ovs.jsonrpc.Connection):
    """``ovs.jsonrpc.Connection`` receiving through ``json`` (C speed); sending is the library's own.

    Made for one request in flight at a time: a reply is looked for once the bytes received so far end
    with ``}`` (every JSON-RPC message is an object), so a large reply is decoded once, not per chunk.
    """

    _CHUNK = 1 << 16

    def __init__(self, stream: ovs.stream.Stream) -> None:
        super().__init__(stream)
        self._pending = bytearray()  # received, not yet decoded
        self._decoder = json.JSONDecoder()

    @classmethod
    def adopt(cls, conn: ovs.jsonrpc.Connection) -> Connection | None:
        """``conn`` (the library's, as an ``ovs.jsonrpc.Session`` makes them) as one of these, or None while
        it is part-way through reading a message (its parser holds what it read), or when it is not made as
        this ``ovs`` library version makes it (it then keeps reading with the library's own parser)."""
        state = vars(conn)
        if state.get("parser", False) is not None or state.get("input", True):
            return None
        adopted = cls.__new__(cls)
        adopted.__dict__.update(conn.__dict__)  # the stream, what is queued to send, status and counts
        adopted._pending = bytearray()
        adopted._decoder = json.JSONDecoder()
        return adopted

    @classmethod
    def adopt_session(cls, session: ovs.jsonrpc.Session) -> None:
        """Have ``session`` receive through one of these from now on: it makes a library connection on each
        (re)connection, adopted here once it is between two messages (call this after each of its runs)."""
        if type(session.rpc) is ovs.jsonrpc.Connection and (adopted := cls.adopt(session.rpc)):
            session.rpc = adopted

    def _take(self) -> ovs.jsonrpc.Message | None:
        """The first whole message in ``_pending`` (removed from it), or None while it is incomplete."""
        if not self._pending.rstrip().endswith(b"}"):
            return None
        try:
            text = self._pending.decode()
            start = len(text) - len(text.lstrip())
            value, end = self._decoder.raw_decode(text, start)
        except UnicodeDecodeError:
            self.error(errno.EILSEQ)
            return None
        except json.JSONDecodeError:
            return None  # a "}" inside a string that is still arriving
        self._pending = bytearray(text[end:].encode())
        msg = ovs.jsonrpc.Message.from_json(value)
        if not isinstance(msg, ovs.jsonrpc.Message):
            self.error(errno.EPROTO)
            return None
        return msg

    def recv(self) -> tuple[int, ovs.jsonrpc.Message | None]:
        while not self.status:
            msg = self._take()
            if msg is not None:
                return 0, msg
            if self.status:
                break
            error, data = self.stream.recv(self._CHUNK)
            if error == errno.EAGAIN:
                return error, None
            if error or not data:
                self.error(error or ovs.jsonrpc.EOF)
                break
            self._pending += data
            self.received_bytes += len(data)
        return self.status, None

    def recv_wait(self, poller: ovs.poller.Poller) -> None:
        if self.status or self._pending.rstrip().endswith(b"}"):
            poller.immediate_wake()
        else:
            self.stream.recv_wait(poller)


def connect(remote: str, timeout: float) -> Connection:
    """Open a stream (``unix:PATH``, ``tcp:IP:PORT`` …) within ``timeout`` seconds."""
    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), int(timeout * 1000))
    if error:
        raise RpcError(f"cannot connect to {remote}: {strerror(error)}")
    return Connection(stream)


def transact(conn: ovs.jsonrpc.Connection, method: str, params: list[Any], timeout: float) -> Any:
    """Send one request and return its result; a JSON-RPC error reply raises RpcError with its text."""
    request = ovs.jsonrpc.Message.create_request(method, params)
    deadline = time.monotonic() + timeout
    error = conn.send(request)
    while not error:
        conn.run()
        error, reply = conn.recv()
        if error == errno.EAGAIN:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RpcError(f"'{method}' timed out after {timeout:.3g}s")
            poller = ovs.poller.Poller()
            conn.wait(poller)
            conn.recv_wait(poller)
            poller.timer_wait(max(1, int(remaining * 1000)))
            poller.block()
            error = 0
            continue
        if error or reply is None:
            break
        if reply.id != request.id:
            continue
        if reply.error is not None:
            raise RpcError(f"'{method}' failed: {str(reply.error).strip()}")
        return reply.result
    raise RpcError(f"'{method}': {strerror(error)}")
