"""contrib/systemd/ovstop-exporter.service: ``systemd-analyze verify`` is clean and ``systemd-analyze security``
rates it as README says. Neither needs a running systemd: both read the unit file under an alternate root."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "contrib" / "systemd" / "ovstop-exporter.service"
pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="needs systemd-analyze (Debian's systemd package; scripts/test.sh installs it)",
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A file system root with the unit installed, the ovstop it starts, and the system's own units."""
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "etc/systemd/system")
    (tmp_path / "usr/local/bin").mkdir(parents=True)
    shutil.copy(Path(sys.executable).parent / "ovstop", tmp_path / "usr/local/bin/ovstop")
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    return tmp_path


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


def test_verify_is_clean(root: Path) -> None:
    out = analyze("verify", f"--root={root}", UNIT.name)
    assert out.returncode == 0 and out.stderr == "" and out.stdout == "", out.stderr


def test_verify_catches_a_bad_directive(root: Path) -> None:
    """The check above can fail: a misspelled hardening option is reported."""
    unit = root / "etc/systemd/system" / UNIT.name
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"))
    assert "Unknown key 'ProtectHomes'" in analyze("verify", f"--root={root}", UNIT.name).stderr


def test_security_exposure_is_what_readme_states(root: Path) -> None:
    out = analyze("security", "--offline=yes", f"--root={root}", UNIT.name)
    match = re.search(r"Overall exposure level for ovstop-exporter.service: ([\d.]+) (\w+)", out.stdout)
    assert match, out.stdout + out.stderr
    readme = (ROOT / "README.md").read_text()
    assert f"exposure level {match[1]} ({match[2]})" in readme
    # Capabilities: only what eBPF capture needs.
    assert "CapabilityBoundingSet=CAP_BPF CAP_PERFMON\n" in UNIT.read_text()
