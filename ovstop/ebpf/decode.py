"""Raw ring-buffer records from ``bpf/ovs_common.h`` to Retis-envelope event dicts.

:class:`RawEvent` mirrors ``struct ovstop_event`` field by field; the tables below mirror the
``EV_*``/``PROBE_*``/``CNT_*``/``LK_*`` numbering of the C, which is why their order matters.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
from typing import Any

from ovstop.errors import ParseError
from ovstop.events import schema

EVENT_TYPES = ("", *schema.EVENT_TYPES)
"""Index = the ``EV_*`` code the BPF programs write (0 unused), in the order of Retis's event types."""
PROBE_TYPES = ("", "kprobe", "kretprobe", "raw_tracepoint", "usdt", "fexit")
COUNTERS = ("events_lost", "sampled_out")
LOOKUP_TOTALS = ("hit", "miss", "mask_hit", "cache_hit")

# Datapath action numbers (uapi/linux/openvswitch.h, enum ovs_action_attr), named as Retis names
# them; kernel-internal numbers past the uAPI ones (OVS_ACTION_ATTR_SET_TO_MASKED) are "set_masked".
ACTIONS = (
    "unspec",
    "output",
    "userspace",
    "set",
    "push_vlan",
    "pop_vlan",
    "sample",
    "recirc",
    "hash",
    "push_mpls",
    "pop_mpls",
    "set_masked",
    "ct",
    "trunc",
    "push_eth",
    "pop_eth",
    "ct_clear",
    "push_nsh",
    "pop_nsh",
    "meter",
    "clone",
    "check_pkt_len",
    "add_mpls",
    "dec_ttl",
    "drop",
)

# Retis's R_OVS_CT_* bits (also set by bpf/exec.c).
CT_IP4, CT_IP6, CT_NAT_SRC, CT_NAT_DST = 1 << 2, 1 << 3, 1 << 5, 1 << 6
CT_MAP_IPS, CT_PROTO_SPECIFIED = 1 << 7, 1 << 8

OP_TYPES = ("put", "exec")

# Symbols as Retis writes them per (event, probe kind).
KERNEL_SYMBOLS = {
    ("upcall", "raw_tracepoint"): "openvswitch:ovs_dp_upcall",
    ("upcall", "kprobe"): "ovs_dp_upcall",
    ("upcall_return", "kretprobe"): "ovs_dp_upcall",
    ("upcall_enqueue", "kretprobe"): "queue_userspace_packet",
    ("action_execute", "raw_tracepoint"): "openvswitch:ovs_do_execute_action",
    ("flow_lookup", "kretprobe"): "ovs_flow_tbl_lookup_stats",
    ("flow_lookup", "fexit"): "ovs_flow_tbl_lookup_stats",
}
USDT_SYMBOLS = {
    "recv_upcall": "dpif_recv:recv_upcall",
    "put": "dpif_netlink_operate__:op_flow_put",
    "exec": "dpif_netlink_operate__:op_flow_execute",
}


