"""Enter on an eBPF event of the upcall pane, in a replay of the recording made in the Debian 12 guest
(tests/data/recordings/guest-ebpf.jsonl, see the README there).

Truth comes from the file itself, read here as plain JSON (not through ovstop's decoder), and from the
summary the guest wrote from ``ovs-appctl dpctl/dump-flows`` (packets per ufid): the detail shows every field
the event's line holds, its series holds the lines linked by the upcall key and the enqueue's queue_id,
and a flow-lookup hit opens the flow of the recorded dump with its kernel lookup hits.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Static

from ovstop.ebpf.collector import flow_lookup_hits
from ovstop.export import snapshot as snapshot_doc
from ovstop.tui.app import OvstopApp
from ovstop.tui.event_screen import EventScreen
from ovstop.tui.events_pane import EventsPane
from ovstop.tui.feed import ReplayFeed
from ovstop.tui.flow_screen import FlowScreen

RECORDINGS = Path(__file__).resolve().parent / "data" / "recordings"
RECORDING = RECORDINGS / "guest-ebpf.jsonl"
SUMMARY = json.loads((RECORDINGS / "guest-ebpf.summary.json").read_text())
LINES = [json.loads(line) for line in RECORDING.read_text().splitlines()]
EVENTS = [obj for obj in LINES if "ovs" in obj]
LAST_DUMP = [obj for obj in LINES if obj.get("ovstop", {}).get("kind") == "snapshot"][-1]["ovstop"]["data"]


def ufid_text(parts: list[int]) -> str:
    """The dpctl/dump-flows spelling of a ufid held as four u32 (as Retis writes it)."""
    a, b, c, d = parts
    return f"{a:08x}-{b >> 16:04x}-{b & 0xFFFF:04x}-{c >> 16:04x}-{c & 0xFFFF:04x}{d:08x}"


def first(event_type: str, hit: bool = False) -> dict[str, Any]:
    return next(
        obj
        for obj in EVENTS
        if obj["ovs"]["event_type"] == event_type and (not hit or any(obj["ovs"].get("ufid") or []))
    )


def shown_fields(screen: EventScreen) -> str:
    return str(screen.query_one("#event-fields", Static).render())


def assert_fields_shown(text: str, obj: dict[str, Any]) -> None:
    """Every scalar of the line's ovs section, and its timestamp and CPU, as ``name value``."""
    assert f"timestamp {obj['common']['timestamp']}" in text
    assert f"smp_id {obj['common']['smp_id']}" in text
    for name, value in obj["ovs"].items():
        if name == "ufid":
            assert f"ufid {ufid_text(value)}" in text
        elif name in ("flow", "sf_acts"):  # kernel addresses, in hex
            assert f"{name} {value:#x}" in text
        elif isinstance(value, int | str) and value != "":
            assert f"{name} {value}" in text, name


async def ready(app: OvstopApp) -> tuple[EventsPane, DataTable]:
    """Pane 3 once every event of the recording is listed."""
    pane = app.query_one(EventsPane)
    table = pane.query_one("#events-table", DataTable)
    end = time.monotonic() + 20
    while table.row_count < len(EVENTS):
        assert time.monotonic() < end, f"{table.row_count} of {len(EVENTS)} events listed in time"
        await asyncio.sleep(0.05)
    return pane, table


