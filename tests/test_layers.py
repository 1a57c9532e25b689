"""The layering README and docs/architecture.md promise, checked on the code itself: every module outside
the UI imports without loading Textual or Rich (found by walking the package, not from a hand list), and the
import-linter contracts in pyproject.toml hold."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import ovstop

ROOT = Path(__file__).resolve().parent.parent
UI_FREE_TUI = ("ovstop.tui.feed", "ovstop.tui.format", "ovstop.tui.headline")
"""The TUI's data-side modules, which headless tools (benchmarks, tests) use without the UI."""


def data_layer_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(ovstop.__path__, "ovstop.")]
    return sorted(
        n
        for n in names
        if n != "ovstop.__main__" and (not n.startswith("ovstop.tui.") or n in UI_FREE_TUI) and n != "ovstop.tui"
    )


def test_walk_finds_every_layer() -> None:
    found = {n.split(".")[1] for n in data_layer_modules()}
    assert {"cli", "runtime", "collect", "sources", "parsers", "model", "export", "events", "ebpf", "sandbox"} <= found
    assert "ovstop.collect.sampler" in data_layer_modules() and "ovstop.tui.app" not in data_layer_modules()


def test_data_layer_never_imports_textual() -> None:
    modules = data_layer_modules()
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed (pip install -e '.[test]')"
    run = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "0 broken" in run.stdout


def test_signal_handlers_are_installed_in_one_place() -> None:
    """Only ovstop/signals.py calls signal.signal (the CLI, the sandbox and the TUI go through it)."""
    callers = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "ovstop").rglob("*.py") if "signal.signal(" in p.read_text()
    )
    assert callers == ["ovstop/signals.py"]
