"""SVG snapshots of every pane, all panes and the help screen at 80x24 and 200x50 (pytest-textual-snapshot).
The eBPF event detail screens are drawn from the guest recording (its events; the sandbox's has none).

The app is fed from ``tests/data/recordings/sandbox.jsonl`` (a real sandbox run, see the README there),
paused before it starts and stepped with the app's own ``n`` key one snapshot at a time, with a frozen clock
and local time in UTC, so the screen does not depend on when or where the test runs. Baselines live in the
repository's top-level ``snapshots/`` directory; ``pytest --snapshot-update`` rewrites them.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_textual_snapshot
from syrupy.location import PyTestLocation
from textual.pilot import Pilot
from textual.widgets import DataTable

from ovstop.remote.fleet import Fleet
from ovstop.tui.app import OvstopApp
from ovstop.tui.events_pane import EventsPane
from ovstop.tui.feed import ReplayFeed
from ovstop.tui.fleet_table import FleetTable
from ovstop.tui.metrics_pane import MetricsPane, labels_text, leaf_label

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "tests" / "data" / "recordings" / "sandbox.jsonl"
SNAPSHOTS = 3
"""Snapshot lines in the recording; all of them are shown, so rates, history and flow changes exist."""
FROZEN = 1_795_323_190.0
"""The clock the app is given: a little after the recording's last snapshot."""
SIZES = {"80x24": (80, 24), "200x50": (200, 50)}
VIEWS = {
    "pane1": ["1"],
    "pane2": ["2"],
    "pane3": ["3"],
    "pane4": ["4"],
    "pane5": ["5"],
    "pane6": ["6"],
    "all": ["0"],
    "help": ["question_mark"],
    "health": ["h"],
    "flow": ["4", "enter"],
    "scrub": ["b", "b"],
}

FLEET_VIEWS = {"fleet": [], "fleet-help": ["question_mark"], "fleet-sorted": ["s", "s", "greater_than_sign"]}
"""With a fleet pane (shown by ``7`` before these keys); ``s`` twice and ``>``: most failing checks first."""
FLEET_ANSWERS = ROOT / "tests" / "data" / "fleet" / "answers.json"
GUEST_RECORDING = ROOT / "tests" / "data" / "recordings" / "guest-ebpf.jsonl"
"""eBPF events recorded in the Debian 12 guest (README there): the event detail screens are drawn from it."""
EVENT_VIEWS = {"event-upcall": "upcall_enqueue", "event-flow": "flow_lookup"}
"""Enter on the first event of that type (for flow_lookup: the first hit, which names a flow of the dump)."""


class TopLevelSVGExtension(pytest_textual_snapshot.SVGImageExtension):
    """Keeps the SVG baselines in ``snapshots/`` at the top of the repository (not ``tests/__snapshots__``)."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(ROOT / "snapshots" / test_location.basename)


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Baselines in ``snapshots/``; local time (flow change times) in UTC whatever the machine's zone."""
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", TopLevelSVGExtension)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class RecordedPrometheus:
    """Prometheus's recorded answers to the fleet queries (tests/data/fleet/README.md), by query."""

    def __init__(self) -> None:
        self.answers = json.loads(FLEET_ANSWERS.read_text())

    def get_json(self, path: str, params: dict[str, str]) -> object:
        return self.answers[params["query"]]


def _replay_app(fleet: bool = False) -> OvstopApp:
    feed = ReplayFeed(str(RECORDING))
    feed.replayer.pause()  # nothing plays by itself: the test steps through the recording
    if not fleet:
        return OvstopApp(feed, clock=lambda: FROZEN)
    recorded = Fleet(RecordedPrometheus(), window="5s")  # type: ignore[arg-type]  # the window of the recording
    return OvstopApp(feed, clock=lambda: FROZEN, fleet=recorded, fleet_source="http://prometheus:9090")


async def _step_through(pilot: Pilot[int]) -> None:
    """Show each snapshot of the recording in turn (``n``: one recorded second), waiting for each."""
    app = pilot.app
    assert isinstance(app, OvstopApp)
    for shown in range(1, SNAPSHOTS + 1):
        await pilot.press("n")
        deadline = time.monotonic() + 10
        while app.snapshots_received < shown:
            assert time.monotonic() < deadline, f"snapshot {shown} of the recording never arrived"
            await asyncio.sleep(0.02)
    assert app.shown is not None and app.shown.seq == SNAPSHOTS


