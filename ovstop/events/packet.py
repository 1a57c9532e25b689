"""A flow-key summary of the packet an event carries (Retis ``packet`` section: base64 frame bytes).

Only the headers a datapath flow key is made of are read: Ethernet (with 802.1Q/802.1ad tags), IPv4/IPv6
addresses and protocol, TCP/UDP/SCTP ports, ICMP type/code. A truncated frame yields what could be read.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import struct
from dataclasses import dataclass
from typing import Any

_ETH_VLAN = (0x8100, 0x88A8)
_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_ARP = 0x0806
_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
_PORT_PROTOS = (6, 17, 132)
_ICMP_PROTOS = (1, 58)


@dataclass(frozen=True)
class PacketKey:
    """The flow-key fields of one packet; fields the frame did not reach are None."""

    eth_src: str | None = None
    eth_dst: str | None = None
    eth_type: int | None = None
    vlan: int | None = None
    ip_src: str | None = None
    ip_dst: str | None = None
    ip_proto: int | None = None
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None

    def __str__(self) -> str:
        vlan = f"vlan {self.vlan} " if self.vlan is not None else ""
        if self.ip_src is None:
            name = "arp" if self.eth_type == _ETH_ARP else f"eth_type 0x{self.eth_type or 0:04x}"
            return f"{vlan}{name} {self.eth_src} > {self.eth_dst}"
        proto = _PROTO_NAMES.get(self.ip_proto or 0, f"proto {self.ip_proto}")
        if self.sport is not None:
            return f"{vlan}{proto} {_hostport(self.ip_src, self.sport)} > {_hostport(self.ip_dst, self.dport)}"
        text = f"{vlan}{proto} {self.ip_src} > {self.ip_dst}"
        if self.icmp_type is not None:
            text += f" type {self.icmp_type} code {self.icmp_code}"
        return text


def _hostport(addr: str | None, port: int | None) -> str:
    return f"[{addr}]:{port}" if addr and ":" in addr else f"{addr}:{port}"


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def key_from_frame(frame: bytes) -> PacketKey | None:
    """Parse an Ethernet frame; None when it is shorter than an Ethernet header."""
    if len(frame) < 14:
        return None
    fields: dict[str, Any] = {"eth_dst": _mac(frame[0:6]), "eth_src": _mac(frame[6:12])}
    (eth_type,) = struct.unpack_from("!H", frame, 12)
    off = 14
    while eth_type in _ETH_VLAN and len(frame) >= off + 4:
        tci, eth_type = struct.unpack_from("!HH", frame, off)
        fields.setdefault("vlan", tci & 0x0FFF)
        off += 4
    fields["eth_type"] = eth_type
    l4 = None
    if eth_type == _ETH_IPV4 and len(frame) >= off + 20:
        ihl = (frame[off] & 0x0F) * 4
        fields["ip_proto"] = frame[off + 9]
        fields["ip_src"] = str(ipaddress.IPv4Address(frame[off + 12 : off + 16]))
        fields["ip_dst"] = str(ipaddress.IPv4Address(frame[off + 16 : off + 20]))
        l4 = off + ihl
    elif eth_type == _ETH_IPV6 and len(frame) >= off + 40:
        fields["ip_proto"] = frame[off + 6]
        fields["ip_src"] = str(ipaddress.IPv6Address(frame[off + 8 : off + 24]))
        fields["ip_dst"] = str(ipaddress.IPv6Address(frame[off + 24 : off + 40]))
        l4 = off + 40
    if l4 is not None:
        proto = fields["ip_proto"]
        if proto in _PORT_PROTOS and len(frame) >= l4 + 4:
            fields["sport"], fields["dport"] = struct.unpack_from("!HH", frame, l4)
        elif proto in _ICMP_PROTOS and len(frame) >= l4 + 2:
            fields["icmp_type"], fields["icmp_code"] = frame[l4], frame[l4 + 1]
    return PacketKey(**fields)


def key_from_section(packet: dict[str, Any]) -> PacketKey | None:
    """The key of a Retis ``packet`` section (``data`` is the base64 frame); None when unreadable."""
    data = packet.get("data")
    if not isinstance(data, str):
        return None
    try:
        return key_from_frame(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None
