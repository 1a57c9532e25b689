"""The Bridge -> Port -> Interface join of the OVSDB replica, shared by the interface, tunnel and
bridge collectors: made once per change of the replica, not once per collector and round."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ovstop.collect.base import Sources
from ovstop.errors import SourceError
from ovstop.sources.ovsdb_counters import Counters

if TYPE_CHECKING:
    from ovstop.sources.ovsdb import OvsdbSource

TUNNEL_TYPES = frozenset(
    {"geneve", "vxlan", "gre", "ip6gre", "erspan", "ip6erspan", "stt", "lisp", "gtpu", "bareudp", "srv6"}
)


@dataclass(frozen=True)
class Attachment:
    """One interface with the port and bridge it belongs to (bridge and port empty when orphaned)."""

    bridge: dict[str, Any]
    port: dict[str, Any]
    interface: dict[str, Any]

    @property
    def bridge_name(self) -> str:
        return str(self.bridge.get("name", ""))

    @property
    def name(self) -> str:
        return str(self.interface.get("name", ""))

    @property
    def is_tunnel(self) -> bool:
        return self.interface.get("type", "") in TUNNEL_TYPES

    def external_ids(self) -> tuple[dict[str, str], ...]:
        """Interface, then Port, then Bridge external_ids: the lookup order for extra labels."""
        return tuple(x.get("external_ids") or {} for x in (self.interface, self.port, self.bridge))


class Join(list[Attachment]):
    """Every interface with its port and bridge, and what collectors derive from the join alone, made once
    per join (that is, once per change of the replica), not once per collector and statistics update."""

    @cached_property
    def interface_uuids(self) -> list[str]:
        """Each attachment's interface uuid, in the join's order."""
        return [att.interface["_uuid"] for att in self]

    @cached_property
    def tunnels(self) -> list[Attachment]:
        return [att for att in self if att.is_tunnel]

    @cached_property
    def bridges(self) -> dict[str, tuple[dict[str, Any], list[str]]]:
        """Bridge name -> (its row, its interfaces' uuids), in name order."""
        members: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for att in self:
            if name := att.bridge_name:
                members.setdefault(name, (att.bridge, []))[1].append(att.interface["_uuid"])
        return dict(sorted(members.items()))


_NONE: dict[str, Any] = {}
"""The bridge and port of an orphaned interface: the same (empty) dict every join, as an unchanged row is."""

_joins: weakref.WeakKeyDictionary[OvsdbSource, tuple[tuple[int, int], Join]] = weakref.WeakKeyDictionary()
"""Replica -> (its generation, its join): the last join of each replica, gone with the replica."""


def _replica(sources: Sources) -> OvsdbSource:
    if sources.ovsdb is None:
        raise SourceError("no OVSDB connection configured")
    return sources.ovsdb


def attachments(sources: Sources) -> Join:
    """Every interface of the switch, joined to its port and bridge; read it, do not modify it.

    The very same list while the replica is unchanged (see ``OvsdbSource.generation``): a collector whose
    only input it is may then return its last round's samples as they are.
    """
    db = _replica(sources)
    generation = db.generation
    known = _joins.get(db)
    if known is None or known[0] != generation:
        known = _joins[db] = (generation, _join(db))
    return known[1]


NO_COUNTERS: Mapping[str, int] = MappingProxyType({})
"""The statistics of an interface the switch reports none for."""


def interface_statistics(sources: Sources) -> Mapping[str, Counters]:
    """Interface uuid -> its ``statistics`` map: a new mapping (and a new map for each interface whose
    statistics moved) after an update, else the same objects. Not part of the join, which they would
    otherwise make anew every few seconds on a busy switch."""
    return _replica(sources).counters("Interface")


def _join(db: OvsdbSource) -> Join:
    interfaces = {r["_uuid"]: r for r in db.rows("Interface")}
    ports = {r["_uuid"]: r for r in db.rows("Port")}
    out = Join()
    placed: set[str] = set()
    for bridge in sorted(db.rows("Bridge"), key=lambda b: b.get("name", "")):
        for port_uuid in bridge.get("ports") or ():
            port = ports.get(port_uuid)
            if port is None:
                continue
            for iface_uuid in port.get("interfaces") or ():
                iface = interfaces.get(iface_uuid)
                if iface is not None:
                    placed.add(iface_uuid)
                    out.append(Attachment(bridge, port, iface))
    out.extend(Attachment(_NONE, _NONE, i) for u, i in interfaces.items() if u not in placed)
    return out
