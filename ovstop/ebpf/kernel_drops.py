"""Kernel drops by OVS drop reason (``skb:kfree_skb``, Linux 6.4+), counted by the capture thread.

The reasons and the layout the program needs are resolved from the running kernel's BTF (fail closed: a
kernel without the openvswitch drop subsystem, or without the module's BTF, gives a reason, not a guess);
``bpf/drops.c`` is built with them and attached by :class:`~ovstop.ebpf.capture.CaptureThread` next to
its hooks; its map's counts become ``ovs_vswitchd_kernel_drops_total{reason,port}`` samples.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ovstop.drops import KERNEL_DROPS as KERNEL_DROPS_NAME
from ovstop.ebpf.btf import Btf, kernel_btf
from ovstop.ebpf.program import bpf_dir
from ovstop.errors import SourceError
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of

KERNEL_DROPS = MetricSpec(
    KERNEL_DROPS_NAME,
    Kind.COUNTER,
    "Packets the kernel datapath freed with an openvswitch drop reason, per reason and input port (eBPF).",
    ("datapath", "kernel_drops"),
    ("reason", "port"),
)
SUBSYS = "SKB_DROP_REASON_SUBSYS_OPENVSWITCH"
FUNCTION = "drop_tp"
TRACEPOINT = "kfree_skb"


@dataclass(frozen=True)
class DropLayout:
    subsys: int
    shift: int
    names: dict[int, str]
    """Reason value -> name (``OVS_DROP_DEFERRED_LIMIT`` …), from ``enum ovs_drop_reason``."""
    skb_dev: int
    netdev_ifindex: int

    def cflags(self) -> list[str]:
        return [
            f"-DOVSTOP_DROP_SUBSYS={self.subsys}",
            f"-DOVSTOP_DROP_SHIFT={self.shift}",
            f"-DOVSTOP_SKB_DEV={self.skb_dev}",
            f"-DOVSTOP_NETDEV_IFINDEX={self.netdev_ifindex}",
        ]


def _subsystem(vmlinux: Btf) -> int:
    subsystems = vmlinux.enums().get("skb_drop_reason_subsys", {})
    if SUBSYS not in subsystems:
        raise SourceError("this kernel has no openvswitch drop reasons (Linux 6.4+)")
    return subsystems[SUBSYS]


def layout(vmlinux: Btf, openvswitch: Btf) -> DropLayout:
    """The subsystem, shift, reason names and offsets of this kernel; SourceError when it has no OVS reasons."""
    subsys = _subsystem(vmlinux)
    reasons = openvswitch.enums().get("ovs_drop_reason")
    if not reasons or "__OVS_DROP_REASON" not in reasons:
        raise SourceError("the openvswitch module's BTF has no enum ovs_drop_reason")
    base = reasons["__OVS_DROP_REASON"]
    shift = base.bit_length() - subsys.bit_length() if subsys else 0
    if subsys <= 0 or subsys << shift != base:
        raise SourceError(f"openvswitch drop reasons start at {base:#x}, not at subsystem {subsys} shifted")
    names = {v: k for k, v in reasons.items() if not k.startswith("__") and k != "OVS_DROP_MAX"}
    return DropLayout(subsys, shift, names, vmlinux.offset("sk_buff", "dev"), vmlinux.offset("net_device", "ifindex"))


def system_layout() -> DropLayout:
    """This kernel's layout, from ``/sys/kernel/btf`` (vmlinux and the loaded openvswitch module)."""
    vmlinux = kernel_btf()
    _subsystem(vmlinux)  # a kernel without the reasons says so before the module's BTF is looked for
    return layout(vmlinux, kernel_btf("openvswitch"))


def compile_drops(bcc: Any, drop_layout: DropLayout) -> Any:
    """``bpf/drops.c`` compiled for this kernel (loaded, not attached)."""
    try:
        return bcc.BPF(src_file=str(bpf_dir() / "drops.c").encode(), cflags=drop_layout.cflags())
    except Exception as exc:
        raise SourceError(f"drops BPF program failed to compile: {exc}") from exc


def read_counts(bpf: Any) -> dict[tuple[int, int], int]:
    """(reason, ifindex) -> packets, from the program's map."""
    return {(k.reason, k.ifindex): int(ctypes.c_uint64(v.value).value) for k, v in bpf[b"kernel_drops"].items()}


def samples(counts: Mapping[tuple[int, int], int], drop_layout: DropLayout, ports: Mapping[int, str]) -> list[Sample]:
    """One series per reason and port; a value the kernel's enum does not name keeps its number."""
    out: dict[tuple[str, str], int] = {}
    for (reason, ifindex), n in counts.items():
        key = (drop_layout.names.get(reason, f"reason_{reason:#x}"), ports.get(ifindex, f"ifindex {ifindex}"))
        out[key] = out.get(key, 0) + n
    return [Sample(KERNEL_DROPS, labels_of(reason=r, port=p), float(n)) for (r, p), n in sorted(out.items())]