class RawEvent(ctypes.Structure):
    _fields_ = (
        ("ts", ctypes.c_uint64),
        ("upcall_ts", ctypes.c_uint64),
        ("flow", ctypes.c_uint64),
        ("sf_acts", ctypes.c_uint64),
        ("batch_ts", ctypes.c_uint64),
        ("key_size", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("tgid", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("upcall_cpu", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("probe", ctypes.c_uint32),
        ("port", ctypes.c_uint32),
        ("queue_id", ctypes.c_uint32),
        ("ret", ctypes.c_int32),
        ("recirc_id", ctypes.c_uint32),
        ("ufid", ctypes.c_uint32 * 4),
        ("n_mask_hit", ctypes.c_uint32),
        ("n_cache_hit", ctypes.c_uint32),
        ("action", ctypes.c_uint32),
        ("action_arg", ctypes.c_uint32),
        ("ct_flags", ctypes.c_uint32),
        ("upcall_type", ctypes.c_uint32),
        ("pkt_size", ctypes.c_uint32),
        ("batch_idx", ctypes.c_uint32),
        ("ct_zone", ctypes.c_uint16),
        ("nat_min_port", ctypes.c_uint16),
        ("nat_max_port", ctypes.c_uint16),
        ("cmd", ctypes.c_uint8),
        ("has_queue_id", ctypes.c_uint8),
        ("op_type", ctypes.c_uint8),
        ("pad", ctypes.c_uint8 * 7),
        ("nat_min_addr", ctypes.c_uint8 * 16),
        ("nat_max_addr", ctypes.c_uint8 * 16),
        ("comm", ctypes.c_char * 16),
    )


def ufid_str(words: tuple[int, ...] | list[int]) -> str:
    """A UFID as ovs-vswitchd prints it (``dpctl/dump-flows``: ``ufid:<this>``)."""
    w0, w1, w2, w3 = words
    return f"{w0:08x}-{w1 >> 16:04x}-{w1 & 0xFFFF:04x}-{w2 >> 16:04x}-{w2 & 0xFFFF:04x}{w3:08x}"


def _addr(raw: ctypes.Array, ipv6: bool) -> str:
    data = bytes(raw)
    return str(ipaddress.IPv6Address(data)) if ipv6 else str(ipaddress.IPv4Address(data[:4]))


def _ct(ev: RawEvent) -> dict[str, Any]:
    action: dict[str, Any] = {"action": "ct", "flags": ev.ct_flags, "zone_id": ev.ct_zone}
    if not ev.ct_flags & (CT_NAT_SRC | CT_NAT_DST | CT_MAP_IPS | CT_PROTO_SPECIFIED):
        return action
    nat: dict[str, Any] = {}
    if ev.ct_flags & CT_NAT_SRC:
        nat["dir"] = "src"
    elif ev.ct_flags & CT_NAT_DST:
        nat["dir"] = "dst"
    if ev.ct_flags & CT_MAP_IPS:
        ipv6 = bool(ev.ct_flags & CT_IP6)
        nat["min_addr"] = _addr(ev.nat_min_addr, ipv6)
        nat["max_addr"] = _addr(ev.nat_max_addr, ipv6)
    if ev.ct_flags & CT_PROTO_SPECIFIED:
        nat["min_port"] = socket.ntohs(ev.nat_min_port)
        nat["max_port"] = socket.ntohs(ev.nat_max_port)
    action["nat"] = nat
    return action


def _action(ev: RawEvent) -> dict[str, Any]:
    name = ACTIONS[ev.action] if ev.action < len(ACTIONS) else "set_masked"
    if name == "output":
        return {"action": name, "port": ev.action_arg}
    if name == "recirc":
        return {"action": name, "id": ev.action_arg}
    if name == "drop":
        return {"action": name, "reason": ev.action_arg}
    if name == "ct":
        return _ct(ev)
    return {"action": name}


def _ovs_section(kind: str, ev: RawEvent) -> dict[str, Any]:
    if kind == "upcall":
        return {"cmd": ev.cmd, "port": ev.port, "cpu": ev.cpu}
    if kind == "upcall_enqueue":
        return {
            "ret": ev.ret,
            "cmd": ev.cmd,
            "port": ev.port,
            "upcall_ts": ev.upcall_ts,
            "upcall_cpu": ev.upcall_cpu,
            "queue_id": ev.queue_id,
        }
    if kind == "upcall_return":
        return {"upcall_ts": ev.upcall_ts, "upcall_cpu": ev.upcall_cpu, "ret": ev.ret}
    if kind == "recv_upcall":
        return {
            "type": ev.upcall_type,
            "pkt_size": ev.pkt_size,
            "key_size": ev.key_size,
            "queue_id": ev.queue_id,
            "batch_ts": ev.batch_ts,
            "batch_idx": ev.batch_idx,
        }
    if kind == "flow_operation":
        return {
            "op_type": OP_TYPES[ev.op_type & 1],
            "queue_id": ev.queue_id,
            "batch_ts": ev.batch_ts,
            "batch_idx": ev.batch_idx,
        }
    if kind == "action_execute":
        section = {**_action(ev), "recirc_id": ev.recirc_id}
        if ev.has_queue_id:
            section["queue_id"] = ev.queue_id
        return section
    # flow_lookup; a miss is flow 0
    return {
        "flow": ev.flow,
        "sf_acts": ev.sf_acts,
        "ufid": list(ev.ufid),
        "n_mask_hit": ev.n_mask_hit,
        "n_cache_hit": ev.n_cache_hit,
    }


def decode(data: bytes, usdt_path: str = "") -> dict[str, Any]:
    """One raw record to a Retis-envelope dict; ``usdt_path`` names the binary of USDT events."""
    if len(data) < ctypes.sizeof(RawEvent):
        raise ParseError(f"eBPF event record is {len(data)} bytes, expected {ctypes.sizeof(RawEvent)}")
    ev = RawEvent.from_buffer_copy(data[: ctypes.sizeof(RawEvent)])
    if not 0 < ev.type < len(EVENT_TYPES) or not 0 < ev.probe < len(PROBE_TYPES):
        raise ParseError(f"eBPF event record has unknown type {ev.type} / probe {ev.probe}")
    kind, probe = EVENT_TYPES[ev.type], PROBE_TYPES[ev.probe]
    event: dict[str, Any] = {
        "common": {
            "timestamp": ev.ts,
            "smp_id": ev.cpu,
            "task": {"pid": ev.pid, "tgid": ev.tgid, "comm": ev.comm.decode(errors="replace")},
        },
    }
    if probe == "usdt":
        symbol = USDT_SYMBOLS["recv_upcall" if kind == "recv_upcall" else OP_TYPES[ev.op_type & 1]]
        event["userspace"] = {
            "probe_type": "usdt",
            "symbol": symbol,
            "path": usdt_path,
            "pid": ev.tgid,
            "tid": ev.pid,
        }
    else:
        event["kernel"] = {"symbol": KERNEL_SYMBOLS.get((kind, probe), ""), "probe_type": probe}
    event["ovs"] = {"event_type": kind, **_ovs_section(kind, ev)}
    return event
