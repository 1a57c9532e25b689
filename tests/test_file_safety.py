"""Files the user names (``snapshot -o``, ``--record``) are written as asked and nothing else is damaged.

Truth comes from the kernel (``os.stat``: file type, mode, inode) and from the bytes on disk, not from
ovstop. Device nodes are made with mknod in the test's own directory (char 1,7 is /dev/full's, 1,3 is
/dev/null's), never the host's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serving import serving
from test_cli_errors import assert_one_line_error, run

from ovstop.errors import OvstopError
from ovstop.runtime import Options, running
from ovstop.sandbox.switch import SandboxSwitch

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


def snapshot_to(sandbox: SandboxSwitch, target: Path | str) -> subprocess.CompletedProcess[str]:
    return run("snapshot", "-o", str(target), "--db", sandbox.db_remote, "--no-ebpf", "-d", "0.1", env=sandbox.env)


def device(path: Path, minor: int) -> Path:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_snapshot_writes_through_a_full_device(sandbox: SandboxSwitch, tmp_path: Path) -> None:
    full = device(tmp_path / "full", 7)
    before = os.stat(full)
    assert_one_line_error(snapshot_to(sandbox, full), "cannot write snapshot", "No space left on device")
    after = os.stat(full)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # no temporary file left behind


def test_snapshot_writes_through_a_null_device(sandbox: SandboxSwitch, tmp_path: Path) -> None:
    null = device(tmp_path / "null", 3)
    result = snapshot_to(sandbox, null)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_snapshot_writes_into_a_fifo(sandbox: SandboxSwitch, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = snapshot_to(sandbox, fifo)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(received[0])["format"] == "ovstop-snapshot"


def test_snapshot_follows_a_symlink_and_keeps_the_mode(sandbox: SandboxSwitch, tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real.name)
    result = snapshot_to(sandbox, link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == real.name
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640
    assert json.loads(real.read_text())["format"] == "ovstop-snapshot"


def test_new_snapshot_is_private(sandbox: SandboxSwitch, tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    assert snapshot_to(sandbox, target).returncode == 0
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_snapshot_to_a_directory_is_refused(tmp_path: Path) -> None:
    # Refused before anything starts: no switch is needed to see it.
    assert_one_line_error(run("snapshot", "-o", str(tmp_path), "--unixctl", "/nonexistent"), "is a directory")


def test_failed_start_leaves_an_existing_recording_alone(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    old.write_bytes(os.urandom(4096))
    was = digest(old)
    args = (
        "--headless",
        "--listen",
        "127.0.0.1:0",
        "--record",
        str(old),
        "--unixctl",
        "/dev/null",
        "--db",
        "unix:/nonexistent",
    )
    assert_one_line_error(run(*args), "the file exists", "--record-overwrite")
    assert_one_line_error(run(*args, "--record-overwrite"), "unixctl")
    assert digest(old) == was


def test_record_to_a_full_device_is_one_line(sandbox: SandboxSwitch, tmp_path: Path) -> None:
    full = device(tmp_path / "full", 7)
    result = run(
        "--headless",
        "--listen",
        "127.0.0.1:0",
        "--db",
        sandbox.db_remote,
        "--no-ebpf",
        "--record",
        str(full),
        env=sandbox.env,
    )
    assert_one_line_error(result, "cannot write recording", "No space left on device")
    assert stat.S_ISCHR(os.stat(full).st_mode)


def _record_until_serving(sandbox: SandboxSwitch, *args: str) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ovstop",
            "--headless",
            "--listen",
            "127.0.0.1:0",
            "--db",
            sandbox.db_remote,
            "--no-ebpf",
            *args,
        ],
        env={**os.environ, **sandbox.env},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert re.search(r"serving /metrics", line), line
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_recording_is_private_and_overwrite_replaces(sandbox: SandboxSwitch, tmp_path: Path) -> None:
    new = tmp_path / "new.jsonl"
    _record_until_serving(sandbox, "--record", str(new))
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o600
    first = json.loads(new.read_text().splitlines()[0])
    assert "startup" in first
    old = tmp_path / "old.jsonl"
    old.write_text("not a recording\n")
    old.chmod(0o640)
    _record_until_serving(sandbox, "--record", str(old), "--record-overwrite")
    assert "startup" in json.loads(old.read_text().splitlines()[0])
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o640


def test_a_recording_that_fails_mid_run_answers_scrapes_in_one_line(sandbox: SandboxSwitch, tmp_path: Path) -> None:
    """The reader of a FIFO recording goes away: the round's recording fails (EPIPE); a scrape gets 503 and
    the reason, not a server error with a traceback."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def read_two_lines() -> None:
        with fifo.open("rb") as reader:
            reader.readline()
            reader.readline()

    reader = threading.Thread(target=read_two_lines, daemon=True)
    reader.start()
    options = Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False, record=str(fifo))
    with running(options) as rt:
        rt.first_sample()
        reader.join(timeout=60)
        with serving(rt.sampler, interval=0.2) as (endpoint, server):
            refresher = endpoint.refresher
            assert refresher is not None
            deadline = time.monotonic() + 60
            while refresher.rounds == 0 and time.monotonic() < deadline:  # the round whose recording fails
                time.sleep(0.05)
            assert refresher.rounds > 0
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=30)
            body = info.value.read().decode()
        with contextlib.suppress(OvstopError):
            rt.close()
    assert info.value.code == 503
    # Rounds stopped for good: the page of the last good round is not served, however young it still is.
    assert body.startswith("ovstop: collection stopped: cannot write recording") and body.count("\n") == 1
