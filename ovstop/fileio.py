"""Writing the files a user names (``snapshot -o``, ``--record``) without damaging anything else.

What a path names decides how it is written:

* a regular file, or a name that does not exist yet: :func:`write_atomic` writes a temporary file beside
  it and renames it over the target, so a reader sees the old content or the new, never half; an
  existing file keeps its mode and owner, a new one is created 0600 (snapshots and recordings hold host
  names, interfaces and flows);
* a symbolic link is followed: the file it points to is written, the link stays;
* a character device or a FIFO (``/dev/null``, ``/dev/stdout``, a named pipe) is written through, never
  replaced (a rename over ``/dev/null`` as root breaks it for the whole host);
* a directory, a socket or a block device is refused.

Every refusal or failure is one :class:`OvstopError` line naming the file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO

from ovstop.errors import OvstopError

NEW_FILE_MODE = 0o600


def _fail(what: str, path: str | os.PathLike[str], reason: str) -> OvstopError:
    return OvstopError(f"cannot write {what} to {path}: {reason}")


def _target(path: str | os.PathLike[str], what: str) -> os.stat_result | None:
    """The stat of what ``path`` names (symlinks followed), None when nothing is there yet."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = Path(os.path.realpath(path)).parent
        if not parent.is_dir():
            raise _fail(what, path, f"no directory {parent}") from None
        return None
    except OSError as exc:
        raise _fail(what, path, exc.strerror or str(exc)) from None
    except ValueError:  # os.stat refuses a name with a NUL byte before asking the kernel
        raise _fail(what, repr(os.fspath(path)), "a file name cannot contain a NUL byte") from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(what, path, "it is a directory")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        raise _fail(what, path, "not a regular file, character device or FIFO")
    return st


def _writes_through(st: os.stat_result | None) -> bool:
    return st is not None and not stat.S_ISREG(st.st_mode)


def check_target(path: str | os.PathLike[str], what: str, overwrite: bool = True, hint: str = "") -> None:
    """Fail now, before anything starts, when ``path`` cannot be written as :func:`write_atomic` or
    :func:`open_stream` would; ``overwrite=False`` also refuses an existing regular file (``hint`` says
    how to allow it)."""
    st = _target(path, what)
    if st is not None and stat.S_ISREG(st.st_mode) and not overwrite:
        raise _fail(what, path, "the file exists" + (f" ({hint})" if hint else ""))
    directory = Path(os.path.realpath(path)).parent
    if not _writes_through(st) and not os.access(directory, os.W_OK | os.X_OK):
        raise _fail(what, path, f"no permission to create files in {directory}")


def write_atomic(path: str | os.PathLike[str], data: str, what: str) -> None:
    """Write ``data`` to ``path`` as the module docstring says: atomically, or through a device/FIFO."""
    st = _target(path, what)
    try:
        if _writes_through(st):
            with open(path, "w", encoding="utf-8") as out:
                out.write(data)
            return
        _replace(Path(os.path.realpath(path)), data, st)
    except OSError as exc:
        raise _fail(what, path, exc.strerror or str(exc)) from None


def _replace(real: Path, data: str, st: os.stat_result | None) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", dir=real.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            if st is not None:
                os.fchmod(out.fileno(), stat.S_IMODE(st.st_mode))
                with contextlib.suppress(PermissionError):
                    os.fchown(out.fileno(), st.st_uid, st.st_gid)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def open_stream(path: str | os.PathLike[str], what: str, overwrite: bool = False, hint: str = "") -> IO[str]:
    """Open ``path`` for a stream written over a whole run (a recording), line-buffered so that a write
    error shows at once. A new file is created 0600 with O_EXCL; an existing regular file is refused
    unless ``overwrite`` (then truncated in place, keeping its mode); a device or FIFO is written through."""
    st = _target(path, what)
    try:
        if _writes_through(st):
            flags = os.O_WRONLY
        elif st is not None:
            if not overwrite:
                raise _fail(what, path, "the file exists" + (f" ({hint})" if hint else ""))
            flags = os.O_WRONLY | os.O_TRUNC
        else:
            path = os.path.realpath(path)  # O_EXCL would refuse a dangling symlink: create what it names
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        fd = os.open(path, flags | os.O_CLOEXEC, NEW_FILE_MODE)
    except OSError as exc:
        raise _fail(what, path, exc.strerror or str(exc)) from None
    return os.fdopen(fd, "w", encoding="utf-8", buffering=1)
