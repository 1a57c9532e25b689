"""Finding and holding the OVN databases: Northbound and Southbound IDL replicas, and the local
ovn-controller's control socket.

Southbound: ``--ovn-sb``, else the local ovn-controller's ``external_ids:ovn-remote`` in the
Open_vSwitch table, else ``<OVN rundir>/ovnsb_db.sock`` when it exists. Northbound: ``--ovn-nb``, else
``<OVN rundir>/ovnnb_db.sock`` when it exists (a central node); otherwise there is no NB and only the
Southbound view is shown. An ``ovn-remote`` listing several servers (a clustered SB) uses the first.
Connections open lazily and are retried every round until they succeed, so OVN started after ovstop
is picked up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ovstop.errors import SourceError, SourceOff
from ovstop.sources import discovery
from ovstop.sources.ovsdb import OvsdbSource
from ovstop.sources.unixctl import UnixctlClient

DEFAULT_OVN_RUNDIR = "/var/run/ovn"

NB_TABLES: dict[str, tuple[str, ...]] = {
    "NB_Global": ("nb_cfg", "sb_cfg", "hv_cfg"),
    "Logical_Switch": ("name", "ports", "external_ids"),
    "Logical_Switch_Port": ("name", "type", "up", "external_ids"),
    "Logical_Router": ("name", "ports", "external_ids"),
    "Logical_Router_Port": ("name",),
}
SB_TABLES: dict[str, tuple[str, ...]] = {
    "SB_Global": ("nb_cfg",),
    "Chassis": ("name", "hostname", "encaps"),
    "Chassis_Private": ("name", "chassis", "nb_cfg", "nb_cfg_timestamp"),
    "Encap": ("type", "ip", "chassis_name"),
    "Port_Binding": ("logical_port", "type", "datapath", "chassis", "up"),
    "Datapath_Binding": ("tunnel_key", "external_ids"),
}

# What ovn-detrace reads, replicated only once an explain asks for it: Logical_Flow is the largest table of
# the southbound database, and nothing else in ovstop needs it.
DETRACE_SB: dict[str, tuple[str, ...]] = {
    "Logical_Flow": (
        "logical_datapath",
        "logical_dp_group",
        "pipeline",
        "table_id",
        "match",
        "actions",
        "external_ids",
    ),
    "Logical_DP_Group": ("datapaths",),
    "Datapath_Binding": ("external_ids",),
}
DETRACE_NB: dict[str, tuple[str, ...]] = {
    "ACL": ("direction", "priority", "match", "action", "name"),
    "Load_Balancer": ("name", "vips"),
    "Logical_Router_Policy": ("priority", "match", "action"),
    "Logical_Switch_Port": ("name",),
    "Logical_Router_Port": ("name",),
    "Logical_Router_Static_Route": ("ip_prefix", "nexthop"),
    "NAT": ("type", "external_ip", "logical_ip"),
    "Logical_Switch": ("name",),
    "Logical_Router": ("name",),
}


def ovn_rundir() -> Path:
    return Path(os.environ.get("OVN_RUNDIR") or DEFAULT_OVN_RUNDIR)


@dataclass
class OvnLocations:
    """Where OVN was found; ``sb``/``nb`` are OVSDB remotes or None, ``system_id`` this host's chassis."""

    sb: str | None
    nb: str | None
    system_id: str = ""


def locate(
    ovs: OvsdbSource | None, nb: str | None = None, sb: str | None = None, rundir: Path | None = None
) -> OvnLocations:
    """Resolve the NB/SB remotes as described in the module docstring."""
    base = rundir or ovn_rundir()
    ids: dict[str, str] = {}
    if ovs is not None and ovs.columns:
        rows = ovs.rows("Open_vSwitch")
        ids = (rows[0].get("external_ids") or {}) if rows else {}
    remote = ids.get("ovn-remote", "").split(",")[0].strip()
    local_sb = base / "ovnsb_db.sock"
    local_nb = base / "ovnnb_db.sock"
    sb = sb or remote or (f"unix:{local_sb}" if local_sb.exists() else None)
    nb = nb or (f"unix:{local_nb}" if local_nb.exists() else None)
    return OvnLocations(sb, nb, ids.get("system-id", ""))


