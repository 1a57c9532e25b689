"""Event files: writing an ovstop recording (``--record``) and reading Retis captures or recordings.

The format is Retis's: JSON lines, the first a startup event, then one Retis event object per line. Retis's
``retis sort`` output (one JSON array of events, a series, per line) is read too. ovstop adds one line type,
``{"common": {"timestamp": T}, "ovstop": {"kind": "snapshot", "data": {...}}}``, carrying a metrics snapshot
so a replay can drive the whole UI. Retis's reader (PyPI ``retis`` 1.7) ignores unknown sections, so it reads
such a line as an event with only its ``common`` section; the timestamp keeps the file in time order.

Retis picks its compatibility layer from ``startup.retis_version`` (a semver string, ``cmdline`` and
``machine`` required from 1.7.0 on), so a recording names the Retis schema version its events follow:
:data:`RETIS_SCHEMA_VERSION` for live capture, the source's own startup when re-recording a replay.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import json
import os
import platform
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from ovstop import __version__, fileio
from ovstop.errors import OvstopError, ParseError
from ovstop.events.schema import OvsEvent, decode, encode

RETIS_SCHEMA_VERSION = "v1.7.0"
DEFAULT_KEEP = 10
"""Parts a rotated recording keeps (the total is at most this many times the rotation size)."""
SNAPSHOT_SECTION = "ovstop"
OVERWRITE_HINT = "--record-overwrite replaces it"

LineKind = Literal["startup", "event", "other", "snapshot"]


def startup_section(cmdline: str = "ovstop") -> dict[str, Any]:
    """Retis's startup section for a capture on this host, plus ovstop's own fields (Retis ignores them)."""
    mono = time.monotonic_ns()
    offset = time.time_ns() - mono
    uname = platform.uname()
    return {
        "retis_version": RETIS_SCHEMA_VERSION,
        "cmdline": cmdline,
        "clock_monotonic_offset": {"sec": offset // 1_000_000_000, "nsec": offset % 1_000_000_000},
        "machine": {
            "kernel_release": uname.release,
            "kernel_version": uname.version,
            "hardware_name": uname.machine,
        },
        "hostname": socket.gethostname(),
        "producer": f"ovstop {__version__}",
    }


class Recorder:
    """Writes a recording; thread-safe (the capture thread writes events, the sampler snapshots).

    A new file is created 0600 (a recording holds host names, interfaces, flows), an existing one is
    replaced only with ``overwrite``; devices and FIFOs are written through (see :mod:`ovstop.fileio`).
    A path ending in ``.gz`` is gzip-compressed (flushed after every snapshot, so a crash loses at most a
    round). With ``rotate`` (bytes), a part is closed at the first snapshot past that size and the next one
    opened: ``FILE``, ``FILE.1``, ``FILE.2`` …; at most ``keep`` parts exist, the oldest being deleted, so
    the total stays bounded. Every part starts with the startup line and is a recording of its own: the
    writer of snapshots calls :meth:`rotate_if_due` before each one and starts a new part with a key frame.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        startup: dict[str, Any] | None = None,
        overwrite: bool = False,
        rotate: int | None = None,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.rotate = rotate
        self.keep = max(keep, 1)
        self.compress = self.path.suffix == ".gz"
        self._lock = threading.Lock()
        self._failed = False
        self.events = 0
        self.snapshots = 0
        self.written = 0
        """Bytes written over all parts (compressed size when compressing)."""
        self._due = False
        self._startup = startup if startup is not None else startup_section()
        self._parts: list[Path] = []
        self._opened = 0
        self._stream: IO[str] | None = None
        self._out: _Counted | None = None
        self._file: gzip.GzipFile | _Counted | None = None
        self._open_part()

    def _open_part(self) -> None:
        part = part_path(self.path, self._opened)
        # Later parts: check_rotation refused existing ones at start-up unless --record-overwrite.
        stream = fileio.open_stream(part, "recording", self.overwrite or self._opened > 0, OVERWRITE_HINT)
        self._stream = stream
        self._out = _Counted(stream.buffer)  # type: ignore[attr-defined]
        self._file = gzip.GzipFile(fileobj=self._out, mode="wb", compresslevel=6) if self.compress else self._out
        self._opened += 1
        self._parts.append(part)
        while len(self._parts) > self.keep:
            oldest = self._parts.pop(0)
            with contextlib.suppress(OSError):
                oldest.unlink()
        self._write_locked({"common": {"timestamp": time.monotonic_ns()}, "startup": self._startup})

    def _write(self, obj: dict[str, Any], snapshot: bool = False) -> None:
        with self._lock:
            self._write_locked(obj, snapshot)

    def _write_locked(self, obj: dict[str, Any], snapshot: bool = False) -> None:
        try:
            line = json.dumps(obj, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise OvstopError(f"cannot record a line of {self.path}: {exc}") from None
        if self._file is None or self._out is None or self._out.closed:
            raise OvstopError(f"recording {self.path} is closed")
        try:
            self._file.write(line.encode() + b"\n")
            if snapshot or not self.compress:  # plain lines reach the file at once: a write error shows now
                self._file.flush()
                self._out.flush()
        except OSError as exc:
            self._failed = True
            raise OvstopError(f"cannot write recording to {self.path}: {exc.strerror}") from None
        if snapshot and self.rotate is not None and self._out.size >= self.rotate:
            self._due = True  # the next part opens with the next snapshot, so no part ends up without one

    def rotate_if_due(self) -> bool:
        """Close a part that went past the rotation size and open the next one (its startup line first);
        True when it did, so the caller starts the next part's snapshots with a key frame."""
        with self._lock:
            if not self._due:
                return False
            self._due = False
            self._close_part()
            self._open_part()
            return True

    def _close_part(self) -> None:
        if self._file is None or self._out is None or self._stream is None or self._out.closed:
            return
        try:
            if isinstance(self._file, gzip.GzipFile):
                self._file.close()  # the gzip trailer; the stream below stays open until closed itself
            self._stream.close()
        finally:
            self.written += self._out.size

    @property
    def parts(self) -> list[Path]:
        """The parts that exist, oldest first."""
        return list(self._parts)

    def event(self, ev: OvsEvent) -> None:
        self._write(encode(ev))
        self.events += 1

    def snapshot(self, data: dict[str, Any], timestamp: int | None = None) -> None:
        """Record a metrics snapshot at ``timestamp`` (CLOCK_MONOTONIC ns; now when None)."""
        ts = time.monotonic_ns() if timestamp is None else timestamp
        self._write({"common": {"timestamp": ts}, SNAPSHOT_SECTION: {"kind": "snapshot", "data": data}}, True)
        self.snapshots += 1

    def close(self) -> None:
        """Close the file; a failure to flush is one OvstopError line (once: not again after a write error)."""
        with self._lock:
            try:
                self._close_part()
            except OSError as exc:
                if not self._failed:
                    self._failed = True
                    raise OvstopError(f"cannot write recording to {self.path}: {exc.strerror}") from None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Counted:
    """A binary stream that counts what went through it (the part's size, compressed or not)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.size = 0

    @property
    def closed(self) -> bool:
        return self.raw.closed

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


def check_rotation(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Refuse, before anything starts, a rotation that cannot work: into a device or FIFO (it has no
    ``FILE.1``), or over parts of an earlier recording (unless ``overwrite``)."""
    target = Path(path)
    if target.exists() and not target.is_file():
        raise OvstopError(f"--record-rotate needs a regular file; {target} is not one")
    later = [p for p in recording_parts(target) if p != target and p.exists()]
    if later and not overwrite:
        raise OvstopError(f"cannot write recording to {target}: {later[0]} exists ({OVERWRITE_HINT})")


def part_path(path: Path, index: int) -> Path:
    """The ``index``-th part of a rotated recording (``FILE`` itself is part 0)."""
    return path if index == 0 else path.with_name(f"{path.name}.{index}")


def recording_parts(path: str | os.PathLike[str]) -> list[Path]:
    """The parts of the recording ``path`` belongs to that still exist, oldest first.

    ``path`` may name the first part (``FILE``) or any later one (``FILE.3``); parts rotated away are gone.
    """
    path = Path(path)
    base, dot, index = path.name.rpartition(".")
    first = path.parent / base if dot and index.isdigit() and base else path
    parts = [(0, first)] if first.exists() else []
    prefix = first.name + "."
    for candidate in first.parent.glob(glob.escape(prefix) + "*"):
        tail = candidate.name[len(prefix) :]
        if tail.isdigit():
            parts.append((int(tail), candidate))
    found = [p for _, p in sorted(parts)]
    return found or [path]


@dataclass(frozen=True)
class Line:
    """One item of an event file. ``event`` is set for OVS events; ``obj`` is the JSON object as read."""

    lineno: int
    kind: LineKind
    timestamp: int
    obj: dict[str, Any]
    event: OvsEvent | None = None

    @property
    def snapshot(self) -> dict[str, Any] | None:
        return self.obj[SNAPSHOT_SECTION].get("data") if self.kind == "snapshot" else None


def _classify(obj: Any, where: str, lineno: int) -> Line:
    if not isinstance(obj, dict):
        raise ParseError(f"{where}: expected a JSON object or array of objects, got {type(obj).__name__}")
    common = obj.get("common")
    ts = common.get("timestamp") if isinstance(common, dict) else None
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise ParseError(f"{where}: event without an integer common.timestamp")
    if "startup" in obj:
        return Line(lineno, "startup", ts, obj)
    section = obj.get(SNAPSHOT_SECTION)
    if section is not None:
        if not isinstance(section, dict) or section.get("kind") != "snapshot":
            raise ParseError(f"{where}: unknown {SNAPSHOT_SECTION} line (expected kind 'snapshot')")
        return Line(lineno, "snapshot", ts, obj)
    try:
        event = decode(obj)
    except ParseError as exc:
        raise ParseError(f"{where}: {exc}") from None
    return Line(lineno, "event" if event is not None else "other", ts, obj, event)


MAX_LINE = 64 * 2**20
"""Characters in one line of an event file. ovstop's largest lines are snapshots: about 100 kB on the 4-port
sandbox for a whole snapshot with histories (older recordings, tests/data/recordings), so tens of MB at
1,000 ports; frames and Retis's event lines are shorter."""


def read_lines(path: str | os.PathLike[str]) -> Iterator[Line]:
    """The items of a Retis capture, ``retis sort`` output or ovstop recording, in file order.

    A sorted file's series are flattened (its events keep Retis's ``tracking`` section). Raises
    :class:`ParseError` naming ``path:line`` for anything that is not an event line.
    """
    path = Path(path)
    try:
        handle = open_text(path)
    except OSError as exc:
        raise OvstopError(f"cannot read event file {path}: {exc.strerror}") from None
    with handle:
        try:
            for lineno, text in _lines(handle, path):
                if not text.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ParseError(f"{where}: not a JSON event line ({exc.msg})") from None
                except RecursionError:
                    raise ParseError(f"{where}: JSON nested too deeply") from None
                for item in obj if isinstance(obj, list) else [obj]:
                    yield _classify(item, where, lineno)
        except UnicodeDecodeError:
            raise ParseError(f"{path}: not a UTF-8 text file") from None
        except gzip.BadGzipFile as exc:
            raise ParseError(f"{path}: damaged gzip data ({exc})") from None


def open_text(path: Path) -> IO[str]:
    """A recording's text, gzip-compressed or not (told by its first bytes, not its name)."""
    raw = path.open("rb")
    compressed = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[assignment]
    return io.TextIOWrapper(stream, encoding="utf-8")


def _lines(handle: IO[str], path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines, none longer than :data:`MAX_LINE` (a file with no end of line, such as /dev/zero, is a
    ParseError there, not memory without bound); a compressed part cut short (the recorder was killed) ends
    at its last full line."""
    lineno = 0
    while True:
        try:
            text = handle.readline(MAX_LINE + 1)
        except EOFError:
            return
        if not text:
            return
        lineno += 1
        if len(text) > MAX_LINE:
            raise ParseError(f"{path}:{lineno}: line longer than {MAX_LINE // 2**20} MiB: not an event file")
        yield lineno, text


def is_sorted_file(path: str | os.PathLike[str]) -> bool:
    """Whether the file is ``retis sort`` output (each line a JSON array)."""
    path = Path(path)
    try:
        with open_text(path) as handle:
            first = next((line for _, line in _lines(handle, path) if line.strip()), "")
    except (OSError, UnicodeDecodeError, ParseError):
        return False  # read_lines reports the problem with its line number
    return first.lstrip().startswith("[")
