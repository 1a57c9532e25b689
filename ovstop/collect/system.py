"""The switch's identity from the Open_vSwitch table: version, datapath types, system id."""

from __future__ import annotations

from collections.abc import Iterator

from ovstop.collect.base import Sources, Tables
from ovstop.errors import SourceError
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of

INFO = MetricSpec(
    "ovs_vswitchd_info",
    Kind.INFO,
    "Open vSwitch identity (value is always 1).",
    ("system", "info"),
    ("version", "db_version", "datapath_types", "system_id", "hostname"),
)


class SystemCollector:
    """One info series describing the switch."""

    name = "system"
    source = "ovsdb"
    specs = (INFO,)

    def collect(self, sources: Sources, tables: Tables) -> Iterator[Sample]:
        if sources.ovsdb is None:
            raise SourceError("no OVSDB connection configured")
        for row in sources.ovsdb.rows("Open_vSwitch"):
            ext = row.get("external_ids") or {}
            info = {
                "version": row.get("ovs_version") or "",
                "db_version": row.get("db_version") or "",
                "datapath_types": ",".join(sorted(row.get("datapath_types") or ())),
                "system_id": ext.get("system-id", ""),
                "hostname": ext.get("hostname", ""),
            }
            revalidate = (row.get("other_config") or {}).get("max-revalidator", "")
            tables.rows["system"] = [{**info, "max_revalidator_ms": int(revalidate) if revalidate.isdigit() else None}]
            yield Sample(INFO, labels_of(**info), 1.0)
