"""Finding the local switch: the ovs-vswitchd control socket and OVSDB's socket.

ovs-appctl resolves a daemon name to ``<rundir>/<daemon>.<pid>.ctl`` with the pid from
``<rundir>/<daemon>.pid``; ovstop does the same, re-resolving on every reconnect because a restarted
ovs-vswitchd gets a new pid and therefore a new socket path.
"""

from __future__ import annotations

import os
from pathlib import Path

from ovstop.errors import SourceError

DEFAULT_RUNDIR = "/var/run/openvswitch"


def rundir() -> Path:
    """The OVS run directory: OVS_RUNDIR when set, else the packaged default."""
    return Path(os.environ.get("OVS_RUNDIR") or DEFAULT_RUNDIR)


def daemon_ctl_path(daemon: str = "ovs-vswitchd", directory: Path | None = None) -> Path:
    """The unixctl socket of a running daemon, found through its pid file."""
    base = directory or rundir()
    pidfile = base / f"{daemon}.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except FileNotFoundError:
        raise SourceError(f"{daemon} is not running: no pid file {pidfile} (use --unixctl PATH)") from None
    except PermissionError:
        raise SourceError(f"permission denied reading {pidfile} (run as root or the OVS user)") from None
    except ValueError:
        raise SourceError(f"{pidfile} does not hold a pid") from None
    ctl = base / f"{daemon}.{pid}.ctl"
    if not ctl.exists():
        raise SourceError(f"{daemon} (pid {pid}) has no control socket {ctl}")
    return ctl


def default_db_remote(directory: Path | None = None) -> str:
    """OVSDB's local socket as an OVSDB remote string."""
    return f"unix:{(directory or rundir()) / 'db.sock'}"
