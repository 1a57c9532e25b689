"""Pane 7 (with ``--prometheus``): the fleet table inside the TUI. It reads Prometheus, not the local
switch: the snapshot it is handed only carries the filter the user typed."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult

from ovstop.model.store import Snapshot
from ovstop.remote.fleet import Fleet
from ovstop.tui.fleet_table import FleetTable
from ovstop.tui.view import Pane, ViewState


class FleetPane(Pane):
    title = "7 fleet (Prometheus)"

    def __init__(
        self,
        fleet: Fleet,
        interval: float,
        source: str,
        clock: Callable[[], float],
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.table = FleetTable(fleet, interval, source, clock)

    def compose(self) -> ComposeResult:
        yield self.table

    def show(self, snap: Snapshot, view: ViewState) -> None:
        self.table.filter(view.filter)
