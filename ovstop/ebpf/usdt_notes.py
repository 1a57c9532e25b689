"""USDT probes of an ELF binary, read from its ``.note.stapsdt`` section (SystemTap SDT notes).

ovs-vswitchd carries them only when built with ``--enable-usdt-probes``; Debian's build has none.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ovstop.errors import SourceError

NT_STAPSDT = 3


def _section(data: bytes, wanted: bytes) -> bytes | None:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SourceError("not a 64-bit little-endian ELF binary")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, offset, size

    _, stroff, _ = header(shstrndx)
    for i in range(shnum):
        name, offset, size = header(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name : end] == wanted:
            return data[offset : offset + size]
    return None


def usdt_probes(path: str | Path) -> set[str]:
    """``provider:name`` of every USDT probe in the binary (empty when it has none)."""
    try:
        data = Path(path).read_bytes()
        notes = _section(data, b".note.stapsdt")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
    except (struct.error, ValueError) as exc:
        raise SourceError(f"{path}: malformed ELF ({exc})") from exc
    probes: set[str] = set()
    pos = 0
    while notes and pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
        pos += 12
        owner = notes[pos : pos + namesz]
        pos += (namesz + 3) & ~3
        desc = notes[pos : pos + descsz]
        pos += (descsz + 3) & ~3
        if ntype != NT_STAPSDT or owner.rstrip(b"\0") != b"stapsdt":
            continue
        provider, name, _args = desc[24:].split(b"\0", 2)  # after pc, base and semaphore addresses
        probes.add(f"{provider.decode()}:{name.decode()}")
    return probes
