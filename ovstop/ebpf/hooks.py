"""The probe points ovstop attaches, one row per BPF function, grouped by the Retis event they feed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    RAW_TRACEPOINT = "raw_tracepoint"
    KPROBE = "kprobe"
    KRETPROBE = "kretprobe"
    FEXIT = "fexit"
    USDT = "usdt"


@dataclass(frozen=True)
class Hook:
    """One BPF function and where it attaches.

    ``target`` is the tracepoint name (``openvswitch:`` implied), the kernel symbol, or the USDT
    ``provider:name``. ``fallback_for`` names the hook this one replaces when that hook's target is
    absent (the ovs_dp_upcall kprobe stands in for the tracepoint on kernels before 5.14).
    ``optional`` hooks add detail to their event but the event works without them. ``replaces`` lists the
    functions a hook stands in for whenever it can attach (an fexit instead of a kprobe + kretprobe pair).
    """

    event: str
    kind: Kind
    target: str
    fn: str
    group: str
    fallback_for: str = ""
    optional: bool = False
    replaces: tuple[str, ...] = ()


HOOKS: tuple[Hook, ...] = (
    Hook("upcall", Kind.RAW_TRACEPOINT, "ovs_dp_upcall", "upcall_tp", "upcall"),
    Hook("upcall", Kind.KPROBE, "ovs_dp_upcall", "upcall_kprobe", "upcall", fallback_for="ovs_dp_upcall"),
    Hook("upcall_return", Kind.KRETPROBE, "ovs_dp_upcall", "upcall_return", "upcall"),
    Hook("upcall_enqueue", Kind.KPROBE, "queue_userspace_packet", "enqueue_entry", "enqueue"),
    Hook("upcall_enqueue", Kind.KRETPROBE, "queue_userspace_packet", "enqueue_return", "enqueue"),
    Hook(
        "action_execute",
        Kind.RAW_TRACEPOINT,
        "ovs_do_execute_action",
        "exec_tp",
        "exec",
    ),
    Hook("action_execute", Kind.KPROBE, "ovs_packet_cmd_execute", "cmd_execute_entry", "exec", optional=True),
    Hook("action_execute", Kind.KRETPROBE, "ovs_packet_cmd_execute", "cmd_execute_return", "exec", optional=True),
    Hook("flow_lookup", Kind.KPROBE, "ovs_flow_tbl_lookup_stats", "lookup_entry", "lookup"),
    Hook("flow_lookup", Kind.KRETPROBE, "ovs_flow_tbl_lookup_stats", "lookup_return", "lookup"),
    Hook(
        "flow_lookup",
        Kind.FEXIT,
        "ovs_flow_tbl_lookup_stats",
        "kretfunc__openvswitch__ovs_flow_tbl_lookup_stats",
        "lookup",
        replaces=("lookup_entry", "lookup_return"),
    ),
    Hook("recv_upcall", Kind.USDT, "dpif_recv:recv_upcall", "usdt_recv_upcall", "usdt"),
    Hook("flow_operation", Kind.USDT, "dpif_netlink_operate__:op_flow_put", "usdt_op_flow_put", "usdt"),
    Hook("flow_operation", Kind.USDT, "dpif_netlink_operate__:op_flow_execute", "usdt_op_flow_execute", "usdt"),
)

EVENTS: tuple[str, ...] = tuple(dict.fromkeys(h.event for h in HOOKS))
PER_PACKET: frozenset[str] = frozenset({"flow_lookup", "action_execute"})
"""Events whose hooks run for every packet the datapath handles (a lookup per packet, an action per
action): off unless asked for ("deep" capture). The default set runs only on the upcall (slow) path; per-flow
hits come from dump-flows' packet counts and mask/cache hits from ``dpctl/show`` without them."""
DEEP_OFF = "per-packet hook, off by default (--ebpf-deep or key d: it costs every packet)"
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(h.group for h in HOOKS))
