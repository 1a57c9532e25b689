"""One JSON-RPC request with a deadline over an ``ovs.jsonrpc.Connection``.

The ``ovs`` library's ``transact_block`` waits forever for a reply; every ovstop call needs a deadline,
so this loop polls the connection with a timer instead.
"""

from __future__ import annotations

import errno
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


def connect(remote: str, timeout: float) -> ovs.jsonrpc.Connection:
    """Open a stream (``unix:PATH``, ``tcp:IP:PORT`` …) within ``timeout`` seconds."""
    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), int(timeout * 1000))
    if error:
        raise RpcError(f"cannot connect to {remote}: {strerror(error)}")
    return ovs.jsonrpc.Connection(stream)


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
                raise RpcError(f"'{method}' timed out after {timeout:g}s")
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
