"""The fleet table (one row per hypervisor, from Prometheus): one widget shared by ``ovstop fleet`` and the
TUI's fleet pane. It refreshes itself off the UI thread, sorts with ``s`` and ``<``/``>``, filters on the
needle its owner sets, and posts :class:`FleetTable.Attach` when Enter picks a host with a known address."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from ovstop.errors import OvstopError
from ovstop.remote.fleet import SORTS, Fleet, HostRow, arrange
from ovstop.tui.format import DASH, num, pct

COLUMNS = (
    ("host", "instance"),
    ("up", "up"),
    ("failing checks", "failing"),
    ("hit", "hit_ratio"),
    ("upcalls/s", "upcalls"),
    ("lost/s", "lost"),
    ("flows/limit", "flows"),
    ("PMD busy", "pmd_busy"),
    ("drops/s", "drops"),
    ("OVN SB", "ovn_sb"),
)


def failing_cell(row: HostRow) -> str:
    """The count of failing health checks and their names (the first two, then how many more)."""
    count = row.get("failing")
    if count is None:
        return DASH  # the host exports no verdict (all unknown): not "0 failing"
    if not row.failing_checks:
        return num(count)
    shown = ", ".join(row.failing_checks[:2])
    more = len(row.failing_checks) - 2
    return f"{num(count)} {shown}{f' +{more}' if more > 0 else ''}"


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
        failing_cell(row),
        pct(g("hit_ratio"), 1.0) if g("hit_ratio") is not None else DASH,
        num(g("upcalls")),
        num(g("lost")),
        f"{num(flows)}/{num(limit)}" if flows is not None and limit is not None else num(flows),
        pct(g("pmd_busy"), 1.0) if g("pmd_busy") is not None else DASH,
        num(g("drops")),
        DASH if sb is None else ("connected" if sb == 1.0 else "DISCONNECTED"),
    )


class FleetTable(Vertical):
    """Status line and table; polls ``fleet`` every ``interval`` seconds while it is displayed."""

    DEFAULT_CSS = """
    FleetTable { height: 1fr; }
    FleetTable #fleet-status { height: auto; padding: 0 1; }
    FleetTable #fleet-table { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort", "Fleet: sort by the next column", id="fleet.sort"),
        Binding("less_than_sign", "order(False)", "Fleet: ascending", id="fleet.asc", show=False),
        Binding("greater_than_sign", "order(True)", "Fleet: descending", id="fleet.desc", show=False),
        Binding("space", "refresh_now", "Fleet: refresh now", id="fleet.refresh", show=False),
    ]

    class Attach(Message):
        """Enter on a host whose instance label is ``host:port``."""

        def __init__(self, address: str) -> None:
            super().__init__()
            self.address = address

    def __init__(
        self,
        fleet: Fleet,
        interval: float = 5.0,
        source: str = "",
        clock: Callable[[], float] = time.time,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.fleet = fleet
        self.clock = clock
        self.interval = interval
        self.source = source
        self.rows: list[HostRow] = []
        self.shown: list[HostRow] = []
        self.sort = "instance"
        self.descending = False
        self.needle = ""
        self.error = ""
        self.refreshed_at: float | None = None
        self._wake = asyncio.Event()

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-status")
        yield DataTable(id="fleet-table", cursor_type="row", zebra_stripes=True, classes="main")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#fleet-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*(title for title, _ in COLUMNS))
        self.run_worker(self._poll(), exclusive=True, group="fleet")

    def _displayed(self) -> bool:
        return all(node.display for node in self.ancestors_with_self if hasattr(node, "display"))

    async def _poll(self) -> None:
        while True:
            if self._displayed():  # a hidden pane costs Prometheus nothing
                try:
                    self.rows = await asyncio.to_thread(self.fleet.rows)
                    self.error = ""
                    self.refreshed_at = self.clock()
                except OvstopError as exc:  # Prometheus away: keep the rows, say why they are old
                    self.error = str(exc)
                self.render_rows()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):  # the interval is over, or a refresh was asked for
                await asyncio.wait_for(self._wake.wait(), self.interval)

    def render_rows(self) -> None:
        table = self.table
        at = self.shown[table.cursor_row].instance if table.row_count and table.cursor_row < len(self.shown) else None
        self.shown = arrange(self.rows, self.sort, self.descending, self.needle)
        table.clear()
        for row in self.shown:
            table.add_row(*cells(row), key=row.instance)
        keys = [r.instance for r in self.shown]
        if at in keys:  # the cursor stays on its host across refreshes and re-sorts
            table.move_cursor(row=keys.index(at), animate=False)
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

    def filter(self, needle: str) -> None:
        if needle != self.needle:
            self.needle = needle
            self.render_rows()

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.render_rows()

    def action_order(self, descending: bool) -> None:
        self.descending = descending
        self.render_rows()

    def action_refresh_now(self) -> None:
        self._wake.set()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = next((r for r in self.shown if r.instance == event.row_key.value), None)
        if row is None:
            return
        if row.address is None:
            self.notify(f"{row.instance}: no host:port in its instance label, nothing to attach to", severity="warning")
            return
        self.post_message(self.Attach(row.address))
