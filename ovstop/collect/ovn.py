"""OVN control plane: logical topology from Northbound, chassis health and bindings from Southbound.

**When a chassis is up.** ``ovn_chassis_up`` is 1 only when all of these hold:

* the chassis is in SB's Chassis table (a chassis seen before and now gone is kept, with 0 and the
  reason ``removed from SB``; at most :data:`MAX_REMEMBERED` of them);
* an ovn-controller registered it: a Chassis_Private row names it (a crashed controller's rows stay,
  so this alone proves little);
* its ovn-controller keeps up: Chassis_Private.nb_cfg has reached SB_Global.nb_cfg, or has been behind
  for less than ``lag_grace`` seconds. (CMSs such as Neutron bump nb_cfg periodically exactly so that a
  dead controller falls behind; ``ovn_chassis_nb_cfg_lag`` exports the gap itself);
* for this host's own chassis (Open_vSwitch ``external_ids:system-id``): the local ovn-controller
  answers ``connection-status`` on its control socket with ``connected`` — the SB connection status
  (``ovn_controller_sb_connected``); a stopped controller is down on the next round.

Series per chassis are bounded by the chassis count; per-tenant series by the label map's value cap;
per-datapath counts go only to the ``ovn_datapaths`` table, not to Prometheus.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from ovstop.collect.base import Sources, Tables
from ovstop.model.labels import LabelMap
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.sources.ovn import OvnLink

MAX_REMEMBERED = 1024
LOGICAL_SWITCHES = "ovn_logical_switches"
LOGICAL_ROUTERS = "ovn_logical_routers"
LOGICAL_SWITCH_PORTS = "ovn_logical_switch_ports"
"""Names the chassis pane reads (their specs carry tenant labels, so they are built per collector)."""
NB_SOURCE = "ovn_nb"
SB_SOURCE = "ovn_sb"


def _spec(name: str, kind: Kind, doc: str, path: tuple[str, ...], labels: tuple[str, ...] = ()) -> MetricSpec:
    return MetricSpec(name, kind, doc, ("ovn", *path), labels)


def _port_type(raw: Any) -> str:
    return str(raw) if raw else "vif"


class OvnNorthboundCollector:
    """Counts of logical switches, routers and their ports, in total and per tenant."""

    name = "ovn_nb"
    source = NB_SOURCE

    def __init__(self, link: OvnLink, label_map: LabelMap | None = None) -> None:
        self.link = link
        self.label_map = label_map or LabelMap()
        tenant = self.label_map.names
        p = ("logical",)
        self.switches = _spec(LOGICAL_SWITCHES, Kind.GAUGE, "Logical switches in NB.", (*p, "switches"))
        self.routers = _spec(LOGICAL_ROUTERS, Kind.GAUGE, "Logical routers in NB.", (*p, "routers"))
        self.switch_ports = _spec(
            LOGICAL_SWITCH_PORTS,
            Kind.GAUGE,
            "Logical switch ports by type (vif for a plain VM/container port).",
            (*p, "switch_ports"),
            ("type",),
        )
        self.router_ports = _spec(
            "ovn_logical_router_ports", Kind.GAUGE, "Logical router ports in NB.", (*p, "router_ports")
        )
        self.hv_lag = _spec(
            "ovn_nb_hv_cfg_lag",
            Kind.GAUGE,
            "NB_Global nb_cfg minus hv_cfg: config generations the slowest chassis is behind.",
            ("nb", "hv_cfg_lag"),
        )
        self.tenant_switches = _spec(
            "ovn_tenant_logical_switches",
            Kind.GAUGE,
            "Logical switches per tenant.",
            ("tenant", "logical_switches"),
            tenant,
        )
        self.tenant_ports = _spec(
            "ovn_tenant_logical_switch_ports",
            Kind.GAUGE,
            "Logical switch ports per tenant.",
            ("tenant", "logical_switch_ports"),
            tenant,
        )
        self.specs = (
            self.switches,
            self.routers,
            self.switch_ports,
            self.router_ports,
            self.hv_lag,
            *((self.tenant_switches, self.tenant_ports) if tenant else ()),
        )

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        nb = self.link.northbound(sources.ovsdb)
        switches = nb.rows("Logical_Switch")
        lsps = nb.rows("Logical_Switch_Port")
        yield Sample(self.switches, (), float(len(switches)))
        yield Sample(self.routers, (), float(len(nb.rows("Logical_Router"))))
        yield Sample(self.router_ports, (), float(len(nb.rows("Logical_Router_Port"))))
        for ptype, n in sorted(Counter(_port_type(p.get("type")) for p in lsps).items()):
            yield Sample(self.switch_ports, labels_of(type=ptype), float(n))
        glob = nb.rows("NB_Global")
        if glob and glob[0].get("hv_cfg") is not None:
            yield Sample(self.hv_lag, (), float(glob[0]["nb_cfg"] - glob[0]["hv_cfg"]))
        if self.label_map.names:
            per_switch: Counter[tuple[tuple[str, str], ...]] = Counter()
            per_port: Counter[tuple[tuple[str, str], ...]] = Counter()
            for ls in switches:
                key = labels_of(**tenant_of(self.label_map, ls))
                per_switch[key] += 1
                per_port[key] += len(ls.get("ports") or ())
            for key, n in per_switch.items():
                yield Sample(self.tenant_switches, key, float(n))
                yield Sample(self.tenant_ports, key, float(per_port[key]))


def tenant_of(label_map: LabelMap, logical_switch: Mapping[str, Any]) -> dict[str, str]:
    """A logical switch's tenant labels: rules on its name, then its external_ids."""
    return label_map.labels_for(
        logical_switch=str(logical_switch.get("name") or ""), external_ids=(logical_switch.get("external_ids") or {},)
    )


