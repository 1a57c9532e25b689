"""The little of the kernel's BTF (``/sys/kernel/btf/vmlinux``, split module BTF) that ovstop reads:
enum values by name and struct member offsets.

Kernel drop reasons are enum values whose numbering changes between releases (Linux 6.18 numbers the
openvswitch drop subsystem 2, 6.6 numbered it 3), and struct layouts move (``net_device.ifindex``), so
both come from the running kernel, never from a table. Every type is walked by its size; only enums and
struct/union members are decoded. A module's BTF is split: its type ids and string offsets continue
those of vmlinux.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ovstop.errors import SourceError

BTF_DIR = Path("/sys/kernel/btf")
MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
STRUCT, UNION, ENUM, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG, ENUM64 = 4, 5, 6, 8, 9, 10, 11, 18, 19
_MODIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)
# kind -> (fixed extra bytes, bytes per vlen member) after the 12-byte btf_type
_EXTRA = {1: (4, 0), 2: (0, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 7: (0, 0), 8: (0, 0), 9: (0, 0),
          10: (0, 0), 11: (0, 0), 12: (0, 0), 13: (0, 8), 14: (4, 0), 15: (0, 12), 16: (0, 0), 17: (4, 0),
          18: (0, 0), 19: (0, 12)}


@dataclass(frozen=True, slots=True)
class _Type:
    kind: int
    name_off: int
    info: int
    size_or_type: int
    members: int
    """Byte position of the first member record in the type section."""


class Btf:
    """One BTF blob (with its base, for a module's split BTF), types indexed by id."""

    def __init__(self, blob: bytes, base: Btf | None = None, what: str = "vmlinux") -> None:
        self.what = what
        self.base = base
        self.types_bytes, strings = self._sections(blob)
        self.strings = (base.strings if base is not None else b"") + strings
        self.first_id = len(base.types) if base is not None else 1  # id 0 is void
        self.types: list[_Type | None] = list(base.types) if base is not None else [None]
        self._walk()

    def _sections(self, blob: bytes) -> tuple[bytes, bytes]:
        if len(blob) < _HEADER.size:
            raise SourceError(f"BTF {self.what}: too short")
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(blob)
        if magic != MAGIC:
            raise SourceError(f"BTF {self.what}: bad magic {magic:#x}")
        if hdr_len + max(type_off + type_len, str_off + str_len) > len(blob):
            raise SourceError(f"BTF {self.what}: sections run past the end")
        start = hdr_len + type_off
        return blob[start: start + type_len], blob[hdr_len + str_off: hdr_len + str_off + str_len]

    def _walk(self) -> None:
        data, pos = self.types_bytes, 0
        while pos < len(data):
            if pos + _TYPE.size > len(data):
                raise SourceError(f"BTF {self.what}: truncated type at byte {pos}")
            name_off, info, size_or_type = _TYPE.unpack_from(data, pos)
            kind = (info >> 24) & 0x1F
            if kind not in _EXTRA:
                raise SourceError(f"BTF {self.what}: unknown type kind {kind} at byte {pos}")
            fixed, per = _EXTRA[kind]
            members = pos + _TYPE.size + fixed
            end = members + per * (info & 0xFFFF)
            if end > len(data):
                raise SourceError(f"BTF {self.what}: truncated type at byte {pos}")
            self.types.append(_Type(kind, name_off, info, size_or_type, members))
            pos = end

    def _bytes_of(self, type_id: int) -> bytes:
        """The type section that holds ``type_id`` (the base's for ids below this blob's first)."""
        return self.base._bytes_of(type_id) if type_id < self.first_id and self.base else self.types_bytes

    def name(self, offset: int) -> str:
        end = self.strings.find(b"\0", offset)
        return self.strings[offset: end if end >= 0 else len(self.strings)].decode("ascii", "replace")

    def enums(self) -> dict[str, dict[str, int]]:
        """Every named enum of this blob (not its base) as {enum name: {member: value}}."""
        found: dict[str, dict[str, int]] = {}
        for t in self.types[self.first_id:]:
            if t is None or t.kind not in (ENUM, ENUM64) or not t.name_off:
                continue
            values: dict[str, int] = {}
            per = _EXTRA[t.kind][1]
            for m in range(t.members, t.members + per * (t.info & 0xFFFF), per):
                if t.kind == ENUM:
                    m_name, raw = struct.unpack_from("<Ii" if t.info >> 31 else "<II", self.types_bytes, m)
                else:
                    m_name, lo, hi = struct.unpack_from("<III", self.types_bytes, m)
                    raw = (hi << 32) | lo
                values[self.name(m_name)] = raw
            found[self.name(t.name_off)] = values
        return found

    def _resolve(self, type_id: int) -> int:
        while (t := self.types[type_id]) is not None and t.kind in _MODIFIERS:
            type_id = t.size_or_type
        return type_id

    def offset(self, struct_name: str, member: str) -> int:
        """Byte offset of ``member`` in ``struct struct_name``, looking into anonymous structs and unions."""
        for type_id, t in enumerate(self.types):
            if t is not None and t.kind == STRUCT and self.name(t.name_off) == struct_name:
                found = self._member(type_id, member)
                if found is not None:
                    return found
        raise SourceError(f"BTF {self.what}: no member {member} in struct {struct_name}")

    def _member(self, type_id: int, member: str) -> int | None:
        t = self.types[type_id]
        assert t is not None
        data = self._bytes_of(type_id)
        for m in range(t.members, t.members + 12 * (t.info & 0xFFFF), 12):
            m_name, m_type, m_off = struct.unpack_from("<III", data, m)
            bits = m_off & 0xFFFFFF if t.info >> 31 else m_off  # kind_flag: bitfield size in the top byte
            if m_name and self.name(m_name) == member:
                return bits // 8
            inner = self._resolve(m_type)
            kind = self.types[inner].kind if self.types[inner] is not None else 0  # type: ignore[union-attr]
            if not m_name and kind in (STRUCT, UNION):
                found = self._member(inner, member)
                if found is not None:
                    return bits // 8 + found
        return None


def kernel_btf(module: str | None = None, directory: Path = BTF_DIR) -> Btf:
    """The running kernel's BTF: vmlinux's, or a loaded module's (split on vmlinux's)."""
    try:
        vmlinux = Btf((directory / "vmlinux").read_bytes())
        return vmlinux if module is None else Btf((directory / module).read_bytes(), vmlinux, module)
    except OSError as exc:
        raise SourceError(f"kernel BTF not readable: {exc.strerror} ({exc.filename})") from None
