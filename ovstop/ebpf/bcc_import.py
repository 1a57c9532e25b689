"""Lazy import of bcc, the BPF Compiler Collection's Python bindings.

bcc is not on PyPI (the PyPI project named ``bcc`` is an unrelated lattice library); distributions
ship it as a pure-Python package over ``libbcc.so`` (Debian: ``python3-bpfcc``). A virtualenv does
not see the distribution's site-packages, so when a plain import fails the package is loaded from
Debian's directory by path, without adding that directory to ``sys.path``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from types import ModuleType

from ovstop.errors import SourceError

DISTRO_DIRS = ("/usr/lib/python3/dist-packages",)
INSTALL_HINT = "install it with: apt-get install python3-bpfcc (Debian/Ubuntu) or dnf install python3-bcc"


def _is_bpf_compiler(module: ModuleType) -> bool:
    return hasattr(module, "BPF") and hasattr(module, "USDT")


def _load_from(directory: str) -> ModuleType | None:
    spec = importlib.machinery.PathFinder.find_spec("bcc", [directory])
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bcc"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # libbcc.so missing or incompatible: report it, do not leave a half module
        del sys.modules["bcc"]
        raise SourceError(f"bcc found in {directory} but failed to load ({exc}); {INSTALL_HINT}") from exc
    return module


def import_bcc() -> ModuleType:
    """Return the ``bcc`` module, or raise :class:`SourceError` saying how to install it."""
    loaded = sys.modules.get("bcc")
    if loaded is not None and _is_bpf_compiler(loaded):
        return loaded
    try:
        import bcc
    except ImportError:
        pass
    else:
        if _is_bpf_compiler(bcc):
            return bcc
        del sys.modules["bcc"]  # the unrelated PyPI "bcc": look for the real one below
    for directory in DISTRO_DIRS:
        module = _load_from(directory)
        if module is not None and _is_bpf_compiler(module):
            return module
    raise SourceError(f"bcc (BPF Compiler Collection) Python bindings not found; {INSTALL_HINT}")
