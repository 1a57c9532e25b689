"""Pane 3: the upcall event stream, following the tail until the user scrolls away from it.

With an event store (eBPF capture or a replay) it lists OVS events; without one it says why and lists the
datapath flows installed and expired between samples instead, labelled as such.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from ovstop.collect.demand import FLOW_DUMP, Demand
from ovstop.events.schema import OvsEvent
from ovstop.events.store import EventStore
from ovstop.model.flows import FlowChange
from ovstop.model.store import Snapshot
from ovstop.tui.format import DASH, key_summary, short_ufid
from ovstop.tui.headline import clock_text
from ovstop.tui.view import Pane, ViewState

MAX_ROWS = 500
EVENT_COLUMNS = ("time", "cpu", "type", "port", "queue", "ufid", "key / summary", "latency")
FLOW_COLUMNS = ("time", "change", "datapath", "pmd", "ufid", "key", "actions", "packets")


def _opt(x: object) -> str:
    return DASH if x is None else str(x)


def event_row(ev: OvsEvent) -> tuple[Text, ...]:
    latency = f"{ev.latency_ns / 1000:.1f}µs" if ev.latency_ns is not None else DASH
    summary = str(ev.key) if ev.key is not None else ev.summary()
    cells = (
        f"{ev.timestamp / 1e9:.6f}",
        _opt(ev.cpu),
        ev.event_type,
        _opt(ev.port),
        _opt(ev.queue_id),
        short_ufid(ev.ufid),
        summary,
        latency,
    )
    return tuple(Text(c) for c in cells)


def change_row(c: FlowChange) -> tuple[Text, ...]:
    cells = (
        clock_text(c.at),
        c.change,
        c.datapath,
        c.pmd or DASH,
        short_ufid(c.ufid),
        key_summary(c.key),
        c.actions,
        str(c.packets),
    )
    return tuple(Text(x) for x in cells)


class EventsPane(Pane):
    """A bounded DataTable appended to as events arrive; rebuilt only when the filter or the mode changes."""

    title = "3 upcall events"
    needs = Demand.of("ebpf", FLOW_DUMP)  # without kernel hooks: flows installed/expired between dumps

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("", id="events-status", classes="detail")
        yield DataTable(id="events-table", cursor_type="row", classes="main")

    def on_mount(self) -> None:
        super().on_mount()
        self._mode = ""
        self._filter: str | None = None
        self._seen = 0
        self._next_key = 0
        self.flows: dict[str, FlowChange] = {}
        """Row key -> the flow a flow-change row is about (Enter opens it); bounded with the rows."""
        self.events: dict[str, OvsEvent] = {}
        """Row key -> the event an event row shows (Enter opens it); bounded with the rows."""

    @property
    def table(self) -> DataTable:
        return self.query_one("#events-table", DataTable)

    def _reset(self, mode: str, columns: tuple[str, ...], view: ViewState) -> None:
        self._mode, self._filter, self._seen = mode, view.filter, 0
        self.flows.clear()
        self.events.clear()
        self.table.clear(columns=True)
        self.table.add_columns(*columns)

    def show(self, snap: Snapshot, view: ViewState) -> None:
        store = view.feed.events
        # Until a source has delivered an event (capture idle, or a recording without events), the flow-table
        # diff is what there is to show.
        if store is not None and store.stats().accepted:
            self._show_events(store, view)
        else:
            self._show_flow_changes(snap, view, waiting=store is not None)

    def _append(
        self,
        rows: list[tuple[Text, ...]],
        flows: list[FlowChange] | None = None,
        events: list[OvsEvent] | None = None,
    ) -> None:
        table = self.table
        following = table.scroll_y >= table.max_scroll_y
        start = max(len(rows) - MAX_ROWS, 0)
        with self.app.batch_update():
            for i, row in enumerate(rows[start:], start):
                table.add_row(*row, key=str(self._next_key))
                if flows is not None:
                    self.flows[str(self._next_key)] = flows[i]
                if events is not None:
                    self.events[str(self._next_key)] = events[i]
                self._next_key += 1
            excess = table.row_count - MAX_ROWS
            for row_key in list(table.rows)[: max(excess, 0)]:
                table.remove_row(row_key)
                self.flows.pop(str(row_key.value), None)
                self.events.pop(str(row_key.value), None)
        if following and rows:
            table.scroll_end(animate=False)

    def _show_events(self, store: EventStore, view: ViewState) -> None:
        if self._mode != "events" or self._filter != view.filter:
            self._reset("events", EVENT_COLUMNS, view)
        events, stats = store.since(self._seen, MAX_ROWS)
        self._seen = stats.accepted
        shown = [ev for ev in events if view.matches(ev.summary(), str(ev.key or ""))]
        self._append([event_row(ev) for ev in shown], events=shown)
        totals = "  ".join(f"{k} {v}" for k, v in sorted(store.totals().items()))
        self.query_one("#events-status", Static).update(
            Text(
                f"{stats.accepted} events ({store.rate():.0f}/s), dropped {stats.dropped}"
                f" (rate limit {stats.rate_dropped}, ring {stats.overflowed})  {totals}"
            )
        )

    def _show_flow_changes(self, snap: Snapshot, view: ViewState, waiting: bool = False) -> None:
        if self._mode != "flows" or self._filter != view.filter:
            self._reset("flows", FLOW_COLUMNS, view)
            self._seen = view.flows.total_changes - len(view.flows.changes)
        new = view.flows.total_changes - self._seen
        self._seen = view.flows.total_changes
        changes = list(view.flows.changes)[-new:] if new > 0 else []
        shown = [c for c in changes if view.matches(c.key, c.actions, c.ufid, c.pmd)]
        self._append([change_row(c) for c in shown], shown)
        ebpf = snap.health.get("ebpf")
        if waiting:
            why = "none captured or recorded yet"
        else:
            why = ebpf.reason if ebpf is not None and ebpf.reason else view.feed.events_reason or "no eBPF source"
        self.query_one("#events-status", Static).update(
            Text(
                f"no upcall events: {why}. Showing datapath flows installed/expired between samples "
                f"(dpctl/dump-flows diff): {view.flows.total_changes} changes so far"
            )
        )
