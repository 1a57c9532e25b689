"""A persistent unixctl (JSON-RPC) connection to an OVS daemon.

Built on the ``ovs`` library's stream and JSON-RPC classes rather than ``ovs-appctl`` so that a sample
costs one request on an open socket, not a process. The library's ``transact_block`` waits forever;
ovstop needs a deadline on every call, so the request/reply loop here polls with a timer.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ovs.jsonrpc

from ovstop.errors import ParseError, SourceError
from ovstop.parsers import list_commands
from ovstop.parsers.reply import JSON, TEXT, JsonReply, Reply, format_of, reply_of
from ovstop.sources import deadline, jsonrpc

PathSpec = str | Path | Callable[[], str | Path]

_VERSION_RE = re.compile(r"\(Open vSwitch\)\s+(\S+)")


class UnixctlClient:
    """One daemon's control socket, reconnected with exponential backoff when the daemon restarts.

    ``path`` may be a callable so that a restarted daemon's new socket is found again.
    Calls are serialized by a lock: one connection carries one request at a time.

    Output format: a daemon that lists ``set-options`` (OVS 3.4+) is asked for JSON on every new
    connection (the option lives on the server's side of one connection, so a reconnect asks again);
    commands with a JSON form then answer documents, the others their text. ``output_format`` says which
    the connection uses and why, ``formats`` what each command last answered in.
    """

    def __init__(
        self,
        path: PathSpec,
        timeout: float = 2.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 8.0,
    ) -> None:
        self._path = path
        self.timeout = timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._backoff = 0.0
        self._next_attempt = 0.0
        self._conn: ovs.jsonrpc.Connection | None = None
        self._lock = threading.Lock()
        self.commands: frozenset[str] = frozenset()
        self.version: str = ""
        self.connected_path: str = ""
        self.connects = 0
        self.output_format = TEXT
        self.format_reason = "not connected"
        self.formats: dict[str, str] = {}
        self._cache: dict[tuple[str, ...], tuple[float, Reply]] = {}
        self._last_error = ""

    # -- connection management ------------------------------------------------------------------------
    def _resolve(self) -> str:
        path = self._path() if callable(self._path) else self._path
        return str(path)

    def _connect(self, timeout: float) -> None:
        now = time.monotonic()
        if now < self._next_attempt:
            raise SourceError(f"{self._last_error} (retrying in {self._next_attempt - now:.1f}s)")
        try:
            path = self._resolve()
            try:
                self._conn = jsonrpc.connect(f"unix:{path}", timeout)
            except jsonrpc.RpcError as exc:
                raise SourceError(f"ovs-vswitchd: {exc}") from None
            self.connected_path = path
            self._learn_capabilities()
        except SourceError as exc:
            self._last_error = str(exc)
            self._drop()
            self._backoff = min(self._backoff_max, max(self._backoff_initial, self._backoff * 2))
            self._next_attempt = time.monotonic() + self._backoff
            raise
        self._backoff = 0.0
        self.connects += 1

    def _learn_capabilities(self) -> None:
        """Commands and version, then JSON output where the daemon offers ``set-options`` (a new
        connection starts in text, so ``list-commands`` is read as text here)."""
        try:
            self.commands = list_commands.parse(self._transact("list-commands", []))
        except ParseError as exc:
            raise SourceError(f"ovs-vswitchd: {exc}") from None
        self.output_format, self.format_reason = TEXT, "no set-options in list-commands (OVS < 3.4)"
        if "set-options" in self.commands:
            try:
                self._transact("set-options", ["--format", JSON])
                self.output_format, self.format_reason = JSON, "set-options --format json"
            except SourceError as exc:
                if not self.is_connected or isinstance(exc, deadline.DeadlineExceeded):
                    raise
                self.format_reason = f"set-options refused JSON: {exc}"
        version = self._transact("version", [])
        match = _VERSION_RE.search(version) if isinstance(version, str) else None
        self.version = match.group(1) if match else ""

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._cache.clear()
        self.formats.clear()

    def close(self) -> None:
        """Close the connection; the next call reconnects."""
        with self._lock:
            self._drop()

    @property
    def is_connected(self) -> bool:
        return self._conn is not None

    # -- requests ------------------------------------------------------------------------------------------
    def _transact(self, command: str, argv: list[str]) -> Reply:
        conn = self._conn
        if conn is None:
            raise SourceError("ovs-vswitchd: not connected")
        timeout = deadline.budget(self.timeout, "ovs-vswitchd")
        try:
            result = jsonrpc.transact(conn, command, argv, timeout)
        except jsonrpc.RpcError as exc:
            if "failed:" not in str(exc):
                self._drop()
            raise SourceError(f"ovs-vswitchd: {exc}") from None
        try:
            reply = reply_of(result)
        except ParseError as exc:
            raise SourceError(f"ovs-vswitchd: {command}: {exc}") from None
        self.formats[command] = format_of(reply)
        return reply

    def request(self, command: str, *args: str) -> Reply:
        """Run one unixctl command, connecting first when needed; its answer as text or a JSON document.

        For commands whose parser reads both forms. Only commands the daemon lists in ``list-commands``
        are sent: OVS drops and renames commands between releases (4.0 removes
        ``dpif-netdev/pmd-stats-show``), and the answer to an unknown one is an error text that must not
        reach a parser.
        """
        with self._lock:
            timeout = deadline.budget(self.timeout, "ovs-vswitchd")
            if self._conn is None:
                self._connect(timeout)
            if command not in self.commands:
                version = f" {self.version}" if self.version else ""
                raise SourceError(f"ovs-vswitchd{version} has no command {command} (not in list-commands)")
            return self._transact(command, list(args))

    def call(self, command: str, *args: str) -> str:
        """Like :meth:`request`, for commands parsed as text only: a JSON document is a ParseError."""
        return self._text(command, self.request(command, *args))

    def request_cached(self, command: str, *args: str, ttl: float) -> Reply:
        """Like :meth:`request`, reusing a reply younger than ``ttl`` seconds from the same connection."""
        key = (command, *args)
        hit = self._cache.get(key)
        if hit is not None and self._conn is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        reply = self.request(command, *args)
        self._cache[key] = (time.monotonic(), reply)
        return reply

    def call_cached(self, command: str, *args: str, ttl: float) -> str:
        """Like :meth:`call`, reusing a reply younger than ``ttl`` seconds from the same connection."""
        return self._text(command, self.request_cached(command, *args, ttl=ttl))

    def _text(self, command: str, reply: Reply) -> str:
        if isinstance(reply, JsonReply):
            raise ParseError(f"{command}: ovs-vswitchd {self.version} answered JSON, which ovstop reads as text only")
        return reply

    def has(self, command: str) -> bool:
        """Whether the connected daemon offers ``command`` (connects first when needed).

        A round with no time left raises :class:`~ovstop.sources.deadline.DeadlineExceeded`: not knowing
        must not read as "not offered" (a collector would then leave its series out of a healthy round).
        """
        if self._conn is None:
            timeout = deadline.budget(self.timeout, "ovs-vswitchd")
            try:
                with self._lock:
                    if self._conn is None:
                        self._connect(timeout)
            except deadline.DeadlineExceeded:
                raise
            except SourceError:
                return False
        return command in self.commands
