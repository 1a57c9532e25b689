"""Kernel drop reasons, prepared for capture: the BTF reader against bpftool's dump of this host's kernel,
the reason layout on a split BTF, the program through the verifier, and the samples it turns into.

This host has no openvswitch module (so no module BTF): the module side is a split BTF blob built here
in the kernel's format, with the member names of Linux 6.12's ``net/openvswitch/drop.h`` (synthetic,
labelled). Attaching and counting real drops waits for the Debian 13 guest (see ovstop/ebpf/kernel_drops.py).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from ebpf_support import headers_tree

from ovstop.ebpf import kernel_drops
from ovstop.ebpf.bcc_import import import_bcc
from ovstop.ebpf.btf import Btf, kernel_btf
from ovstop.ebpf.capability import find_kernel_headers
from ovstop.errors import SourceError

VMLINUX = Path("/sys/kernel/btf/vmlinux")
needs_btf = pytest.mark.skipif(not VMLINUX.exists(), reason="no kernel BTF on this host")
OVS_REASONS = (
    "OVS_DROP_LAST_ACTION",
    "OVS_DROP_ACTION_ERROR",
    "OVS_DROP_EXPLICIT",
    "OVS_DROP_EXPLICIT_WITH_ERROR",
    "OVS_DROP_METER",
    "OVS_DROP_RECURSION_LIMIT",
    "OVS_DROP_DEFERRED_LIMIT",
    "OVS_DROP_FRAG_L2_TOO_LONG",
    "OVS_DROP_FRAG_INVALID_PROTO",
    "OVS_DROP_CONNTRACK",
    "OVS_DROP_IP_TTL",
)


def bpftool_enum(name: str) -> dict[str, int]:
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(VMLINUX)], capture_output=True, text=True, check=True
    ).stdout
    block = dump.split(f"ENUM '{name}'", 1)[1].split("\n[", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"'(\w+)' val=(-?\d+)", block)}


def bpftool_offset(struct_name: str, member: str) -> int:
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(VMLINUX)], capture_output=True, text=True, check=True
    ).stdout
    block = dump.split(f"STRUCT '{struct_name}' ", 1)[1].split("\n[", 1)[0]
    return int(re.search(rf"'{member}' type_id=\d+ bits_offset=(\d+)", block).group(1)) // 8  # type: ignore[union-attr]


@needs_btf
@pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool (apt-get install bpftool)")
def test_btf_reader_agrees_with_bpftool() -> None:
    btf = kernel_btf()
    enums = btf.enums()
    for name in ("skb_drop_reason_subsys", "skb_drop_reason"):
        assert enums[name] == bpftool_enum(name)
    assert btf.offset("net_device", "ifindex") == bpftool_offset("net_device", "ifindex")
    with pytest.raises(SourceError):
        btf.offset("net_device", "no_such_member")


def split_blob(base: Btf, enum_name: str, members: dict[str, int]) -> bytes:
    """A module BTF in the kernel's split format holding one enum (string offsets continue the base's)."""
    strings = b"\0"
    offsets = {}
    for text in (enum_name, *members):
        offsets[text] = base.str_len + len(strings)
        strings += text.encode() + b"\0"
    types = struct.pack("<III", offsets[enum_name], (6 << 24) | len(members), 4)
    types += b"".join(struct.pack("<Ii", offsets[n], v) for n, v in members.items())
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


@pytest.fixture(scope="module")
def host_layout() -> kernel_drops.DropLayout:
    if not VMLINUX.exists():
        pytest.skip("no kernel BTF on this host")
    vmlinux = kernel_btf()
    subsys = vmlinux.enums()["skb_drop_reason_subsys"].get(kernel_drops.SUBSYS)
    if subsys is None:
        pytest.skip("this kernel has no openvswitch drop subsystem")
    base = subsys << 16
    members = {
        "__OVS_DROP_REASON": base,
        **{n: base + i for i, n in enumerate(OVS_REASONS, 1)},
        "OVS_DROP_MAX": base + len(OVS_REASONS) + 1,
    }
    return kernel_drops.layout(vmlinux, Btf(split_blob(vmlinux, "ovs_drop_reason", members), vmlinux, "openvswitch"))


def test_layout_from_btf(host_layout: kernel_drops.DropLayout) -> None:
    assert host_layout.shift == 16
    assert host_layout.names[(host_layout.subsys << 16) + 7] == "OVS_DROP_DEFERRED_LIMIT"
    assert set(host_layout.names.values()) == set(OVS_REASONS)
    assert host_layout.netdev_ifindex == kernel_btf().offset("net_device", "ifindex")


@needs_btf
def test_a_module_without_ovs_reasons_is_a_reason_not_a_guess() -> None:
    vmlinux = kernel_btf()
    other = Btf(split_blob(vmlinux, "something_else", {"A": 1}), vmlinux, "openvswitch")
    with pytest.raises(SourceError, match="no enum ovs_drop_reason"):
        kernel_drops.layout(vmlinux, other)


def test_counts_become_named_samples_per_port(host_layout: kernel_drops.DropLayout) -> None:
    deferred = (host_layout.subsys << 16) + 7
    counts = {(deferred, 3): 5, (deferred, 4): 2, ((host_layout.subsys << 16) + 99, 3): 1}
    got = {
        (dict(s.labels)["reason"], dict(s.labels)["port"]): s.value
        for s in kernel_drops.samples(counts, host_layout, {3: "veth0"})
    }
    assert got == {
        ("OVS_DROP_DEFERRED_LIMIT", "veth0"): 5.0,
        ("OVS_DROP_DEFERRED_LIMIT", "ifindex 4"): 2.0,
        (f"reason_{(host_layout.subsys << 16) + 99:#x}", "veth0"): 1.0,
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")
@pytest.mark.root
def test_drops_program_passes_the_verifier(
    host_layout: kernel_drops.DropLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bcc = import_bcc()
    if not find_kernel_headers(platform.release()):
        tree = headers_tree(tmp_path)
        if not tree:
            pytest.fail("no kernel headers: apt-get install linux-headers-amd64")
        monkeypatch.setenv("BCC_KERNEL_SOURCE", tree)
    bpf = kernel_drops.compile_drops(bcc, host_layout)
    try:
        assert bpf.load_func(kernel_drops.FUNCTION.encode(), bcc.BPF.RAW_TRACEPOINT).fd > 0
        assert kernel_drops.read_counts(bpf) == {}
    finally:
        bpf.cleanup()


@needs_btf
@pytest.mark.skipif(Path("/sys/kernel/btf/openvswitch").exists(), reason="the openvswitch module is loaded here")
def test_system_layout_without_the_module_says_what_is_missing() -> None:
    """This host has no openvswitch module: its kernel either has no OVS reasons, or the module's BTF is missing."""
    has_subsystem = kernel_drops.SUBSYS in kernel_btf().enums().get("skb_drop_reason_subsys", {})
    missing = "cannot read BTF /sys/kernel/btf/openvswitch" if has_subsystem else "no openvswitch drop reasons"
    with pytest.raises(SourceError, match=re.escape(missing)):
        kernel_drops.system_layout()
