"""Typed view of one OVS event in Retis's schema, and the conversion to and from Retis's JSON envelope.

A Retis event is a JSON object of sections (``common``, ``kernel`` or ``userspace``, ``ovs``, ``packet``,
``skb-tracking`` …). :func:`decode` reads the sections ovstop uses into an :class:`OvsEvent` and keeps the
whole object in ``raw``; :func:`encode` rebuilds the envelope from the typed fields on top of ``raw``, so a
Retis event survives a round trip unchanged and an event built by the eBPF capture (empty ``raw``) comes
out in the same shape Retis writes. Field names follow Retis's ``retis-events/src/ovs.rs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ovstop.errors import ParseError
from ovstop.events.packet import PacketKey, key_from_section

UPCALL_CMDS = {0: "unspec", 1: "miss", 2: "action", 3: "exec"}
"""OVS_PACKET_CMD_* values of ``cmd``."""

EVENT_TYPES = (
    "upcall",
    "upcall_enqueue",
    "upcall_return",
    "recv_upcall",
    "flow_operation",
    "action_execute",
    "flow_lookup",
)

# ct action flags (Retis R_OVS_CT_*) that Retis prints, in its order.
_CT_FLAG_NAMES = ((1, "commit"), (2, "force"), (1 << 10, "persistent"), (1 << 9, "hash"), (1 << 11, "random"))
_CT_NAT_MAP_IPS = 1 << 7
_CT_NAT_PROTO_SPECIFIED = 1 << 8

# Retis prints these action kinds under another name.
_ACTION_DISPLAY = {"set": "tunnel_set"}

# Per event type: (JSON field of the ovs section, OvsEvent attribute). The upcall event's own ``cpu`` is the
# CPU of the upcall key, so it lands in ``upcall_cpu`` like on the enqueue and return events.
OVS_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "upcall": (("cmd", "cmd"), ("port", "port"), ("cpu", "upcall_cpu")),
    "upcall_enqueue": (
        ("ret", "ret"),
        ("cmd", "cmd"),
        ("port", "port"),
        ("upcall_ts", "upcall_ts"),
        ("upcall_cpu", "upcall_cpu"),
        ("queue_id", "queue_id"),
    ),
    "upcall_return": (("upcall_ts", "upcall_ts"), ("upcall_cpu", "upcall_cpu"), ("ret", "ret")),
    "recv_upcall": (
        ("type", "upcall_type"),
        ("pkt_size", "pkt_size"),
        ("key_size", "key_size"),
        ("queue_id", "queue_id"),
        ("batch_ts", "batch_ts"),
        ("batch_idx", "batch_idx"),
    ),
    "flow_operation": (
        ("op_type", "op_type"),
        ("queue_id", "queue_id"),
        ("batch_ts", "batch_ts"),
        ("batch_idx", "batch_idx"),
    ),
    "action_execute": (("recirc_id", "recirc_id"), ("queue_id", "queue_id")),
    "flow_lookup": (
        ("flow", "flow"),
        ("sf_acts", "sf_acts"),
        ("n_mask_hit", "n_mask_hit"),
        ("n_cache_hit", "n_cache_hit"),
        ("dpflow", "dpflow"),
    ),
}
_STR_FIELDS = frozenset({"op_type", "dpflow"})
_NAT_FIELDS = ("dir", "min_addr", "max_addr", "min_port", "max_port")


@dataclass(frozen=True)
class Nat:
    """NAT part of a ct action; Retis writes every field, null when unset."""

    dir: str | None = None
    min_addr: str | None = None
    max_addr: str | None = None
    min_port: int | None = None
    max_port: int | None = None


@dataclass(frozen=True)
class Action:
    """The datapath action of an ``action_execute`` event (Retis flattens its data into the section).

    ``kind`` is Retis's action name (output, recirc, ct, drop, userspace …); only output (``port``),
    recirc (``id``), ct (``zone_id``, ``flags``, ``nat``) and drop (``reason``) carry data.
    """

    kind: str
    port: int | None = None
    id: int | None = None
    zone_id: int | None = None
    flags: int | None = None
    nat: Nat | None = None
    reason: int | None = None

    def __str__(self) -> str:
        if self.kind == "output":
            return f"oport {self.port}"
        if self.kind == "recirc":
            return f"recirc {self.id or 0:#x}"
        if self.kind == "drop":
            return f"drop {self.reason}"
        if self.kind == "ct":
            return self._ct_text()
        return _ACTION_DISPLAY.get(self.kind, self.kind)

    def _ct_text(self) -> str:
        flags = self.flags or 0
        text = f"ct zone {self.zone_id}"
        nat = self.nat
        if nat is not None:
            text += " nat"
            if nat.dir is not None:
                text += f"({nat.dir}"
                if flags & _CT_NAT_MAP_IPS and nat.min_addr is not None and nat.max_addr is not None:
                    text += "=" + _range(nat.min_addr, nat.max_addr)
                if flags & _CT_NAT_PROTO_SPECIFIED and nat.min_port is not None and nat.max_port is not None:
                    text += ":" + _range(nat.min_port, nat.max_port)
                text += ")"
        names = [name for bit, name in _CT_FLAG_NAMES if flags & bit]
        if names:
            text += " " + ",".join(names)
        return text


def _range(low: object, high: object) -> str:
    return str(low) if low == high else f"{low}-{high}"


@dataclass(frozen=True)
class OvsEvent:
    """One OVS event. ``timestamp`` is CLOCK_MONOTONIC ns (Retis ``common.timestamp``).

    ``cpu`` is the CPU the probe ran on (``common.smp_id``). ``upcall_ts``/``upcall_cpu`` form the upcall
    key on upcall, upcall_enqueue and upcall_return events (on an upcall, its own timestamp and ``cpu``).
    ``skb_track`` is Retis's skb tracking id ((timestamp << 64) | orig_head) when the event has one.
    ``corr_id`` and ``latency_ns`` are filled in by the correlator.
    """

    timestamp: int
    event_type: str
    cpu: int | None = None
    pid: int | None = None
    comm: str | None = None
    probe: str | None = None
    probe_type: str | None = None
    cmd: int | None = None
    port: int | None = None
    upcall_ts: int | None = None
    upcall_cpu: int | None = None
    ret: int | None = None
    queue_id: int | None = None
    upcall_type: int | None = None
    pkt_size: int | None = None
    key_size: int | None = None
    op_type: str | None = None
    batch_ts: int | None = None
    batch_idx: int | None = None
    action: Action | None = None
    recirc_id: int | None = None
    flow: int | None = None
    sf_acts: int | None = None
    ufid: str | None = None
    n_mask_hit: int | None = None
    n_cache_hit: int | None = None
    dpflow: str | None = None
    ofpflows: tuple[str, ...] | None = None
    key: PacketKey | None = None
    skb_track: int | None = None
    corr_id: int | None = None
    latency_ns: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_miss(self) -> bool:
        """A datapath flow-table lookup that found no flow."""
        return self.event_type == "flow_lookup" and self.flow == 0

    @property
    def upcall_key(self) -> tuple[int, int] | None:
        """(upcall timestamp, upcall cpu): what links an upcall to its enqueue and return events."""
        if self.upcall_ts is None or self.upcall_cpu is None:
            return None
        return (self.upcall_ts, self.upcall_cpu)

    def summary(self) -> str:
        """One line in Retis's display style, e.g. ``upcall (miss) port 1 cpu 0``."""
        kind = self.event_type
        cmd = f" ({UPCALL_CMDS[self.cmd]})" if self.cmd in UPCALL_CMDS else ""
        if kind == "upcall":
            return f"upcall{cmd} port {self.port} cpu {self.upcall_cpu}"
        if kind == "upcall_enqueue":
            return f"upcall_enqueue{cmd} ({self.upcall_cpu}/{self.upcall_ts}) q {self.queue_id} ret {self.ret}"
        if kind == "upcall_return":
            return f"upcall_ret ({self.upcall_cpu}/{self.upcall_ts}) ret {self.ret}"
        if kind == "recv_upcall":
            return f"upcall_recv q {self.queue_id} pkt_size {self.pkt_size}"
        if kind == "flow_operation":
            return f"flow_{self.op_type} q {self.queue_id} ts {self.batch_ts} ({self.batch_idx})"
        if kind == "action_execute":
            return self._action_summary()
        if kind == "flow_lookup":
            return self._lookup_summary()
        return kind

    def _action_summary(self) -> str:
        text = f"[recirc_id {self.recirc_id:#x}] " if self.recirc_id else ""
        text += f"exec {self.action if self.action is not None else 'unspec'}"
        if self.queue_id is not None:
            text += f" q {self.queue_id}"
        return text

    def _lookup_summary(self) -> str:
        if self.is_miss:
            return f"flow miss mask {self.n_mask_hit} cache {self.n_cache_hit}"
        text = (
            f"flow hit ufid {self.ufid} mask {self.n_mask_hit} cache {self.n_cache_hit}"
            f" flow {self.flow or 0:x} sf_acts {self.sf_acts or 0:x}"
        )
        if self.dpflow:
            text += f" odpflow {self.dpflow}"
        if self.ofpflows:
            text += " openflow " + " ".join(self.ofpflows)
        return text