class OvnSouthboundCollector:
    """Chassis health, encapsulation and bindings; datapath/tenant binding counts; tunnel -> chassis."""

    name = "ovn_sb"
    source = SB_SOURCE

    def __init__(self, link: OvnLink, label_map: LabelMap | None = None, lag_grace: float = 30.0) -> None:
        self.link = link
        self.label_map = label_map or LabelMap()
        self.lag_grace = lag_grace
        self._lag_since: dict[str, float] = {}
        self._seen: dict[str, dict[str, Any]] = {}
        c = ch = ("chassis",)
        self.count = _spec("ovn_chassis_registered", Kind.GAUGE, "Chassis registered in SB.", (*c, "count"))
        self.up = _spec(
            "ovn_chassis_up",
            Kind.GAUGE,
            "Chassis up (1): in SB, registered by an ovn-controller that keeps up with nb_cfg "
            "(and, for the local chassis, connected to SB).",
            (*c, "up"),
            ch,
        )
        self.info = _spec(
            "ovn_chassis_info",
            Kind.INFO,
            "Chassis identity and encapsulation (value is always 1).",
            (*c, "info"),
            ("chassis", "hostname", "encap_type", "encap_ip"),
        )
        self.bindings = _spec(
            "ovn_chassis_port_bindings", Kind.GAUGE, "Logical ports bound to the chassis.", (*c, "port_bindings"), ch
        )
        self.lag = _spec(
            "ovn_chassis_nb_cfg_lag",
            Kind.GAUGE,
            "SB_Global nb_cfg minus the chassis' Chassis_Private nb_cfg.",
            (*c, "nb_cfg_lag"),
            ch,
        )
        self.sb_connected = _spec(
            "ovn_controller_sb_connected",
            Kind.GAUGE,
            "The local ovn-controller's SB connection: 1 connected, 0 not or not answering.",
            ("controller", "sb_connected"),
            ch,
        )
        self.datapaths = _spec(
            "ovn_datapaths", Kind.GAUGE, "Datapaths (logical switches and routers) in SB.", ("datapaths",)
        )
        self.port_bindings = _spec(
            "ovn_port_bindings",
            Kind.GAUGE,
            "Port bindings by type (vif for plain ports).",
            ("port_bindings",),
            ("type",),
        )
        self.tenant_bindings = _spec(
            "ovn_tenant_port_bindings",
            Kind.GAUGE,
            "Port bindings bound to a chassis, per tenant.",
            ("tenant", "port_bindings"),
            self.label_map.names,
        )
        self.tunnel = _spec(
            "ovn_tunnel_chassis_info",
            Kind.INFO,
            "The OVN chassis behind a tunnel's remote_ip (value is always 1).",
            ("tunnel", "chassis"),
            ("bridge", "tunnel", "remote_ip", "chassis"),
        )
        self.specs = (
            self.count,
            self.up,
            self.info,
            self.bindings,
            self.lag,
            self.sb_connected,
            self.datapaths,
            self.port_bindings,
            *((self.tenant_bindings,) if self.label_map.names else ()),
            self.tunnel,
        )

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        sb = self.link.southbound(sources.ovsdb)
        local = self.link.locations.system_id
        now = time.monotonic()
        encaps = {r["_uuid"]: r for r in sb.rows("Encap")}
        private = {r["name"]: r for r in sb.rows("Chassis_Private")}
        glob = sb.rows("SB_Global")
        sb_cfg = int(glob[0].get("nb_cfg") or 0) if glob else 0
        chassis_by_uuid = {r["_uuid"]: r for r in sb.rows("Chassis")}
        pbs = sb.rows("Port_Binding")
        bound = Counter(pb["chassis"] for pb in pbs if pb.get("chassis"))
        rows: list[dict[str, Any]] = []
        current: set[str] = set()
        for uuid, ch in sorted(chassis_by_uuid.items(), key=lambda kv: kv[1]["name"]):
            name = ch["name"]
            current.add(name)
            encap = next((encaps[u] for u in ch.get("encaps") or () if u in encaps), {})
            row = {
                "chassis": name,
                "hostname": ch.get("hostname") or "",
                "encap_type": encap.get("type", ""),
                "encap_ip": encap.get("ip", ""),
                "port_bindings": bound[uuid],
                "local": name == local,
                "nb_cfg_lag": None,
                "sb_connected": None,
            }
            ident = labels_of(chassis=name)
            yield Sample(
                self.info,
                labels_of(
                    chassis=name, hostname=row["hostname"], encap_type=row["encap_type"], encap_ip=row["encap_ip"]
                ),
                1.0,
            )
            yield Sample(self.bindings, ident, float(bound[uuid]))
            up, status = self._health(name, private.get(name), sb_cfg, now, row)
            if row["nb_cfg_lag"] is not None:
                yield Sample(self.lag, ident, float(row["nb_cfg_lag"]))
            if row["sb_connected"] is not None:
                yield Sample(self.sb_connected, ident, 1.0 if row["sb_connected"] else 0.0)
            yield Sample(self.up, ident, 1.0 if up else 0.0)
            row.update(up=up, status=status)
            rows.append(row)
            self._seen[name] = row
        for name in list(self._seen):
            if name not in current:
                gone = {**self._seen[name], "up": False, "status": "removed from SB", "port_bindings": 0}
                yield Sample(self.up, labels_of(chassis=name), 0.0)
                rows.append(gone)
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.pop(next(iter(self._seen)))
        yield Sample(self.count, (), float(len(current)))
        tables.rows["ovn_chassis"] = rows
        yield from self._bindings(sb, pbs, bound, chassis_by_uuid, tables)
        yield from self._tunnels(rows, tables)

    def _health(
        self, name: str, priv: Mapping[str, Any] | None, sb_cfg: int, now: float, row: dict[str, Any]
    ) -> tuple[bool, str]:
        """(up, why) per the module docstring; fills the row's nb_cfg_lag and sb_connected."""
        if name == self.link.locations.system_id:
            status = self.link.controller_status()
            row["sb_connected"] = status == "connected"
            if status is None:
                return False, "local ovn-controller not answering"
            if status != "connected":
                return False, f"local ovn-controller: {status}"
        if priv is None:
            return False, "no Chassis_Private (no ovn-controller registered)"
        lag = max(0, sb_cfg - int(priv.get("nb_cfg") or 0))
        row["nb_cfg_lag"] = lag
        if not lag:
            self._lag_since.pop(name, None)
            return True, "up"
        behind = now - self._lag_since.setdefault(name, now)
        if behind >= self.lag_grace:
            return False, f"nb_cfg {lag} behind for {behind:.0f}s"
        return True, f"nb_cfg {lag} behind"

    def _bindings(
        self,
        sb: Any,
        pbs: list[dict[str, Any]],
        bound: Counter[str],
        chassis_by_uuid: Mapping[str, Mapping[str, Any]],
        tables: Tables,
    ) -> Iterator[Sample]:
        datapaths = sb.rows("Datapath_Binding")
        yield Sample(self.datapaths, (), float(len(datapaths)))
        for ptype, n in sorted(Counter(_port_type(pb.get("type")) for pb in pbs).items()):
            yield Sample(self.port_bindings, labels_of(type=ptype), float(n))
        owners = self._nb_owners()
        dp_rows: dict[str, dict[str, Any]] = {}
        for dp in datapaths:
            ids = dp.get("external_ids") or {}
            kind = "router" if "logical-router" in ids else "switch"
            owner = owners.get(ids.get(f"logical-{kind}", ""), {"name": ids.get("name", ""), "external_ids": ids})
            dp_rows[dp["_uuid"]] = {
                "datapath": ids.get("name", ""),
                "kind": kind,
                "tunnel_key": dp.get("tunnel_key"),
                "ports": 0,
                "bound": 0,
                **tenant_of(self.label_map, owner),
            }
        per_tenant: Counter[tuple[tuple[str, str], ...]] = Counter()
        for pb in pbs:
            row = dp_rows.get(pb.get("datapath") or "")
            if row is None:
                continue
            row["ports"] += 1
            if pb.get("chassis") in chassis_by_uuid:
                row["bound"] += 1
                per_tenant[labels_of(**{k: row[k] for k in self.label_map.names})] += 1
        if self.label_map.names:
            for key, n in per_tenant.items():
                yield Sample(self.tenant_bindings, key, float(n))
        tables.rows["ovn_datapaths"] = sorted(dp_rows.values(), key=lambda r: (r["kind"], r["datapath"]))

    def _nb_owners(self) -> dict[str, dict[str, Any]]:
        """NB logical switches and routers by uuid when NB is open (their external_ids carry the tenant)."""
        nb = self.link.nb
        if nb is None or not nb.columns:
            return {}
        return {r["_uuid"]: r for table in ("Logical_Switch", "Logical_Router") for r in nb.rows(table)}

    def _tunnels(self, chassis_rows: list[dict[str, Any]], tables: Tables) -> Iterator[Sample]:
        """Name the chassis behind each tunnel (collected before this) by its remote_ip = an Encap ip."""
        by_ip = {
            r["encap_ip"]: r["chassis"] for r in chassis_rows if r.get("encap_ip") and r["status"] != "removed from SB"
        }
        self.link.chassis_by_ip = by_ip
        if "tunnels" not in tables.rows:
            return
        named: list[Mapping[str, Any]] = []
        for tunnel in tables.rows["tunnels"]:
            chassis = by_ip.get(tunnel.get("remote_ip", ""))
            named.append(tunnel if chassis is None else {**tunnel, "chassis": chassis})
            if chassis is None:
                continue
            yield Sample(
                self.tunnel,
                labels_of(
                    bridge=tunnel["bridge"], tunnel=tunnel["tunnel"], remote_ip=tunnel["remote_ip"], chassis=chassis
                ),
                1.0,
            )
        tables.rows["tunnels"] = named
