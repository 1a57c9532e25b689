"""``ovstop fleet``: the fleet table (one row per hypervisor, from Prometheus), sortable and filterable like
the flow pane; Enter ends the app with the host's address so the CLI can attach the TUI to it."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Input, Static

from ovstop.errors import OvstopError
from ovstop.remote.fleet import SORTS, Fleet, HostRow, arrange
from ovstop.tui.format import DASH, num, pct

COLUMNS = (
    ("host", "instance"),
    ("up", "up"),
    ("hit", "hit_ratio"),
    ("upcalls/s", "upcalls"),
    ("lost/s", "lost"),
    ("flows/limit", "flows"),
    ("PMD busy", "pmd_busy"),
    ("drops/s", "drops"),
    ("OVN SB", "ovn_sb"),
)


def cells(row: HostRow) -> tuple[str, ...]:
    """The table cells of one host; an exporter that is down shows only that."""
    if not row.up:
        return (row.instance, "DOWN", *(DASH,) * (len(COLUMNS) - 2))
    g = row.get
    flows, limit = g("flows"), g("flow_limit")
    sb = g("ovn_sb")
    return (
        row.instance,
        "up",
        pct(g("hit_ratio"), 1.0) if g("hit_ratio") is not None else DASH,
        num(g("upcalls")),
        num(g("lost")),
        f"{num(flows)}/{num(limit)}" if flows is not None and limit is not None else num(flows),
        pct(g("pmd_busy"), 1.0) if g("pmd_busy") is not None else DASH,
        num(g("drops")),
        DASH if sb is None else ("connected" if sb == 1.0 else "DISCONNECTED"),
    )


class FleetApp(App[str]):
    """Refreshes every ``interval`` seconds (the queries run off the UI thread); returns the address chosen."""

    TITLE = "ovstop fleet"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("slash", "filter", "Filter hosts"),
        Binding("s", "sort", "Sort by the next column"),
        Binding("less_than_sign", "order(False)", "Ascending", show=False),
        Binding("greater_than_sign", "order(True)", "Descending", show=False),
        Binding("space", "refresh", "Refresh now", show=False),
        Binding("enter", "attach", "Attach to the host"),
    ]

    def __init__(self, fleet: Fleet, interval: float = 5.0, source: str = "") -> None:
        super().__init__()
        self.fleet = fleet
        self.interval = interval
        self.source = source
        self.rows: list[HostRow] = []
        self.shown: list[HostRow] = []
        self.sort = "instance"
        self.descending = False
        self.needle = ""
        self.error = ""
        self.refreshed_at: float | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-status")
        yield DataTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter hosts (enter keeps it, escape clears)", id="fleet-filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#fleet-table", DataTable).add_columns(*(title for title, _ in COLUMNS))
        self.query_one("#fleet-filter", Input).display = False
        self.run_worker(self._poll(), exclusive=True)

    async def _poll(self) -> None:
        while True:
            try:
                self.rows = await asyncio.to_thread(self.fleet.rows)
                self.error = ""
                self.refreshed_at = time.time()
            except OvstopError as exc:  # Prometheus away: keep the rows, say why they are old
                self.error = str(exc)
            self._render()
            await asyncio.sleep(self.interval)

    def _render(self) -> None:
        self.shown = arrange(self.rows, self.sort, self.descending, self.needle)
        table = self.query_one("#fleet-table", DataTable)
        table.clear()
        for row in self.shown:
            table.add_row(*cells(row), key=row.instance)
        down = sum(not r.up for r in self.rows)
        when = time.strftime("%H:%M:%S", time.localtime(self.refreshed_at)) if self.refreshed_at else "never"
        status = (
            f"{self.source}  {len(self.rows)} hosts, {down} down  sorted by {self.sort}"
            f"{' ↓' if self.descending else ''}  refreshed {when} every {self.interval:g}s  "
            f"{len(self.fleet.queries)} queries per refresh"
        )
        if self.needle:
            status += f"  filter {self.needle!r}"
        if self.error:
            status += f"\nSTALE: {self.error}"
        self.query_one("#fleet-status", Static).update(status)

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._render()

    def action_order(self, descending: bool) -> None:
        self.descending = descending
        self._render()

    def action_refresh(self) -> None:
        self.run_worker(self._poll(), exclusive=True)

    def action_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._close_filter()

    def on_key(self, event: object) -> None:
        box = self.query_one("#fleet-filter", Input)
        if box.has_focus and getattr(event, "key", "") == "escape":
            box.value = ""
            self._close_filter()

    def _close_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.display = bool(box.value)
        self.needle = box.value.strip()
        self._render()
        self.query_one("#fleet-table", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_attach()

    def action_attach(self) -> None:
        table = self.query_one("#fleet-table", DataTable)
        if not self.shown or table.cursor_row >= len(self.shown):
            return
        row = self.shown[table.cursor_row]
        if row.address is None:
            self.notify(f"{row.instance}: no host:port in its instance label, nothing to attach to", severity="warning")
            return
        self.exit(row.address)