_EVENT_DEFAULTS = {f.name: f.default for f in fields(OvsEvent) if f.name != "raw"}


def make_event(values: dict[str, Any]) -> OvsEvent:
    """An event from fields that are already of the right types (ovstop's own ring-buffer records): the same
    object as ``OvsEvent(**values)`` at a fraction of the cost, since the frozen dataclass's ``__init__``
    sets its 35 attributes one ``object.__setattr__`` at a time (the capture thread's main cost)."""
    event = object.__new__(OvsEvent)
    state = dict(_EVENT_DEFAULTS)
    state["raw"] = {}
    state.update(values)
    object.__setattr__(event, "__dict__", state)
    return event


def ufid_to_str(parts: list[int]) -> str:
    """Retis's UUID-style rendering of a UFID held as four u32."""
    a, b, c, d = parts
    return f"{a:08x}-{b >> 16:04x}-{b & 0xFFFF:04x}-{c >> 16:04x}-{c & 0xFFFF:04x}{d:08x}"


def ufid_from_str(text: str) -> list[int]:
    """Inverse of :func:`ufid_to_str`."""
    try:
        p0, p1, p2, p3, p45 = text.split("-")
        if len(p45) != 12:
            raise ValueError(text)
        return [
            int(p0, 16),
            (int(p1, 16) << 16) | int(p2, 16),
            (int(p3, 16) << 16) | int(p45[:4], 16),
            int(p45[4:], 16),
        ]
    except ValueError:
        raise ParseError(f"invalid ufid {text!r}: expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") from None


