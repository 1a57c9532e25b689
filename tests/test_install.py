"""The wheel, installed as a user would on a hypervisor: pip into a fresh virtualenv with the system site
packages (where Debian's python3-bpfcc puts bcc), then a working ``ovstop``: its version, ``--check`` finding
bcc and the BPF C shipped inside the package, and ``snapshot --sandbox`` producing a snapshot of a real switch.

The wheel is ``$OVSTOP_DIST/*.whl`` when scripts/test.sh built one (CI), else built here from the tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
pytestmark = pytest.mark.skipif(
    shutil.which("ovs-vswitchd") is None or not Path(SYSTEM_PYTHON).exists(),
    reason="needs Open vSwitch and Debian's python3",
)


def run(*argv: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]
    assert out.returncode == 0, f"{argv}: {out.stderr[-2000:]}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = os.environ.get("OVSTOP_DIST")
    if not dist:
        dist = str(tmp_path_factory.mktemp("dist"))
        run(sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", dist, ROOT)
    wheels = sorted(Path(dist).glob("ovstop-*.whl"))
    assert len(wheels) == 1 and list(Path(dist).glob("ovstop-*.tar.gz")), sorted(Path(dist).iterdir())
    return wheels[0]


def test_wheel_ships_the_bpf_sources_and_the_stylesheet(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("ovstop/bpf/") and n.endswith(".c") for n in names)
    assert any(n.startswith("ovstop/tui/") and n.endswith(".tcss") for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_wheel_in_a_fresh_venv_gives_a_working_ovstop(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", venv)
    run(venv / "bin/pip", "install", "-q", "--disable-pip-version-check", wheel)
    ovstop = venv / "bin/ovstop"
    assert run(ovstop, "--version").stdout.split() == ["ovstop", wheel.name.split("-")[1]]
    # Runs from its own install, not from this tree.
    where = run(venv / "bin/python", "-c", "import ovstop; print(ovstop.__file__)", cwd=tmp_path).stdout
    assert where.startswith(str(venv))
    check = run(ovstop, "--check", cwd=tmp_path).stdout
    assert re.search(r"^bcc\s+yes\s", check, re.M), check  # Debian's bcc, through the system site packages
    out = tmp_path / "snap.json"
    run(ovstop, "snapshot", "--sandbox", "--no-ebpf", "-o", out, cwd=tmp_path)
    doc = json.loads(out.read_text())
    assert doc["format"] == "ovstop-snapshot"
    assert any(s["name"] == "ovs_vswitchd_datapath_hit_total" and s["value"] > 0 for s in doc["series"])
