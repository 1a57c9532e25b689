"""A unix-socket JSON-RPC peer that answers from a script: garbage for tests/test_garbage.py, recorded
OVS replies for the unixctl client's format tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ScriptedPeer:
    """A unix-socket JSON-RPC peer answering each request with the next reply of its script (cycling).

    ``("result", v)`` and ``("error", v)`` answer with that member; ``("raw", bytes)`` sends the bytes as
    they are; ``("silent", None)`` sends nothing; ``("close", None)`` hangs up; ``("then", (v, [m, ...]))``
    answers with result ``v``, then sends each message ``m`` (e.g. a notification) as it is.
    """

    def __init__(self, path: Path, script: list[Any]) -> None:
        self.script = script
        self.turn = 0
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(path))
        self.listener.listen()
        self.listener.settimeout(0.1)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conns: list[socket.socket] = []
        while not self.stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = self.listener.accept()
                conns.append(conn)
                threading.Thread(target=self._talk, args=(conn,), daemon=True).start()
        for conn in conns:
            conn.close()

    def _talk(self, conn: socket.socket) -> None:
        decoder = json.JSONDecoder()
        buf = ""
        conn.settimeout(0.1)
        while not self.stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk.decode(errors="replace")
            while buf.strip():
                try:
                    request, end = decoder.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    break
                buf = buf.lstrip()[end:]
                answer = isinstance(request, dict) and "id" in request and request.get("method") != "echo"
                if answer and not self._answer(conn, request["id"]):
                    return

    def _answer(self, conn: socket.socket, request_id: Any) -> bool:
        kind, value = self.script[self.turn % len(self.script)]
        self.turn += 1
        with contextlib.suppress(OSError):
            if kind in ("result", "error"):
                message = {"id": request_id, "result": None, "error": None, kind: value}
                conn.sendall(json.dumps(message).encode())
            elif kind == "raw":
                conn.sendall(value)
            elif kind == "then":
                result, messages = value
                conn.sendall(json.dumps({"id": request_id, "result": result, "error": None}).encode())
                for message in messages:
                    conn.sendall(json.dumps(message).encode())
            elif kind == "close":
                conn.close()
                return False
        return True

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


@contextlib.contextmanager
def peer(tmp: Path, script: list[Any]) -> Iterator[Path]:
    path = tmp / f"peer-{os.getpid()}-{threading.get_ident()}-{id(script)}.sock"
    server = ScriptedPeer(path, script)
    try:
        yield path
    finally:
        server.close()
        path.unlink(missing_ok=True)