def _get(section: dict[str, Any], name: str, kind: type, where: str) -> Any:
    """``section[name]`` checked to be ``kind`` (bool is not an int here); None when absent or null."""
    value = section.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ParseError(f"{where}.{name} should be {kind.__name__}, got {value!r}")
    return value


def _section(obj: dict[str, Any], name: str) -> dict[str, Any]:
    value = obj.get(name) or {}
    if not isinstance(value, dict):
        raise ParseError(f"event section {name!r} should be an object, got {type(value).__name__}")
    return value


def decode_action(ovs: dict[str, Any]) -> Action | None:
    kind = _get(ovs, "action", str, "ovs")
    if kind is None:
        return None
    nat = None
    raw_nat = _get(ovs, "nat", dict, "ovs")
    if raw_nat is not None:
        nat = Nat(**{k: raw_nat.get(k) for k in _NAT_FIELDS})
    return Action(
        kind=kind,
        port=_get(ovs, "port", int, "ovs") if kind == "output" else None,
        id=_get(ovs, "id", int, "ovs") if kind == "recirc" else None,
        zone_id=_get(ovs, "zone_id", int, "ovs"),
        flags=_get(ovs, "flags", int, "ovs"),
        nat=nat,
        reason=_get(ovs, "reason", int, "ovs"),
    )


def _skb_track(obj: dict[str, Any]) -> int | None:
    track = _section(obj, "skb-tracking")
    ts = _get(track, "timestamp", int, "skb-tracking")
    head = _get(track, "orig_head", int, "skb-tracking")
    if ts is None or head is None:
        return None
    return (ts << 64) | head


