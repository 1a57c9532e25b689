"""A small reader for the kernel's BTF (Documentation/bpf/btf.rst): struct member offsets and enum values.

ovstop needs byte offsets into the openvswitch module's private structures (``layout.py``), and kernel
drop reasons, enum values whose numbering changes between releases (``kernel_drops.py``). The kernel
publishes both as BTF: ``/sys/kernel/btf/vmlinux`` (base) and ``/sys/kernel/btf/<module>`` (split BTF
whose type ids and string offsets continue the base's). Reading that format here, in standard-library
Python, avoids a run-time dependency on ``pahole`` or ``bpftool`` (neither is installed with bcc, and
their text output is not a stable interface). Only struct/union members and enums are decoded; every
type's record is located so ids resolve.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ovstop.errors import SourceError

BTF_DIR = Path("/sys/kernel/btf")
MAGIC = 0xEB9F
HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
TYPE = struct.Struct("<III")  # name_off, info, size_or_type

# BTF_KIND_* values and the bytes that follow each kind's common record (per vlen item where noted).
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = range(1, 12)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
_FIXED = {INT: 4, ARRAY: 12, VAR: 4, DECL_TAG: 4}
_PER_ITEM = {STRUCT: 12, UNION: 12, ENUM: 8, FUNC_PROTO: 8, DATASEC: 12, ENUM64: 12}
_QUALIFIERS = {TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG}


class BtfError(SourceError):
    """The BTF cannot be read, or lacks a struct or member asked for."""


@dataclass(frozen=True)
class Member:
    """Where a (possibly nested) member lies: offsets from the start of the outermost struct."""

    bit_offset: int
    bit_size: int  # the bitfield width, or the member type's size in bits
    type_id: int

    @property
    def offset(self) -> int:
        return self.bit_offset // 8


class Btf:
    """One BTF blob, optionally split on a base (module BTF on vmlinux)."""

    def __init__(self, data: bytes, base: Btf | None = None, name: str = "BTF") -> None:
        self.name = name
        self.base = base
        if len(data) < HEADER.size:
            raise BtfError(f"{name}: {len(data)} bytes is too short for a BTF header")
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise BtfError(f"{name}: not little-endian BTF (magic {magic:#06x})")
        if hdr_len + max(type_off + type_len, str_off + str_len) > len(data):
            raise BtfError(f"{name}: truncated ({len(data)} bytes)")
        self._types = data[hdr_len + type_off : hdr_len + type_off + type_len]
        self._strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
        self._first_id = base.count if base else 1  # id 0 is void, in the base only
        self._str_base = base.str_len if base else 0
        self._offsets = self._index()
        self._by_name: dict[str, list[int]] | None = None

    @classmethod
    def load(cls, path: str | Path, base: Btf | None = None, name: str = "") -> Btf:
        """Read a BTF file; ``name`` (default: the path) starts the messages of later lookups."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise BtfError(f"cannot read BTF {path}: {exc.strerror or exc}") from exc
        return cls(data, base, name=name or str(path))

    @property
    def count(self) -> int:
        """One past the last type id this blob (with its base) defines."""
        return self._first_id + len(self._offsets)

    @property
    def str_len(self) -> int:
        return self._str_base + len(self._strings)

    def _index(self) -> list[int]:
        """Byte offset of every type record, found by walking the variable-length records once."""
        offsets: list[int] = []
        pos, end, buf = 0, len(self._types), self._types
        while pos < end:
            if pos + TYPE.size > end:
                raise BtfError(f"{self.name}: type section ends inside a record")
            info = int.from_bytes(buf[pos + 4 : pos + 8], "little")
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind == 0 or kind > ENUM64:
                raise BtfError(f"{self.name}: unknown BTF kind {kind} at type {self._first_id + len(offsets)}")
            offsets.append(pos)
            pos += TYPE.size + _FIXED.get(kind, 0) + _PER_ITEM.get(kind, 0) * vlen
        return offsets

    def string(self, off: int) -> str:
        if off < self._str_base and self.base is not None:
            return self.base.string(off)
        local = off - self._str_base
        end = self._strings.find(b"\0", local)
        if local < 0 or end < 0:
            raise BtfError(f"{self.name}: string offset {off} out of range")
        return self._strings[local:end].decode()

    def _record(self, type_id: int) -> tuple[Btf, int]:
        if type_id < self._first_id:
            if self.base is None:
                raise BtfError(f"{self.name}: type id {type_id} out of range")
            return self.base._record(type_id)
        index = type_id - self._first_id
        if index >= len(self._offsets):
            raise BtfError(f"{self.name}: type id {type_id} out of range")
        return self, self._offsets[index]

    def kind(self, type_id: int) -> tuple[int, int, int, int]:
        """(kind, vlen, kind_flag, size_or_type) of a type id."""
        if type_id == 0:
            return 0, 0, 0, 0
        owner, pos = self._record(type_id)
        _name, info, size = TYPE.unpack_from(owner._types, pos)
        return (info >> 24) & 0x1F, info & 0xFFFF, info >> 31, size

    def type_name(self, type_id: int) -> str:
        if type_id == 0:
            return "void"
        owner, pos = self._record(type_id)
        return owner.string(TYPE.unpack_from(owner._types, pos)[0])

    def strip(self, type_id: int) -> int:
        """The type behind typedefs and qualifiers."""
        while True:
            kind, _vlen, _flag, ref = self.kind(type_id)
            if kind not in _QUALIFIERS:
                return type_id
            type_id = ref

    def size_of(self, type_id: int) -> int:
        """Size in bytes of a type (after typedefs); 0 for void, functions and forward declarations."""
        type_id = self.strip(type_id)
        kind, _vlen, _flag, size = self.kind(type_id)
        if kind in (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC):
            return size
        if kind == PTR:
            return 8
        if kind == ARRAY:
            owner, pos = self._record(type_id)
            elem, _index, nelems = struct.unpack_from("<III", owner._types, pos + TYPE.size)
            return self.size_of(elem) * nelems
        return 0

    def members(self, type_id: int) -> list[tuple[str, int, int, int]]:
        """(name, type id, bit offset, bitfield size or 0) of a struct or union's members."""
        kind, vlen, kind_flag, _size = self.kind(type_id)
        if kind not in (STRUCT, UNION):
            raise BtfError(f"{self.name}: type {self.type_name(type_id)!r} is not a struct or union")
        owner, pos = self._record(type_id)
        out = []
        for i in range(vlen):
            name_off, mtype, moff = struct.unpack_from("<III", owner._types, pos + TYPE.size + 12 * i)
            bits, bitfield = (moff & 0xFFFFFF, moff >> 24) if kind_flag else (moff, 0)
            out.append((owner.string(name_off), mtype, bits, bitfield))
        return out

    def _named(self) -> dict[str, list[int]]:
        if self._by_name is None:
            self._by_name = {}
            for i, pos in enumerate(self._offsets):
                name_off, info, _size = TYPE.unpack_from(self._types, pos)
                if (info >> 24) & 0x1F in (STRUCT, UNION) and name_off:
                    self._by_name.setdefault(self.string(name_off), []).append(self._first_id + i)
        return self._by_name

    def _lookup_struct(self, name: str) -> int | None:
        ids = self._named().get(name)
        if ids:
            return ids[0]
        return self.base._lookup_struct(name) if self.base is not None else None

    def find_struct(self, name: str) -> int:
        """Id of the named struct or union, searched in this blob first, then in its base."""
        type_id = self._lookup_struct(name)
        if type_id is None:
            raise BtfError(f"{self.name} has no struct {name}")
        return type_id

    def member(self, struct_name: str, path: str) -> Member:
        """Offset and size of ``path`` (``"phy.in_port"``) inside ``struct struct_name``.

        Members of anonymous structs and unions are found through them, as C sees them
        (``sw_flow_id.ufid`` lies in an unnamed union).
        """
        type_id = self.find_struct(struct_name)
        bit_offset = 0
        for part in path.split("."):
            found = self._find_member(self.strip(type_id), part)
            if found is None:
                raise BtfError(f"{self.name} has no {struct_name}.{path}")
            rel_bits, type_id, bitfield = found
            bit_offset += rel_bits
        return Member(bit_offset, bitfield or self.size_of(type_id) * 8, type_id)

    def _find_member(self, type_id: int, name: str) -> tuple[int, int, int] | None:
        kind = self.kind(type_id)[0]
        if kind not in (STRUCT, UNION):
            return None
        for mname, mtype, bits, bitfield in self.members(type_id):
            if mname == name:
                return bits, mtype, bitfield
            if not mname:
                inner = self._find_member(self.strip(mtype), name)
                if inner is not None:
                    return bits + inner[0], inner[1], inner[2]
        return None

    def enums(self) -> dict[str, dict[str, int]]:
        """Every named enum of this blob (not its base) as {enum name: {member: value}}."""
        found: dict[str, dict[str, int]] = {}
        for pos in self._offsets:
            name_off, info, _size = TYPE.unpack_from(self._types, pos)
            kind, vlen, signed = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
            if kind not in (ENUM, ENUM64) or not name_off:
                continue
            values: dict[str, int] = {}
            for i in range(vlen):
                at = pos + TYPE.size + _PER_ITEM[kind] * i
                if kind == ENUM:
                    m_name, value = struct.unpack_from("<Ii" if signed else "<II", self._types, at)
                else:
                    m_name, lo, hi = struct.unpack_from("<III", self._types, at)
                    value = (hi << 32) | lo
                values[self.string(m_name)] = value
            found[self.string(name_off)] = values
        return found

    def offset(self, struct_name: str, member: str) -> int:
        """Byte offset of ``member`` (a dotted path, through anonymous structs and unions) in the struct."""
        return self.member(struct_name, member).offset


def kernel_btf(module: str | None = None, directory: Path = BTF_DIR) -> Btf:
    """The running kernel's BTF: vmlinux's, or a loaded module's (split on vmlinux's)."""
    vmlinux = Btf.load(directory / "vmlinux", name="vmlinux BTF")
    return vmlinux if module is None else Btf.load(directory / module, base=vmlinux, name=f"{module} BTF")