async def _fleet_shown(pilot: Pilot[int]) -> None:
    await _step_through(pilot)
    await pilot.press("7")
    table = pilot.app.query_one(FleetTable)
    deadline = time.monotonic() + 10
    while table.table.row_count < 3:
        assert time.monotonic() < deadline, "the recorded fleet never showed"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("view", FLEET_VIEWS)
@pytest.mark.parametrize("size", SIZES)
def test_fleet_screen(snap_compare, size: str, view: str) -> None:  # type: ignore[no-untyped-def]
    """The fleet pane (``--prometheus``) on recorded query answers: one host failing tunnel_down."""
    assert snap_compare(
        _replay_app(fleet=True), press=FLEET_VIEWS[view], terminal_size=SIZES[size], run_before=_fleet_shown
    )


def _event_cursor(feed: ReplayFeed, event_type: str) -> Callable[[Pilot[int]], Awaitable[None]]:
    """Play the whole guest recording, then put pane 3's cursor on the first ``event_type`` event."""
    events = GUEST_RECORDING.read_text().count('"ovs":{')

    async def run_before(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, OvstopApp)
        await pilot.press("3")
        pane = app.query_one(EventsPane)
        table = pane.query_one("#events-table", DataTable)
        deadline = time.monotonic() + 20
        while not feed.replayer.done or app.shown is not feed.last or len(pane.events) < events:
            assert time.monotonic() < deadline, "the guest recording never showed whole"
            await asyncio.sleep(0.02)
        key = next(k for k, ev in pane.events.items() if ev.event_type == event_type and not ev.is_miss)
        table.move_cursor(row=table.get_row_index(key))

    return run_before


@pytest.mark.parametrize("view", EVENT_VIEWS)
@pytest.mark.parametrize("size", SIZES)
def test_event_screen(snap_compare, size: str, view: str) -> None:  # type: ignore[no-untyped-def]
    """Enter on an eBPF event of pane 3: its fields, its series, and the flow a lookup hit names."""
    feed = ReplayFeed(str(GUEST_RECORDING), speed=math.inf)
    app = OvstopApp(feed, clock=lambda: FROZEN)
    wait = _event_cursor(feed, EVENT_VIEWS[view])
    assert snap_compare(app, press=["enter"], terminal_size=SIZES[size], run_before=wait)


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("size", SIZES)
def test_screen(snap_compare, size: str, view: str) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_replay_app(), press=VIEWS[view], terminal_size=SIZES[size], run_before=_step_through)


def test_recording_is_small_and_real() -> None:
    """The fixture stays small, and it is what the README says: ovstop's recording of a sandbox switch."""
    assert RECORDING.stat().st_size < 300_000
    text = RECORDING.read_text()
    assert text.count('"kind":"snapshot"') == SNAPSHOTS
    assert '"ovs_version":"3.1.0"' in text and "ovs-netdev" in text


def test_leaves_scrolled_into_view_show_the_shown_snapshot() -> None:
    """Leaves off screen are labelled when they come into view (scrolled to, with no new snapshot): every
    leaf on screen then reads as its series in the snapshot shown."""
    app = _replay_app()

    async def run() -> None:
        async with app.run_test(size=SIZES["80x24"]) as pilot:
            await pilot.press("1")
            await _step_through(pilot)
            pane = app.query_one(MetricsPane)
            tree = pane.metrics_tree
            for node in pane._branches.values():
                node.expand()
            await pilot.pause()
            tree.scroll_end(animate=False)
            await pilot.pause()
            await pilot.pause()
            assert app.shown is not None
            by_key = {(s.spec.name, s.labels): s for s in app.shown.series}
            top, height = tree.scroll_offset.y, tree.size.height
            checked = 0
            for key, (node, _) in pane._leaves.items():
                if top <= node.line < top + height:
                    s = by_key[key]
                    name = s.spec.path[-1] if not s.labels else labels_text(s.labels)
                    assert str(node.label) == leaf_label(name, s).plain, key
                    checked += 1
            assert checked >= height // 2, f"only {checked} leaves on screen"

            # A filter rebuilds the tree: leaves waiting off screen before it are not labelled after it.
            await pilot.press("slash", *"pmd", "enter")
            await pilot.pause()
            tree.scroll_home(animate=False)
            await pilot.pause()
            assert pane._leaves and all("pmd" in str(key) for key in pane._leaves)

    asyncio.run(run())