def test_enter_on_an_upcall_enqueue_shows_its_fields_and_its_series() -> None:
    app = OvstopApp(ReplayFeed(str(RECORDING), speed=math.inf))
    enqueue = first("upcall_enqueue")
    ovs = enqueue["ovs"]
    linked = {
        (obj["common"]["timestamp"], obj["ovs"]["event_type"])
        for obj in EVENTS
        if (obj["ovs"]["event_type"] == "upcall" and obj["common"]["timestamp"] == ovs["upcall_ts"])
        or (obj["ovs"].get("upcall_ts") == ovs["upcall_ts"] and obj["ovs"].get("upcall_cpu") == ovs["upcall_cpu"])
        or (obj["ovs"]["event_type"] == "action_execute" and obj["ovs"].get("queue_id") == ovs["queue_id"])
    }
    assert {t for _, t in linked} == {"upcall", "upcall_enqueue", "upcall_return", "action_execute"}

    async def run() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            await pilot.press("3")
            pane, table = await ready(app)
            key = next(k for k, ev in pane.events.items() if ev.timestamp == enqueue["common"]["timestamp"])
            table.focus()
            table.move_cursor(row=table.get_row_index(key))
            cursor = table.cursor_coordinate
            await pilot.press("enter")
            assert isinstance(app.screen, EventScreen)
            screen = app.screen
            text = shown_fields(screen)
            assert_fields_shown(text, enqueue)
            assert "cmd 1 (miss)" in text and "probe kretprobe queue_userspace_packet" in text
            series = screen.query_one("#event-series", DataTable)
            rows = {(int(str(series.get_row_at(i)[0])), str(series.get_row_at(i)[2])) for i in range(series.row_count)}
            assert rows == linked
            flow = str(screen.query_one("#event-flow", Static).render())
            assert "names none" in flow
            await pilot.press("escape")
            assert not isinstance(app.screen, EventScreen) and app.pane(3).display
            assert table.cursor_coordinate == cursor
            assert table.coordinate_to_cell_key(cursor).row_key.value == key  # the same event under the cursor

    asyncio.run(run())


def test_enter_on_a_lookup_hit_shows_its_flow_and_its_kernel_lookup_hits() -> None:
    app = OvstopApp(ReplayFeed(str(RECORDING), speed=math.inf))
    hit = first("flow_lookup", hit=True)
    ufid = ufid_text(hit["ovs"]["ufid"])
    recorded = next(r for r in LAST_DUMP["tables"]["dp_flows"] if r["ufid"] == ufid)
    packets = SUMMARY["flow_packets"][ufid]  # the guest's own dpctl/dump-flows count for this flow

    async def run() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            await pilot.press("3")
            pane, table = await ready(app)
            end = time.monotonic() + 20
            while app.shown is None or app.shown.seq != LAST_DUMP["seq"]:
                assert time.monotonic() < end, "the recording's last snapshot never showed"
                await asyncio.sleep(0.05)
            key = next(k for k, ev in pane.events.items() if ev.timestamp == hit["common"]["timestamp"])
            table.focus()
            table.move_cursor(row=table.get_row_index(key))
            await pilot.press("enter")
            assert isinstance(app.screen, EventScreen)
            screen = app.screen
            assert_fields_shown(shown_fields(screen), hit)
            flow = str(screen.query_one("#event-flow", Static).render())
            assert recorded["key"] in flow and recorded["actions"] in flow
            assert f"lookups {packets} hits" in flow
            await pilot.press("f")
            assert isinstance(app.screen, FlowScreen)
            fields = str(app.screen.query_one("#flow-fields", Static).render())
            assert f"ufid {ufid}" in fields and f"lookups {packets} hits" in fields
            assert "no switch" in str(app.screen.query_one("#explain-status", Static).render())
            await pilot.press("escape")
            assert app.screen is screen
            await pilot.press("escape")
            assert app.pane(3).display and table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == key

    asyncio.run(run())


def test_lookup_hits_say_why_when_unknown() -> None:
    """Fail closed: the recording's first snapshot (capture not started yet), and its last one with the
    flow_lookup series taken out (what capture without the per-packet hooks records), give reasons."""
    snapshots = [obj["ovstop"]["data"] for obj in LINES if obj.get("ovstop", {}).get("kind") == "snapshot"]
    row = LAST_DUMP["tables"]["dp_flows"][0]
    before = snapshot_doc.from_dict(snapshots[0])
    assert "flow_lookup_hits" not in snapshots[0]["tables"]
    assert flow_lookup_hits(before, row) == f"no capture ({snapshots[0]['health']['ebpf']['reason']})"
    shallow = {**LAST_DUMP, "series": [s for s in LAST_DUMP["series"] if "flow_lookup" not in s["name"]]}
    assert str(flow_lookup_hits(snapshot_doc.from_dict(shallow), row)).startswith("deep probes off")
    assert flow_lookup_hits(snapshot_doc.from_dict(LAST_DUMP), row) == SUMMARY["flow_packets"][row["ufid"]]
    assert str(
        flow_lookup_hits(snapshot_doc.from_dict(LAST_DUMP), {**row, "datapath": "netdev@ovs-netdev"})
    ).startswith("userspace datapath")