class OvnLink:
    """The OVN connections a run uses, opened on first use and shared by the NB and SB collectors."""

    def __init__(
        self, nb: str | None = None, sb: str | None = None, rundir: Path | None = None, timeout: float = 3.0
    ) -> None:
        self.given_nb = nb
        self.given_sb = sb
        self.rundir = rundir
        self.timeout = timeout
        self.locations = OvnLocations(None, None)
        self.nb: OvsdbSource | None = None
        self.sb: OvsdbSource | None = None
        self._detrace_sb: OvsdbSource | None = None
        self._detrace_nb: OvsdbSource | None = None
        self.controller = UnixctlClient(self._controller_ctl, timeout=timeout)
        self._connected: set[str] = set()
        self.chassis_by_ip: dict[str, str] = {}
        """Encap IP -> chassis name as of the last SB round; the tunnel collector labels tunnels with it."""

    def _controller_ctl(self) -> Path:
        return discovery.daemon_ctl_path("ovn-controller", self.rundir or ovn_rundir())

    def resolve(self, ovs: OvsdbSource | None) -> OvnLocations:
        """Find NB/SB again until both are open (cheap: reads the local replica and two paths)."""
        if self.nb is None or self.sb is None:
            self.locations = locate(ovs, self.given_nb, self.given_sb, self.rundir)
        return self.locations

    def southbound(self, ovs: OvsdbSource | None) -> OvsdbSource:
        """The refreshed SB replica; SourceError ("not configured" or the connection's error) otherwise."""
        if self.sb is None:
            remote = self.resolve(ovs).sb
            if remote is None:
                raise SourceOff("not configured (no --ovn-sb, no external_ids:ovn-remote, no local SB socket)")
            self.sb = OvsdbSource(remote, "OVN_Southbound", SB_TABLES, timeout=self.timeout)
        return self._refreshed(self.sb, "sb")

    def northbound(self, ovs: OvsdbSource | None) -> OvsdbSource:
        if self.nb is None:
            remote = self.resolve(ovs).nb
            if remote is None:
                raise SourceOff("not configured (no --ovn-nb and no local NB socket; SB view only)")
            self.nb = OvsdbSource(remote, "OVN_Northbound", NB_TABLES, timeout=self.timeout)
        return self._refreshed(self.nb, "nb")

    def _refreshed(self, db: OvsdbSource, which: str) -> OvsdbSource:
        try:
            db.refresh()
        except SourceError:
            if which not in self._connected:  # never connected: forget it so the next round looks again
                db.close()
                setattr(self, which, None)
            raise
        self._connected.add(which)
        return db

    def detrace_replicas(self, ovs: OvsdbSource | None) -> tuple[OvsdbSource, OvsdbSource | None]:
        """Refreshed replicas of the tables ovn-detrace reads (opened on first use; NB None when absent)."""
        where = self.resolve(ovs)
        if where.sb is None:
            raise SourceOff("no OVN southbound database here")
        if self._detrace_sb is None:
            self._detrace_sb = OvsdbSource(where.sb, "OVN_Southbound", DETRACE_SB, timeout=self.timeout)
        self._detrace_sb.refresh()
        if where.nb is not None and self._detrace_nb is None:
            self._detrace_nb = OvsdbSource(where.nb, "OVN_Northbound", DETRACE_NB, timeout=self.timeout)
        if self._detrace_nb is not None:
            self._detrace_nb.refresh()
        return self._detrace_sb, self._detrace_nb

    def controller_status(self) -> str | None:
        """The local ovn-controller's ``connection-status`` (``connected`` …), None when it does not answer."""
        try:
            return self.controller.call("connection-status").strip()
        except SourceError:
            return None

    def close(self) -> None:
        for db in (self.nb, self.sb, self._detrace_nb, self._detrace_sb):
            if db is not None:
                db.close()
        self.nb = self.sb = self._detrace_nb = self._detrace_sb = None
        self.controller.close()
