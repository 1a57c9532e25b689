"""``--log FILE`` and where output goes: collector errors are one line on stderr with their traceback in the
log; while the TUI runs, what C code writes on descriptor 2 (bcc's compiler) lands in the log, not on the
terminal Textual draws on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BROKEN_COLLECTOR = """
import sys
from ovstop import logs
from ovstop.collect.base import Sources
from ovstop.collect.sampler import Sampler

class Broken:
    name = source = "broken"
    specs = ()
    def collect(self, sources, tables):
        return [1 / 0]  # a collector bug

logs.setup(sys.argv[1], terminal_is_ui=False)
health = Sampler(Sources(), [Broken()]).sample().health["broken"]
print(health.reason)
"""

FD2_IN_TUI = """
import os, sys
from ovstop import logs
logs.setup(sys.argv[1], terminal_is_ui=True)
with logs.stderr_to_log():
    os.write(2, b"warning: from C on fd 2\\n")
    print("drawn by the UI", file=sys.stderr, flush=True)
os.write(2, b"after the UI\\n")
"""


def _run(script: str, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, str(log)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_collector_error_is_one_line_and_its_traceback_is_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "ovstop.log"
    run = _run(BROKEN_COLLECTOR, log)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "broken: internal error: ZeroDivisionError: division by zero"
    assert run.stderr.splitlines() == ["ovstop: collector broken failed: ZeroDivisionError: division by zero"]
    assert log.stat().st_mode & 0o777 == 0o600
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in collect" in text and "ERROR" in text


def test_fd2_goes_to_the_log_while_the_ui_owns_the_terminal(tmp_path: Path) -> None:
    log = tmp_path / "ovstop.log"
    run = _run(FD2_IN_TUI, log)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "drawn by the UI\nafter the UI\n"
    assert "warning: from C on fd 2" in log.read_text()


def test_log_file_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ovstop", "--check", "--log", str(tmp_path / "no" / "dir.log")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert run.returncode == 1 and run.stderr.startswith("ovstop: --log ") and len(run.stderr.splitlines()) == 1
