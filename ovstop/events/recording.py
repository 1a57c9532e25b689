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
    """Writes a recording; thread-safe (the capture thread writes events, the sampler snapshots)."""

    def __init__(
        self, path: str | os.PathLike[str], startup: dict[str, Any] | None = None, overwrite: bool = False
    ) -> None:
        self.path = Path(path)
        # New files 0600 (a recording holds host names, interfaces, flows), an existing one only with
        # ``overwrite``; devices and FIFOs are written through (see ovstop.fileio).
        self._file: IO[str] = fileio.open_stream(path, "recording", overwrite, OVERWRITE_HINT)
        self._failed = False
        self._lock = threading.Lock()
        self.events = 0
        self.snapshots = 0
        section = startup if startup is not None else startup_section()
        self._write({"common": {"timestamp": time.monotonic_ns()}, "startup": section})

    def _write(self, obj: dict[str, Any]) -> None:
        try:
            line = json.dumps(obj, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise OvstopError(f"cannot record a line of {self.path}: {exc}") from None
        with self._lock:
            if self._file.closed:
                raise OvstopError(f"recording {self.path} is closed")
            try:
                self._file.write(line + "\n")
            except OSError as exc:
                self._failed = True
                raise OvstopError(f"cannot write recording to {self.path}: {exc.strerror}") from None

    def event(self, ev: OvsEvent) -> None:
        self._write(encode(ev))
        self.events += 1

    def snapshot(self, data: dict[str, Any], timestamp: int | None = None) -> None:
        """Record a metrics snapshot at ``timestamp`` (CLOCK_MONOTONIC ns; now when None)."""
        ts = time.monotonic_ns() if timestamp is None else timestamp
        self._write({"common": {"timestamp": ts}, SNAPSHOT_SECTION: {"kind": "snapshot", "data": data}})
        self.snapshots += 1

    def close(self) -> None:
        """Close the file; a failure to flush is one OvstopError line (once: not again after a write error)."""
        with self._lock:
            try:
                self._file.close()
            except OSError as exc:
                if not self._failed:
                    self._failed = True
                    raise OvstopError(f"cannot write recording to {self.path}: {exc.strerror}") from None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def read_lines(path: str | os.PathLike[str]) -> Iterator[Line]:
    """The items of a Retis capture, ``retis sort`` output or ovstop recording, in file order.

    A sorted file's series are flattened (its events keep Retis's ``tracking`` section). Raises
    :class:`ParseError` naming ``path:line`` for anything that is not an event line.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise OvstopError(f"cannot read event file {path}: {exc.strerror}") from None
    with handle:
        try:
            for lineno, text in enumerate(handle, start=1):
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


def is_sorted_file(path: str | os.PathLike[str]) -> bool:
    """Whether the file is ``retis sort`` output (each line a JSON array)."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "")
    except (OSError, UnicodeDecodeError):
        return False  # read_lines reports the problem with its line number
    return first.lstrip().startswith("[")
