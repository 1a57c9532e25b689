"""The ovstop Textual app: a header, four panes and the key bindings.

The app is fed finished snapshots by a :class:`~ovstop.tui.feed.SnapshotFeed` (a live sampler thread or a
replay); it never calls a source. A snapshot arrives as a coalescing message, so a slow UI skips stale
snapshots instead of queueing them. Pause freezes what is shown; collection and the event store go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.message import Message
from textual.widgets import DataTable, Footer, Input

from ovstop import health
from ovstop.errors import OvstopError
from ovstop.events.schema import encode
from ovstop.export import snapshot as snapshot_doc
from ovstop.model.flows import flow_id, flow_rows
from ovstop.model.store import Snapshot
from ovstop.remote.fleet import Fleet
from ovstop.timeline import DEFAULT_DEPTH, Timeline
from ovstop.tui.drops_pane import DropsPane
from ovstop.tui.event_screen import EventScreen
from ovstop.tui.events_pane import EventsPane
from ovstop.tui.feed import INTERVAL_STEPS, SPEED_STEPS, ReplayFeed, SnapshotFeed, step
from ovstop.tui.fleet_pane import FleetPane
from ovstop.tui.fleet_table import FleetTable
from ovstop.tui.flow_screen import FlowScreen
from ovstop.tui.format import at_clock, duration, num
from ovstop.tui.header import HeaderBar
from ovstop.tui.headline import clock_text
from ovstop.tui.health_screen import HealthScreen
from ovstop.tui.help import HelpScreen
from ovstop.tui.histograms_pane import HistogramsPane
from ovstop.tui.lookup_pane import LookupPane, flow_key
from ovstop.tui.metrics_pane import MetricsPane
from ovstop.tui.network_pane import NetworkPane
from ovstop.tui.view import FLOW_SORTS, Pane, ViewState

LARGE = (160, 45)
"""Terminal size (columns, rows) from which all four panes are shown at once by default."""
PANES = (1, 2, 3, 4, 5, 6)
FLEET = 7
"""The fleet pane, there with ``--prometheus``."""
ALL_VIEW = (1, 2, 3, 4)
"""The panes shown together on a large terminal; panes 5 (OVN chassis and tunnels), 6 (drops) and 7 (fleet)
are shown zoomed."""
EVENTS_IN_SNAPSHOT = 1000
REPLAY_ONLY = {"step", "speed", "play"}
LIVE_ONLY = {"interval", "refresh"}


class SnapshotReady(Message):
    """A new snapshot from the feed thread; a newer one replaces it while it waits in the queue."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class FeedFailed(Message):
    """The feed's last round failed (``reason``); the screen keeps the last snapshot and says so."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class OvstopApp(App[int | str]):
    """Exits with a status, or with the ``host:port`` picked in the fleet pane (the CLI then attaches to it)."""

    CSS_PATH = "ovstop.tcss"
    TITLE = "ovstop"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+c", "quit", "Quit", id="quit.ctrl_c", show=False, priority=True),
        Binding("question_mark,f1", "help", "Help", id="help"),
        Binding("slash", "filter", "Filter by name/label/key", id="filter"),
        Binding("h", "health", "Health checks", id="health"),
        Binding("enter", "open_flow", "Open the row: flow (panes 3, 4), eBPF event (3)", id="flow.open", show=False),
        Binding("p", "pause", "Pause view (collection goes on)", id="pause"),
        Binding("1", "pane(1)", "Metrics tree", id="pane.1", show=False),
        Binding("2", "pane(2)", "Histograms", id="pane.2", show=False),
        Binding("3", "pane(3)", "Upcall events", id="pane.3", show=False),
        Binding("4", "pane(4)", "Flow lookup", id="pane.4", show=False),
        Binding("5", "pane(5)", "OVN chassis and tunnels", id="pane.5", show=False),
        Binding("6", "pane(6)", "Drops", id="pane.6", show=False),
        Binding(
            "7",
            "pane(7)",
            "Fleet from Prometheus (with --prometheus; Enter attaches to a host)",
            id="pane.7",
            show=False,
        ),
        Binding("0", "pane(0)", "All four panes", id="pane.all", show=False),
        Binding("s", "sort", "Sort flows by the next column", id="sort"),
        Binding("less_than_sign", "order(True)", "Sort ascending", id="sort.asc", show=False),
        Binding("greater_than_sign", "order(False)", "Sort descending", id="sort.desc", show=False),
        Binding("i", "cumulative", "Histograms: interval/cumulative", id="histograms.mode", show=False),
        Binding("w", "write_snapshot", "Write JSON snapshot", id="snapshot"),
        Binding("d", "deep", "eBPF per-packet hooks on/off (costly)", id="ebpf.deep", show=False),
        Binding("space", "refresh", "Refresh now", id="refresh", show=False),
        Binding("plus", "interval(1)", "Longer refresh interval", id="interval.up", show=False),
        Binding("minus", "interval(-1)", "Shorter refresh interval", id="interval.down", show=False),
        Binding("b", "scrub(-1)", "Time scrub: one sample back", id="scrub.back"),
        Binding("f", "scrub(1)", "Time scrub: one sample forward", id="scrub.forward", show=False),
        Binding("t", "live", "Time scrub: back to now", id="scrub.live", show=False),
        Binding("B", "failure(-1)", "Time scrub: previous health failure", id="scrub.failure.back", show=False),
        Binding("F", "failure(1)", "Time scrub: next health failure", id="scrub.failure.next", show=False),
        Binding("g", "seek", "Time scrub: go to a time (HH:MM:SS)", id="scrub.seek", show=False),
        Binding("n", "step", "Replay: pause and step 1 s", id="replay.step", show=False),
        Binding("r", "play", "Replay: play/pause", id="replay.play", show=False),
        Binding("left_square_bracket", "speed(-1)", "Replay slower", id="replay.slower", show=False),
        Binding("right_square_bracket", "speed(1)", "Replay faster", id="replay.faster", show=False),
    ]

    def __init__(
        self,
        feed: SnapshotFeed,
        clock: Callable[[], float] = time.time,
        snapshot_dir: str | Path = ".",
        history_depth: float = DEFAULT_DEPTH,
        fleet: Fleet | None = None,
        fleet_source: str = "",
        fleet_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.feed = feed
        self.fleet = fleet
        self.fleet_source = fleet_source
        self.fleet_interval = fleet_interval
        self.panes = (*PANES, FLEET) if fleet is not None else PANES
        self.view = ViewState(feed, clock)
        self.snapshot_dir = Path(snapshot_dir)
        self.started = clock()
        self.latest: Snapshot | None = None
        self.shown: Snapshot | None = None
        self.paused = False
        self.zoom: int | None = None
        """Pane the user zoomed (1-6), 0 for all four, None to follow the terminal size."""
        self.current = 1
        self.snapshots_received = 0
        self.deep = False
        """Whether the per-packet eBPF hooks are on (key d, or --ebpf-deep)."""
        self.timeline = Timeline(history_depth)
        self._arrived: list[Snapshot] = []
        self._arrived_lock = threading.Lock()
        self.scrub_at: float | None = None
        """Time of the past snapshot shown (time scrub), None while the view follows the newest."""

    # -- layout -----------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Container(id="panes"):
            yield MetricsPane(id="pane-1")
            yield HistogramsPane(id="pane-2")
            yield EventsPane(id="pane-3")
            yield LookupPane(id="pane-4")
            yield NetworkPane(id="pane-5")
            yield DropsPane(id="pane-6")
            if self.fleet is not None:
                yield FleetPane(self.fleet, self.fleet_interval, self.fleet_source, self.view.clock, id=f"pane-{FLEET}")
        yield Input(placeholder="filter: name, label or flow key (enter keeps it, escape clears)", id="filter")
        yield Input(placeholder="go to a time: HH:MM:SS (enter goes, escape cancels)", id="seek")
        yield Footer()

    def pane(self, n: int) -> Pane:
        return self.query_one(f"#pane-{n}", Pane)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one("#seek", Input).display = False
        self._apply_layout()
        self._focus_pane()
        self._render_header()
        self.feed.start(self._arrive, lambda reason: self.post_message(FeedFailed(reason)))

    def _arrive(self, snap: Snapshot) -> None:
        """From the feed's thread: keep every snapshot for the timeline (the UI may skip some), then post it."""
        with self._arrived_lock:
            self._arrived.append(snap)
        self.post_message(SnapshotReady(snap))

    def on_unmount(self) -> None:
        self.feed.stop()

    def on_resize(self) -> None:
        self._apply_layout()

    def showing_all(self) -> bool:
        if self.zoom is not None:
            return self.zoom == 0
        return self.size.width >= LARGE[0] and self.size.height >= LARGE[1]

    def visible_panes(self) -> list[int]:
        return list(ALL_VIEW) if self.showing_all() else [self.current]

    def _apply_layout(self) -> None:
        panes = self.query_one("#panes", Container)
        everything = self.showing_all()
        panes.set_class(everything, "-all")
        for n in self.panes:
            self.pane(n).display = n in ALL_VIEW if everything else n == self.current
        self._apply_demand()
        if FLEET in self.panes and self.pane(FLEET).display:
            self.query_one(FleetTable).action_refresh_now()  # shown again: no waiting for the next round
        self._render_panes()

    def _apply_demand(self) -> None:
        demand = HeaderBar.needs
        for n in self.visible_panes():
            demand = demand | self.pane(n).wants()
        self.feed.need(demand)

    def on_pane_needs_changed(self, message: Pane.NeedsChanged) -> None:
        if len(self.query(Pane)) == len(self.panes):  # not a late message while the app takes its panes down
            self._apply_demand()

    # -- snapshots -----------------------------------------------------------------------------------------
    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        if not self.query("#panes"):  # a round that finished while the app was shutting down
            return
        snap = message.snapshot
        self.latest = snap
        self.snapshots_received += 1
        self.view.flows.add(snap)
        with self._arrived_lock:
            arrived, self._arrived = self._arrived, []
        for kept in arrived:
            self.timeline.add(kept)
        if self.scrub_at is not None:
            self._badge()  # "… ago" grows while the past is shown
        elif not self.paused:
            self.shown = snap
            self._render_panes()
            self._render_screens()
        self._render_header()

    def _render_screens(self) -> None:
        if isinstance(self.screen, HealthScreen | FlowScreen) and self.shown is not None:
            self.screen.show(self.shown)

    def on_feed_failed(self, message: FeedFailed) -> None:
        self._render_header()

    def _render_header(self) -> None:
        self.query_one(HeaderBar).show(self.shown, self.view, self.paused, self.started)

    def _render_panes(self) -> None:
        if self.shown is None:
            return
        with self.batch_update():
            for n in self.visible_panes():
                self.pane(n).show(self.shown, self.view)

    # -- actions -------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in REPLAY_ONLY:
            return self.feed.kind == "replay"
        if action in LIVE_ONLY:
            return self.feed.kind in ("live", "remote")
        return action != "pane" or not parameters or parameters[0] in (0, *self.panes)

    def action_help(self) -> None:
        fleet_keys = FleetTable.BINDINGS if self.fleet is not None else []
        details = [b for b in (*FlowScreen.BINDINGS, *EventScreen.BINDINGS) if b.key != "escape"]  # type: ignore[union-attr]
        self.push_screen(HelpScreen([*self.BINDINGS, *details, *fleet_keys]))  # type: ignore[list-item]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "flows-table":
            self._open_flow(str(event.row_key.value))
        elif event.data_table.id == "events-table":
            pane, key = self.query_one(EventsPane), str(event.row_key.value)
            change = pane.flows.get(key)
            if change is not None and self.shown is not None:  # the flow now if still installed, else as it was
                row = next((r for r in flow_rows(self.shown.tables) if r.id == flow_id(change)), change)
                self.push_screen(FlowScreen(row, self.feed, self.shown))
            elif key in pane.events:
                self.push_screen(EventScreen(pane.events[key], self.feed, self.shown))

    def on_fleet_table_attach(self, message: FleetTable.Attach) -> None:
        self.exit(message.address)

    def action_open_flow(self) -> None:
        tables = self.query("#flows-table").results(DataTable)  # none while another screen is on top
        table = next(tables, None)
        if table is not None and self.pane(4).display and table.row_count:
            self._open_flow(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def _open_flow(self, key: str) -> None:
        rows = flow_rows(self.shown.tables) if self.shown is not None else []
        row = next((r for r in rows if flow_key(r.id) == key), None)
        if row is not None and self.shown is not None:
            self.push_screen(FlowScreen(row, self.feed, self.shown))

    def action_health(self) -> None:
        if self.shown is None:
            self.notify("no snapshot yet", severity="warning")
            return
        self.push_screen(HealthScreen(self.shown))

    # -- time scrub --------------------------------------------------------------------------------------------
    def _scrub_index(self) -> int:
        return self.timeline.index_at(self.scrub_at) if self.scrub_at is not None else len(self.timeline) - 1

    def _badge(self) -> None:
        if self.scrub_at is None or self.latest is None:
            self.view.viewing = ""
            return
        ago = max(self.latest.timestamp - self.scrub_at, 0.0)
        self.view.viewing = (
            f"viewing {clock_text(self.scrub_at)}, {duration(ago)} ago · kept "
            f"{duration(self.timeline.span)} ≈ {num(self.timeline.cost_bytes)}B"
        )

    def _view_at(self, index: int) -> None:
        snap = self.timeline[index]
        self.scrub_at = snap.timestamp
        self.shown = snap
        self._badge()
        self._render_panes()
        self._render_screens()
        self._render_header()

    def action_scrub(self, step: int) -> None:
        if not self.timeline:
            return
        target = self._scrub_index() + step
        if target >= len(self.timeline) - 1 and step > 0:
            self.action_live()
        else:
            self._view_at(max(target, 0))

    def action_live(self) -> None:
        self.scrub_at = None
        self._badge()
        if not self.paused:
            self.shown = self.latest
            self._render_panes()
            self._render_screens()
        self._render_header()

    def action_failure(self, direction: int) -> None:
        found = self.timeline.failure(self._scrub_index(), direction) if self.timeline else None
        if found is not None:
            self._view_at(found)
        elif direction > 0 and isinstance(self.feed, ReplayFeed):
            self.notify("playing on to the next health failure…", timeout=2)
            self._seek_replay(lambda snap: bool(health.failing(health.rows(snap))), "health failure")
        else:
            self.notify(
                f"no health failure {'before' if direction < 0 else 'after'} this moment in the kept "
                f"history ({duration(self.timeline.span)})",
                severity="warning",
            )

    @work(thread=True, exclusive=True, group="seek")
    def _seek_replay(self, until: Callable[[Snapshot], bool], what: str) -> None:
        assert isinstance(self.feed, ReplayFeed)
        found = self.feed.seek(until)
        self.call_from_thread(self._after_seek, found, what)

    def _after_seek(self, found: bool, what: str) -> None:
        self.action_live()  # the recording stopped on the snapshot sought (or at its end)
        if not found:
            self.notify(f"no {what} until the end of the recording", severity="warning")

    def action_seek(self) -> None:
        box = self.query_one("#seek", Input)
        box.display = True
        box.focus()

    def _seek_to(self, text: str) -> None:
        reference = self.shown or self.latest
        if reference is None:
            return
        try:
            target = at_clock(text, reference.timestamp)
        except ValueError:
            self.notify(f"not a time: {text!r} (HH:MM:SS or HH:MM)", severity="error")
            return
        if self.timeline and self.timeline[0].timestamp <= target <= self.timeline[-1].timestamp:
            index = self.timeline.index_at(target)
            if index == len(self.timeline) - 1:
                self.action_live()
            else:
                self._view_at(index)
        elif isinstance(self.feed, ReplayFeed) and self.latest is not None and target > self.latest.timestamp:
            self._seek_replay(lambda snap: snap.timestamp >= target, f"snapshot at {text}")
        else:
            self.notify(f"{text} is outside the kept history ({duration(self.timeline.span)})", severity="warning")

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.scrub_at is None:
            self.shown = self.latest
            self._render_panes()
            self._render_screens()
        self._render_header()

    def action_pane(self, n: int) -> None:
        self.zoom = n
        if n:
            self.current = n
        self._apply_layout()
        self._focus_pane()

    def _focus_pane(self) -> None:
        self.pane(self.current).query(".main").first().focus()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "seek":
            self._close_seek()
            self._seek_to(event.value.strip())
        else:
            self._close_filter()

    def on_key(self, event: object) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus and getattr(event, "key", "") == "escape":
            box.value = ""
            self._close_filter()
        if self.query_one("#seek", Input).has_focus and getattr(event, "key", "") == "escape":
            self._close_seek()

    def _close_seek(self) -> None:
        box = self.query_one("#seek", Input)
        box.value = ""
        box.display = False
        self._focus_pane()

    def _close_filter(self) -> None:
        """Apply what the filter box holds (on enter; escape has emptied it) and go back to the pane."""
        box = self.query_one("#filter", Input)
        box.display = bool(box.value)
        self.view.filter = box.value.strip()
        self._render_panes()
        self._focus_pane()

    def action_sort(self) -> None:
        self.view.sort = FLOW_SORTS[(FLOW_SORTS.index(self.view.sort) + 1) % len(FLOW_SORTS)]
        self._render_panes()
        self.notify(f"flows sorted by {self.view.sort}", timeout=2)

    def action_order(self, ascending: bool) -> None:
        self.view.reverse = ascending
        self._render_panes()

    def action_cumulative(self) -> None:
        self.view.cumulative = not self.view.cumulative
        self._render_panes()

    def action_deep(self) -> None:
        changed, message = self.feed.set_deep(not self.deep)
        if changed:
            self.deep = not self.deep
        self.notify(message, severity="information" if changed else "warning", timeout=4)

    def action_refresh(self) -> None:
        self.feed.refresh_now()

    def action_interval(self, direction: int) -> None:
        self.feed.set_interval(step(INTERVAL_STEPS, self.feed.interval, direction))
        self._render_header()
        self.notify(f"refresh every {self.feed.interval:g}s", timeout=2)

    # Replay keys are only enabled for a replay (check_action); the isinstance checks say so to the types.
    def action_step(self) -> None:
        if isinstance(self.feed, ReplayFeed):
            self.feed.step()

    def action_play(self) -> None:
        if isinstance(self.feed, ReplayFeed):
            self.feed.toggle_play()

    def action_speed(self, direction: int) -> None:
        if isinstance(self.feed, ReplayFeed):
            self.feed.set_speed(step(SPEED_STEPS, self.feed.speed, direction))
            self._render_header()

    def action_write_snapshot(self) -> None:
        if self.shown is None:
            self.notify("no snapshot yet", severity="warning")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.view.clock()))
        path = self.snapshot_dir / f"ovstop-snapshot-{stamp}.json"
        store = self.feed.events
        events = [encode(ev) for ev in store.snapshot(limit=EVENTS_IN_SNAPSHOT)] if store is not None else None
        try:
            snapshot_doc.write(snapshot_doc.to_dict(self.shown, events), path)
        except OvstopError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"snapshot written to {path}")
