"""Raw ring-buffer records from ``bpf/ovs_common.h`` to events, in batches (one pass per poll).

:class:`RawEvent` mirrors ``struct ovstop_event`` field by field; the tables below mirror the
``EV_*``/``PROBE_*``/``CNT_*``/``LK_*`` numbering of the C, which is why their order matters.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct
from collections.abc import Iterable
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


_CTYPE_CODES = {
    ctypes.c_uint64: "Q",
    ctypes.c_uint32: "I",
    ctypes.c_int32: "i",
    ctypes.c_uint16: "H",
    ctypes.c_uint8: "B",
}


def _layout() -> tuple[struct.Struct, dict[str, int]]:
    """A ``struct`` format for :class:`RawEvent` and each field's index in the unpacked tuple, derived from
    its ctypes fields (one layout, written once): ``struct`` unpacking is far cheaper than a ctypes copy."""
    codes: list[str] = ["="]
    index: dict[str, int] = {}
    for name, ctype in RawEvent._fields_:
        length: int = getattr(ctype, "_length_", 0)
        item: Any = getattr(ctype, "_type_", None)  # an array's element type
        if name == "pad":
            codes.append(f"{ctypes.sizeof(ctype)}x")
        elif length and item in (ctypes.c_uint8, ctypes.c_char):
            codes.append(f"{length}s")
            index[name] = len(index)
        elif length:
            codes.append(f"{length}{_CTYPE_CODES[item]}")
            for i in range(length):
                index[f"{name}{i}"] = len(index)
        else:
            codes.append(_CTYPE_CODES[ctype])  # type: ignore[index]
            index[name] = len(index)
    layout = struct.Struct("".join(codes))
    if layout.size != ctypes.sizeof(RawEvent):
        raise RuntimeError(f"struct layout {layout.size} bytes != RawEvent {ctypes.sizeof(RawEvent)}")
    return layout, index


_LAYOUT, _INDEX = _layout()
RECORD_SIZE = _LAYOUT.size
_TYPE, _PROBE, _TS, _CPU, _PID, _TGID, _COMM = (
    _INDEX[n] for n in ("type", "probe", "ts", "cpu", "pid", "tgid", "comm")
)
_UFID = tuple(_INDEX[f"ufid{i}"] for i in range(4))
# Raw struct fields under the name the Retis JSON uses (schema.OVS_FIELDS), where they differ.
_RAW_NAME = {"type": "upcall_type"}
_COMPUTED = frozenset({"op_type", "dpflow"})
_PLAN = {
    kind: tuple((attr, _INDEX[_RAW_NAME.get(name, name)]) for name, attr in fields if name not in _COMPUTED)
    for kind, fields in schema.OVS_FIELDS.items()
}
"""Per event type: (OvsEvent attribute, index of its raw field)."""


class _View:
    """Attribute access to one unpacked record, for the rare per-action decoding below."""

    def __init__(self, values: tuple[Any, ...]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        return self._values[_INDEX[name]]


def _addr(raw: bytes, ipv6: bool) -> str:
    return str(ipaddress.IPv6Address(raw)) if ipv6 else str(ipaddress.IPv4Address(raw[:4]))


def _ct(ev: Any) -> dict[str, Any]:
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


def _action(ev: Any) -> dict[str, Any]:
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


def decode_record(data: bytes, usdt_path: str = "") -> schema.OvsEvent:
    """One raw record to an event; ``usdt_path`` names the binary of USDT events. Raises ParseError."""
    if len(data) < RECORD_SIZE:
        raise ParseError(f"eBPF event record is {len(data)} bytes, expected {RECORD_SIZE}")
    t = _LAYOUT.unpack_from(data)
    code, probe_code = t[_TYPE], t[_PROBE]
    if not 0 < code < len(EVENT_TYPES) or not 0 < probe_code < len(PROBE_TYPES):
        raise ParseError(f"eBPF event record has unknown type {code} / probe {probe_code}")
    kind, probe = EVENT_TYPES[code], PROBE_TYPES[probe_code]
    values = {attr: t[i] for attr, i in _PLAN[kind]}
    values.update(
        timestamp=t[_TS],
        event_type=kind,
        cpu=t[_CPU],
        pid=t[_PID],
        probe_type=probe,
        comm=t[_COMM].split(b"\0", 1)[0].decode(errors="replace"),
    )
    raw: dict[str, Any] = {"common": {"task": {"tgid": t[_TGID]}}}
    if probe == "usdt":
        ev = _View(t)
        values["probe"] = USDT_SYMBOLS["recv_upcall" if kind == "recv_upcall" else OP_TYPES[ev.op_type & 1]]
        raw["userspace"] = {"path": usdt_path, "pid": ev.tgid, "tid": ev.pid}
        if kind == "flow_operation":
            values["op_type"] = OP_TYPES[ev.op_type & 1]
    else:
        values["probe"] = KERNEL_SYMBOLS.get((kind, probe), "")
    if kind == "upcall":
        values["upcall_ts"] = t[_TS]
    elif kind == "action_execute":
        ev = _View(t)
        values["action"] = schema.decode_action(_action(ev))
        if not ev.has_queue_id:
            values["queue_id"] = None
    elif kind == "flow_lookup":
        values["ufid"] = ufid_str(tuple(t[i] for i in _UFID))
    values["raw"] = raw
    return schema.make_event(values)


def decode_batch(records: Iterable[bytes], usdt_path: str = "") -> tuple[list[schema.OvsEvent], int]:
    """Every record of one ring-buffer poll, decoded in one pass on the capture thread: the events, and how
    many records could not be decoded."""
    events: list[schema.OvsEvent] = []
    errors = 0
    for data in records:
        try:
            events.append(decode_record(data, usdt_path))
        except ParseError:
            errors += 1
    return events, errors
