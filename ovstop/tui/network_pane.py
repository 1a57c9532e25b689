"""Pane 5: OVN chassis and the tunnels to them, for reading a multi-node deployment at a glance.

Chassis rows come from ``tables["ovn_chassis"]`` (OVN southbound), tunnel rows from ``tables["tunnels"]``
(OVSDB Interface rows of tunnel type, joined to the chassis whose encap IP is their remote_ip), with
traffic rates from the tunnel series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable, Static

from ovstop.collect.demand import Demand
from ovstop.collect.interface import traffic_name
from ovstop.collect.ovn import LOGICAL_ROUTERS, LOGICAL_SWITCH_PORTS, LOGICAL_SWITCHES
from ovstop.collect.tunnel import PREFIX as TUNNEL_PREFIX
from ovstop.model.store import Snapshot
from ovstop.tui.format import DASH, num
from ovstop.tui.tables import sync_rows
from ovstop.tui.view import Pane, ViewState

CHASSIS_COLUMNS = ("chassis", "hostname", "encap", "encap ip", "bindings", "nb_cfg lag", "status")
TUNNEL_COLUMNS = (
    "tunnel",
    "bridge",
    "type",
    "remote ip",
    "key",
    "chassis",
    "status",
    "rx pkt/s",
    "tx pkt/s",
    "rx packets",
    "tx packets",
    "errors",
)


def _status(up: bool | None, text: str) -> Text:
    """Up or DOWN, readable without colour (the theme colours the app, not the cells)."""
    return Text(f"● {text}" if up else f"○ DOWN {text}")


def chassis_rows(snap: Snapshot, view: ViewState) -> dict[str, tuple[Text, ...]]:
    rows: dict[str, tuple[Text, ...]] = {}
    for r in snap.tables.get("ovn_chassis", []):
        if not view.matches(str(r.get("chassis")), str(r.get("hostname")), str(r.get("encap_ip"))):
            continue
        lag = r.get("nb_cfg_lag")
        cells = (
            str(r.get("chassis") or DASH) + (" (this host)" if r.get("local") else ""),
            str(r.get("hostname") or DASH),
            str(r.get("encap_type") or DASH),
            str(r.get("encap_ip") or DASH),
            num(r.get("port_bindings")),
            DASH if lag is None else str(lag),
        )
        rows[str(r.get("chassis"))] = (*(Text(c) for c in cells), _status(r.get("up"), str(r.get("status") or "")))
    return rows


def tunnel_rows(snap: Snapshot, view: ViewState) -> dict[str, tuple[Text, ...]]:
    rows: dict[str, tuple[Text, ...]] = {}
    for r in snap.tables.get("tunnels", []):
        name = str(r.get("tunnel"))
        if not view.matches(name, str(r.get("remote_ip")), str(r.get("chassis") or "")):
            continue

        def rate(what: str, tunnel: str = name) -> str:
            return num(snap.rate_total(traffic_name(TUNNEL_PREFIX, what), tunnel=tunnel))

        errors = sum(int(r.get(k) or 0) for k in ("rx_errors", "tx_errors", "rx_dropped", "tx_dropped"))
        cells = (
            name,
            str(r.get("bridge") or DASH),
            str(r.get("type") or DASH),
            str(r.get("remote_ip") or DASH),
            str(r.get("key") or DASH),
            str(r.get("chassis") or DASH),
        )
        traffic = (
            rate("rx_packets"),
            rate("tx_packets"),
            num(r.get("rx_packets")),
            num(r.get("tx_packets")),
            str(errors),
        )
        rows[name] = (
            *(Text(c) for c in cells),
            _status(r.get("up"), str(r.get("status") or "")),
            *(Text(c) for c in traffic),
        )
    return rows


def ovn_summary(snap: Snapshot) -> str:
    sb = snap.health.get("ovn_sb")
    if sb is None or sb.off:
        reason = sb.reason if sb is not None else "not looked for"
        return f"OVN: off ({reason})"
    if not sb.up:
        return f"OVN southbound down: {sb.reason}"
    chassis: Sequence[Mapping[str, Any]] = snap.tables.get("ovn_chassis", [])
    up = sum(1 for r in chassis if r.get("up"))
    parts = [f"OVN: {len(chassis)} chassis, {up} up"]
    for name, label in (
        (LOGICAL_SWITCHES, "switches"),
        (LOGICAL_ROUTERS, "routers"),
        (LOGICAL_SWITCH_PORTS, "switch ports"),
    ):
        total = snap.total(name)
        if total is not None:
            parts.append(f"{num(total)} logical {label}")
    return ", ".join(parts)


class NetworkPane(Pane):
    """Chassis table over tunnel table, each keyed so only changed cells are redrawn."""

    title = "5 chassis & tunnels"
    needs = Demand.of("bridge", "interface", "tunnel", "ovn_nb", "ovn_sb")

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("", id="ovn-summary", classes="detail")
        yield DataTable(id="chassis-table", cursor_type="row", classes="main")
        yield Static("", id="tunnel-summary", classes="detail")
        yield DataTable(id="tunnel-table", cursor_type="row")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#chassis-table", DataTable).add_columns(*CHASSIS_COLUMNS)
        self.query_one("#tunnel-table", DataTable).add_columns(*TUNNEL_COLUMNS)

    def show(self, snap: Snapshot, view: ViewState) -> None:
        with self.app.batch_update():
            self.query_one("#ovn-summary", Static).update(Text(ovn_summary(snap)))
            sync_rows(self.query_one("#chassis-table", DataTable), chassis_rows(snap, view), grow=True)
            tunnels = tunnel_rows(snap, view)
            down = sum(1 for cells in tunnels.values() if cells[6].plain.startswith("○"))
            self.query_one("#tunnel-summary", Static).update(
                Text(f"tunnels: {len(tunnels)}, {down} down" if tunnels else "tunnels: none on this switch")
            )
            sync_rows(self.query_one("#tunnel-table", DataTable), tunnels, grow=True)
