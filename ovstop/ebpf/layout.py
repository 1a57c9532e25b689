"""Byte offsets of the openvswitch module's private structures, resolved for the running kernel.

The BPF programs read a few fields of ``struct dp_upcall_info``, ``sw_flow``, ``sw_flow_key`` and
``ovs_conntrack_info`` (net/openvswitch/, not in any headers package). Their offsets change between
kernels (Linux 6.2 made ``sw_flow.cpu_used_mask`` a pointer; 6.12 grew ``sw_flow_key``), so they are
never guessed: they come from the module's BTF when the kernel publishes it, else from a table
verified on one exact kernel release, else the hooks that read them stay off with the reason.
The offsets reach the C as ``-D<macro>=<value>`` (see ``bpf/ovs_layout.h``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ovstop.ebpf.btf import BTF_DIR, Btf, BtfError, kernel_btf


@dataclass(frozen=True)
class Field:
    """One offset the programs use: ``struct.path``, read as ``size`` bytes."""

    macro: str
    struct: str
    path: str
    size: int


FIELDS: tuple[Field, ...] = (
    Field("OVS_UPCALL_INFO_PORTID", "dp_upcall_info", "portid", 4),
    Field("OVS_UPCALL_INFO_CMD", "dp_upcall_info", "cmd", 1),
    Field("OVS_KEY_IN_PORT", "sw_flow_key", "phy.in_port", 2),
    Field("OVS_KEY_RECIRC_ID", "sw_flow_key", "recirc_id", 4),
    Field("OVS_FLOW_UFID", "sw_flow", "id.ufid", 16),
    Field("OVS_FLOW_SF_ACTS", "sw_flow", "sf_acts", 8),
    Field("OVS_CT_INFO_ZONE_ID", "ovs_conntrack_info", "zone.id", 2),
    Field("OVS_CT_INFO_FAMILY", "ovs_conntrack_info", "family", 2),
    Field("OVS_CT_INFO_RANGE", "ovs_conntrack_info", "range", 44),  # struct nf_nat_range2 (uapi)
)
CT_BITS = "OVS_CT_INFO_BITS"
# The programs test ovs_conntrack_info's bitfields within one byte with fixed masks (bpf/ovs_layout.h):
# commit is bit 0, nat bits 1-3, force bit 4 (member -> (bit within the byte, width)).
CT_BITFIELDS = {"commit": (0, 1), "nat": (1, 3), "force": (4, 1)}
MACROS: tuple[str, ...] = (*(f.macro for f in FIELDS), CT_BITS)

# The offsets each BPF function reads (directly or through the inline helpers it calls).
_UPCALL = ("OVS_UPCALL_INFO_PORTID", "OVS_UPCALL_INFO_CMD")
_CT = ("OVS_CT_INFO_ZONE_ID", CT_BITS, "OVS_CT_INFO_FAMILY", "OVS_CT_INFO_RANGE")
NEEDS: dict[str, tuple[str, ...]] = {
    "upcall_tp": (*_UPCALL, "OVS_KEY_IN_PORT"),
    "upcall_kprobe": (*_UPCALL, "OVS_KEY_IN_PORT"),
    "enqueue_return": _UPCALL,
    "exec_tp": ("OVS_KEY_RECIRC_ID", *_CT),
    "lookup_return": ("OVS_FLOW_UFID", "OVS_FLOW_SF_ACTS", "OVS_KEY_IN_PORT"),
    "kretfunc__openvswitch__ovs_flow_tbl_lookup_stats": ("OVS_FLOW_UFID", "OVS_FLOW_SF_ACTS", "OVS_KEY_IN_PORT"),
}

# Offsets checked with pahole against the BTF of these exact Debian kernels (tests/test_btf.py repeats
# the check on the guest images). Used only when that release runs without module BTF.
_DEBIAN_6_1 = {
    "OVS_UPCALL_INFO_PORTID": 28, "OVS_UPCALL_INFO_CMD": 32, "OVS_KEY_IN_PORT": 320, "OVS_KEY_RECIRC_ID": 328,
    "OVS_FLOW_UFID": 576, "OVS_FLOW_SF_ACTS": 1624, "OVS_CT_INFO_ZONE_ID": 8, CT_BITS: 24,
    "OVS_CT_INFO_FAMILY": 26, "OVS_CT_INFO_RANGE": 112,
}  # fmt: skip
_DEBIAN_6_12 = {
    "OVS_UPCALL_INFO_PORTID": 28, "OVS_UPCALL_INFO_CMD": 32, "OVS_KEY_IN_PORT": 328, "OVS_KEY_RECIRC_ID": 336,
    "OVS_FLOW_UFID": 584, "OVS_FLOW_SF_ACTS": 616, "OVS_CT_INFO_ZONE_ID": 8, CT_BITS: 24,
    "OVS_CT_INFO_FAMILY": 26, "OVS_CT_INFO_RANGE": 112,
}  # fmt: skip
VERIFIED: dict[str, dict[str, int]] = {
    "6.1.0-50-amd64": _DEBIAN_6_1,
    "6.1.0-57-amd64": _DEBIAN_6_1,
    "6.12.117+deb13-amd64": _DEBIAN_6_12,
}


@dataclass
class Layout:
    """The resolved offsets, where they came from, and why any are missing."""

    source: str = ""
    values: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def why_off(self, macros: Iterable[str]) -> str:
        """Why a function reading ``macros`` cannot run, or "" when they are all resolved."""
        reasons = [self.missing.get(m, "struct layout not resolved") for m in macros if m not in self.values]
        return f"struct layout unknown: {reasons[0]}" if reasons else ""

    def defines(self) -> dict[str, int]:
        """Every macro for the compiler. Unresolved ones are 0: the functions reading them are never attached."""
        return {m: self.values.get(m, 0) for m in MACROS}


def _from_btf(module: Btf, source: str) -> Layout:
    layout = Layout(source=f"BTF ({source})")
    for f in FIELDS:
        try:
            member = module.member(f.struct, f.path)
        except BtfError as exc:
            layout.missing[f.macro] = str(exc)
            continue
        if member.bit_offset % 8 or member.bit_size != f.size * 8:
            layout.missing[f.macro] = (
                f"{f.struct}.{f.path} is {member.bit_size} bits at bit {member.bit_offset}, "
                f"ovstop reads {f.size} bytes at a byte boundary"
            )
            continue
        layout.values[f.macro] = member.offset
    try:
        bits = {name: module.member("ovs_conntrack_info", name) for name in CT_BITFIELDS}
    except BtfError as exc:
        layout.missing[CT_BITS] = str(exc)
        return layout
    byte = bits["commit"].bit_offset // 8
    placed = {name: (m.bit_offset - 8 * byte, m.bit_size) for name, m in bits.items()}
    if placed == CT_BITFIELDS:
        layout.values[CT_BITS] = byte
    else:
        layout.missing[CT_BITS] = f"ovs_conntrack_info bitfields {placed} differ from the expected {CT_BITFIELDS}"
    return layout


def resolve(release: str, btf_dir: Path = BTF_DIR, verified: Mapping[str, Mapping[str, int]] = VERIFIED) -> Layout:
    """The layout for kernel ``release``, from ``btf_dir/{vmlinux,openvswitch}`` or the verified table."""
    module_path = btf_dir / "openvswitch"
    if module_path.exists():
        try:
            return _from_btf(kernel_btf("openvswitch", btf_dir), str(module_path))
        except BtfError as exc:
            return Layout(missing=dict.fromkeys(MACROS, str(exc)))
    if release in verified:
        return Layout(source=f"verified table for {release}", values=dict(verified[release]))
    why = (
        f"no openvswitch module BTF ({module_path} absent: kernel older than 5.11 or built without "
        f"CONFIG_DEBUG_INFO_BTF_MODULES) and no verified table for kernel {release}"
    )
    return Layout(missing=dict.fromkeys(MACROS, why))
