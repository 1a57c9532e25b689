"""Every bad input ends as one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

OVSTOP = [sys.executable, "-m", "ovstop"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OVSTOP, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ovstop: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_no_switch_running(tmp_path: Path) -> None:
    empty = {"OVS_RUNDIR": str(tmp_path)}
    assert_one_line_error(run("snapshot", env=empty), "ovs-vswitchd is not running", str(tmp_path))
    assert_one_line_error(run("--headless", "--listen", "127.0.0.1:0", env=empty), "not running")


def test_missing_socket_path() -> None:
    assert_one_line_error(run("snapshot", "--unixctl", "/nonexistent/ovs-vswitchd.1.ctl"), "no such socket")


def test_dead_socket(tmp_path: Path) -> None:
    """A control socket file whose daemon is gone (nothing listens)."""
    path = tmp_path / "ovs-vswitchd.4242.ctl"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()
    result = run("snapshot", "--unixctl", str(path), "--db", f"unix:{tmp_path}/db.sock")
    assert_one_line_error(result, "Connection refused")


def test_stale_pid_file(tmp_path: Path) -> None:
    (tmp_path / "ovs-vswitchd.pid").write_text("999999\n")
    assert_one_line_error(run("snapshot", env={"OVS_RUNDIR": str(tmp_path)}), "no control socket")
    (tmp_path / "ovs-vswitchd.pid").write_text("garbage\n")
    assert_one_line_error(run("snapshot", env={"OVS_RUNDIR": str(tmp_path)}), "does not hold a pid")


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "300.1.1.1:80"])
def test_bad_listen_address(listen: str) -> None:
    assert_one_line_error(run("--headless", "--listen", listen), "--listen")


def test_port_in_use(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        result = run("--headless", "--listen", f"127.0.0.1:{port}", env={"OVS_RUNDIR": str(tmp_path)})
        assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "in use")
    finally:
        busy.close()


def test_bad_label_config(tmp_path: Path) -> None:
    bad = tmp_path / "labels.toml"
    bad.write_text("[labels\n")
    assert_one_line_error(run("snapshot", "--labels", str(bad), "--unixctl", "/nonexistent"), "no such socket")
    sock = tmp_path / "x.ctl"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))
    s.close()
    assert_one_line_error(run("snapshot", "--labels", str(bad), "--unixctl", str(sock)), "not valid TOML")


@pytest.mark.parametrize(
    "args", [["-d", "0"], ["--timeout", "-1"], ["--sandbox-ports", "0"], ["--max-age", "nan"], ["--max-age", "0"]]
)
def test_bad_numbers(args: list[str]) -> None:
    assert_one_line_error(run("snapshot", *args), "must be")


def test_snapshot_to_unwritable_path(sandbox) -> None:
    result = run(
        "snapshot",
        "-o",
        "/nonexistent-dir/s.json",
        "--db",
        sandbox.db_remote,
        "--no-ebpf",
        "-d",
        "0.1",
        env=sandbox.env,
    )
    assert_one_line_error(result, "cannot write snapshot")


def test_tui_without_textual_is_one_line(tmp_path: Path) -> None:
    """A headless-only install (no ``ovstop[tui]`` extra): asking for the TUI says what to install."""
    # A directory first on sys.path whose ``textual`` cannot be imported stands for an install without it.
    (tmp_path / "textual").mkdir()
    (tmp_path / "textual" / "__init__.py").write_text("raise ModuleNotFoundError(name='textual')\n")
    result = run("--replay", str(tmp_path / "none.jsonl"), env={"PYTHONPATH": str(tmp_path)})
    assert_one_line_error(result, "ovstop[tui]")
