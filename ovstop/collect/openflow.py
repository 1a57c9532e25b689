"""Per-bridge flow counts and per-table activity from OpenFlow table stats (O(tables), not O(rules)).

Only tables holding rules or having seen lookups are exported, which bounds the series to the tables a
pipeline uses (OVS has 254; OVN uses about 80) instead of every table of every bridge. Table names come
from OVSDB (``Bridge.flow_tables`` -> ``Flow_Table.name``) when the replica monitors them
(:data:`FLOW_TABLE_COLUMNS`); otherwise ``table_name`` is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ovstop.collect.base import Sources, Tables
from ovstop.errors import SourceError
from ovstop.model.labels import LabelMap
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.sources import discovery
from ovstop.sources.openflow import OpenFlowClient

FLOW_TABLE_COLUMNS: dict[str, tuple[str, ...]] = {"Bridge": ("flow_tables",), "Flow_Table": ("name",)}
"""The OVSDB columns this collector reads for table names, to merge into the replica's table list."""


def rundir_of(sources: Sources) -> Path:
    """Where the bridges' ``.mgmt`` sockets are: next to ovs-vswitchd's control socket when known."""
    unixctl = sources.unixctl
    if unixctl is not None and (unixctl.connected_path or unixctl.has("version")):
        return Path(unixctl.connected_path).parent
    return discovery.rundir()


def table_names(sources: Sources) -> dict[str, dict[int, str]]:
    """bridge name -> table id -> configured name, for the tables that have one."""
    db = sources.ovsdb
    if db is None or "Flow_Table" not in db.columns:
        return {}
    names = {r["_uuid"]: r.get("name") for r in db.rows("Flow_Table")}
    out: dict[str, dict[int, str]] = {}
    for bridge in db.rows("Bridge"):
        tables = bridge.get("flow_tables") or {}
        out[bridge["name"]] = {int(tid): str(names[u]) for tid, u in tables.items() if names.get(u)}
    return out


class OpenFlowCollector:
    """Flow counts and table lookups/matches of every bridge, one OpenFlow connection per bridge."""

    name = "openflow"
    source = "openflow"

    def __init__(
        self, label_map: LabelMap | None = None, timeout: float = 2.0, rundir: Callable[[Sources], Path] = rundir_of
    ) -> None:
        self.label_map = label_map or LabelMap()
        self.timeout = timeout
        self.rundir = rundir
        self._clients: dict[Path, OpenFlowClient] = {}
        extra = self.label_map.names
        table = ("bridge", "table_id", "table_name")
        p = ("openflow",)
        self.n_flows = MetricSpec(
            "ovs_vswitchd_bridge_n_flows",
            Kind.GAUGE,
            "OpenFlow rules installed on the bridge (sum of table active counts).",
            ("bridge", "n_flows"),
            ("bridge", *extra),
        )
        self.active = MetricSpec(
            "ovs_vswitchd_flow_table_active_flows",
            Kind.GAUGE,
            "OpenFlow rules in the table (tables with rules or lookups only).",
            (*p, "active_flows"),
            table,
        )
        self.lookups = MetricSpec(
            "ovs_vswitchd_flow_table_lookups_total",
            Kind.COUNTER,
            "Packets looked up in the table.",
            (*p, "lookups"),
            table,
        )
        self.matches = MetricSpec(
            "ovs_vswitchd_flow_table_matches_total",
            Kind.COUNTER,
            "Packets that matched a rule in the table.",
            (*p, "matches"),
            table,
        )
        self.specs = (self.n_flows, self.active, self.lookups, self.matches)

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        db = sources.ovsdb
        if db is None:
            raise SourceError("no OVSDB connection configured (needed for the bridge list)")
        bridges = sorted(db.rows("Bridge"), key=lambda b: b.get("name", ""))
        rundir = self.rundir(sources)
        names = table_names(sources)
        rows: list[dict[str, Any]] = []
        wanted: set[Path] = set()
        for bridge in bridges:
            name = str(bridge.get("name", ""))
            path = rundir / f"{name}.mgmt"
            wanted.add(path)
            client = self._clients.get(path)
            if client is None:
                client = self._clients[path] = OpenFlowClient(path, self.timeout)
            stats = client.table_stats()
            extra = self.label_map.labels_for(bridge=name, external_ids=(bridge.get("external_ids") or {},))
            yield Sample(self.n_flows, labels_of(bridge=name, **extra), float(sum(t.active_count for t in stats)))
            for t in stats:
                if not (t.active_count or t.lookup_count):
                    continue
                tname = names.get(name, {}).get(t.table_id, "")
                ident = labels_of(bridge=name, table_id=t.table_id, table_name=tname)
                yield Sample(self.active, ident, float(t.active_count))
                yield Sample(self.lookups, ident, float(t.lookup_count))
                yield Sample(self.matches, ident, float(t.matched_count))
                rows.append(
                    {
                        "bridge": name,
                        "table_id": t.table_id,
                        "table_name": tname,
                        "active_flows": t.active_count,
                        "lookups": t.lookup_count,
                        "matches": t.matched_count,
                    }
                )
        for path in set(self._clients) - wanted:
            self._clients.pop(path).close()
        tables.rows["flow_tables"] = rows

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
