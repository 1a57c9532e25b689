"""``ovstop fleet``: the fleet table full screen, with a filter box; Enter ends the app with the host's address
so the CLI can attach the TUI to it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.events import Key
from textual.widgets import Footer, Input

from ovstop.remote.fleet import Fleet
from ovstop.tui.fleet_table import FleetTable


class FleetApp(App[str]):
    """The table refreshes every ``interval`` seconds; returns the address chosen."""

    TITLE = "ovstop fleet"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("slash", "filter", "Filter hosts"),
    ]

    def __init__(self, fleet: Fleet, interval: float = 5.0, source: str = "") -> None:
        super().__init__()
        self.fleet = fleet
        self.interval = interval
        self.source = source

    def compose(self) -> ComposeResult:
        yield FleetTable(self.fleet, self.interval, self.source, id="fleet")
        yield Input(placeholder="filter hosts (enter keeps it, escape clears)", id="fleet-filter")
        yield Footer()

    @property
    def fleet_table(self) -> FleetTable:
        return self.query_one(FleetTable)

    def on_mount(self) -> None:
        self.query_one("#fleet-filter", Input).display = False
        self.fleet_table.table.focus()

    def action_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._close_filter()

    def on_key(self, event: Key) -> None:
        box = self.query_one("#fleet-filter", Input)
        if box.has_focus and event.key == "escape":
            box.value = ""
            self._close_filter()

    def _close_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.display = bool(box.value)
        self.fleet_table.filter(box.value.strip())
        self.fleet_table.table.focus()

    def on_fleet_table_attach(self, message: FleetTable.Attach) -> None:
        self.exit(message.address)