def decode(obj: dict[str, Any]) -> OvsEvent | None:
    """The OVS event in a Retis event object; None when the object has no ``ovs`` section.

    Raises :class:`ParseError` when a section or field has the wrong JSON type.
    """
    if not isinstance(obj, dict):
        raise ParseError(f"an event must be a JSON object, got {type(obj).__name__}")
    if "ovs" not in obj:
        return None
    ovs = _section(obj, "ovs")
    event_type = _get(ovs, "event_type", str, "ovs")
    if event_type is None:
        raise ParseError("ovs section without event_type")
    common = _section(obj, "common")
    timestamp = _get(common, "timestamp", int, "common")
    if timestamp is None:
        raise ParseError(f"{event_type} event without common.timestamp")
    task = _section(common, "task")
    probe = _section(obj, "kernel") or _section(obj, "userspace")
    values: dict[str, Any] = {}
    for json_name, attr in OVS_FIELDS.get(event_type, ()):
        values[attr] = _get(ovs, json_name, str if attr in _STR_FIELDS else int, "ovs")
    if event_type == "upcall":
        values["upcall_ts"] = timestamp
    elif event_type == "action_execute":
        values["action"] = decode_action(ovs)
    elif event_type == "flow_lookup":
        ufid = _get(ovs, "ufid", list, "ovs")
        if ufid is not None:
            if len(ufid) != 4 or not all(isinstance(p, int) for p in ufid):
                raise ParseError(f"ovs.ufid should be four integers, got {ufid!r}")
            values["ufid"] = ufid_to_str(ufid)
        ofpflows = _get(ovs, "ofpflows", list, "ovs")
        values["ofpflows"] = tuple(str(f) for f in ofpflows) if ofpflows is not None else None
    packet = obj.get("packet")
    return OvsEvent(
        timestamp=timestamp,
        event_type=event_type,
        cpu=_get(common, "smp_id", int, "common"),
        pid=_get(task, "pid", int, "common.task"),
        comm=_get(task, "comm", str, "common.task"),
        probe=_get(probe, "symbol", str, "probe"),
        probe_type=_get(probe, "probe_type", str, "probe"),
        key=key_from_section(packet) if isinstance(packet, dict) else None,
        skb_track=_skb_track(obj),
        raw=obj,
        **values,
    )


def _encode_ovs(ev: OvsEvent) -> dict[str, Any]:
    known = OVS_FIELDS.get(ev.event_type)
    if known is None:  # a type this ovstop does not know: keep Retis's section as it came
        return dict(_section(ev.raw, "ovs"))
    ovs: dict[str, Any] = {"event_type": ev.event_type}
    for json_name, attr in known:
        value = getattr(ev, attr)
        if value is not None:
            ovs[json_name] = value
    if ev.action is not None:
        act = ev.action
        ovs["action"] = act.kind
        extra = {"port": act.port, "id": act.id, "zone_id": act.zone_id, "flags": act.flags}
        extra["reason"] = act.reason
        ovs.update({k: v for k, v in extra.items() if v is not None})
        if act.nat is not None:
            ovs["nat"] = {f.name: getattr(act.nat, f.name) for f in fields(Nat)}
    if ev.ufid is not None:
        ovs["ufid"] = ufid_from_str(ev.ufid)
    if ev.ofpflows is not None:
        ovs["ofpflows"] = list(ev.ofpflows)
    if ev.event_type == "flow_lookup":
        # Retis's reader requires both on flow_lookup; a kernel-side capture has not resolved them yet.
        ovs.setdefault("dpflow", "")
        ovs.setdefault("ofpflows", [])
    return ovs


def encode(ev: OvsEvent) -> dict[str, Any]:
    """The Retis event object for ``ev``: its ``raw`` sections with common/probe/ovs rebuilt from the fields."""
    obj = dict(ev.raw)
    common = dict(_section(ev.raw, "common"))
    common["timestamp"] = ev.timestamp
    if ev.cpu is not None:
        common["smp_id"] = ev.cpu
    if ev.pid is not None or ev.comm is not None:
        task = dict(_section(common, "task"))
        task.update({k: v for k, v in (("pid", ev.pid), ("comm", ev.comm)) if v is not None})
        task.setdefault("tgid", ev.pid)
        common["task"] = task
    obj["common"] = common
    if ev.probe is not None or ev.probe_type is not None:
        name = "userspace" if "userspace" in ev.raw or ev.probe_type == "usdt" else "kernel"
        probe = dict(_section(ev.raw, name))
        probe.update({k: v for k, v in (("symbol", ev.probe), ("probe_type", ev.probe_type)) if v is not None})
        obj[name] = probe
    obj["ovs"] = _encode_ovs(ev)
    return obj
