"""Building and compiling ovstop's BPF program from the C shipped as package ``ovstop.bpf``.

Each hook group is one ``bpf/<group>.c``; the groups in use are concatenated into one program so
that they share the maps of ``ovs_common.h``. That header is inlined at the top of the text rather
than left to ``#include``: bcc rewrites map calls (``counters.lookup()``) only in the main file.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ovstop.ebpf.bcc_import import import_bcc
from ovstop.ebpf.hooks import GROUPS, Hook, Kind
from ovstop.errors import SourceError


def bpf_dir() -> Path:
    """Directory holding the C sources: the installed ``ovstop.bpf`` package, or ``bpf/`` in a checkout."""
    try:
        return Path(str(importlib.resources.files("ovstop.bpf")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "bpf"


def program_text(groups: Iterable[str]) -> str:
    """The C text of the given hook groups, in a stable order."""
    chosen = set(groups)
    unknown = chosen - set(GROUPS)
    if unknown:
        raise SourceError(f"unknown BPF hook group(s): {', '.join(sorted(unknown))}")
    base = bpf_dir()
    parts = [(base / "ovs_common.h").read_text()]
    parts += [(base / f"{g}.c").read_text() for g in GROUPS if g in chosen]
    return "\n".join(parts)


def fexit_defines(hooks: Iterable[Hook]) -> dict[str, int]:
    """``OVSTOP_FEXIT_<GROUP>=1`` for each group whose fexit program was chosen (its C is compiled only then)."""
    return {f"OVSTOP_FEXIT_{h.group.upper()}": 1 for h in hooks if h.kind is Kind.FEXIT}


FLOW_HITS_MAX = 16384
"""Entries of bpf/lookup.c's ``flow_hits`` LRU map (given to it as ``OVSTOP_FLOW_HITS_MAX``): once full, a
ufid missing from it may have been evicted."""


def cflags(ringbuf: bool, ringbuf_pages: int, defines: Mapping[str, int]) -> list[str]:
    """Compiler flags: include path, event channel, struct offsets (``Layout.defines()``) and other switches."""
    if ringbuf_pages <= 0 or ringbuf_pages & (ringbuf_pages - 1):
        raise SourceError(f"ring buffer pages must be a power of two, got {ringbuf_pages}")
    flags = [f"-I{bpf_dir()}", f"-DOVSTOP_RINGBUF={int(ringbuf)}", f"-DOVSTOP_RINGBUF_PAGES={ringbuf_pages}"]
    flags.append(f"-DOVSTOP_FLOW_HITS_MAX={FLOW_HITS_MAX}")
    flags += [f"-D{name}={value}" for name, value in sorted(defines.items())]
    return flags


def compile_program(
    groups: Iterable[str],
    *,
    ringbuf: bool = True,
    ringbuf_pages: int = 64,
    usdt_contexts: Sequence[Any] = (),
    defines: Mapping[str, int],
) -> Any:
    """Compile the groups with bcc and return the ``bcc.BPF`` object (nothing loaded or attached)."""
    bcc = import_bcc()
    text = program_text(groups)
    try:
        return bcc.BPF(
            text=text.encode(),
            cflags=cflags(ringbuf, ringbuf_pages, defines),
            usdt_contexts=list(usdt_contexts),
        )
    except Exception as exc:
        raise SourceError(f"BPF program failed to compile: {exc} (see the compiler output above)") from exc
