"""``--replay`` on damaged, hostile or foreign files: one line and an exit at start-up, or a visible stop
mid-file; never a traceback, a silent freeze, or a flag silently ignored.

Retis captures are Retis's own files (read in place from ../shared/retis-fixtures, see SOURCE.md there).
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from pathlib import Path

import pytest
from test_cli_errors import assert_one_line_error, run
from textual.widgets import DataTable

from ovstop.events.recording import Recorder
from ovstop.model.store import Snapshot
from ovstop.tui.app import OvstopApp
from ovstop.tui.feed import METRICS, REPLAY, ReplayFeed
from ovstop.tui.header import HeaderBar
from ovstop.tui.view import ViewState

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "retis-fixtures"
PACKETS = FIXTURES / "retis__test_events_packets.json"  # upcalls and action_execute events, no snapshot lines
NESTED = "[" * 100_000 + "]" * 100_000 + "\n"


def recording(path: Path, *tail: str) -> Path:
    """A real two-snapshot recording (through ovstop's Recorder), then ``tail`` lines as they are."""
    doc = {
        "format": "ovstop-snapshot",
        "version": 1,
        "timestamp": 1.0,
        "seq": 1,
        "health": {},
        "specs": {},
        "series": [],
    }
    with Recorder(path) as rec:
        rec.snapshot(doc, timestamp=1_000_000_000)
        rec.snapshot({**doc, "seq": 2, "timestamp": 2.0}, timestamp=2_000_000_000)
    with path.open("a") as out:
        out.writelines(tail)
    return path


def play(path: Path) -> tuple[ReplayFeed, list[Snapshot]]:
    """Play ``path`` to its end (or its stop) at infinite speed; the snapshots the app would have received."""
    feed = ReplayFeed(str(path), speed=float("inf"))
    got: list[Snapshot] = []
    feed.start(got.append)
    assert feed._thread is not None
    feed._thread.join(timeout=60)
    assert not feed._thread.is_alive()
    return feed, got


def test_deep_nesting_on_the_first_line_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    path.write_text(NESTED)
    assert_one_line_error(run("--replay", str(path)), "nested too deeply", f"{path}:1")


def test_a_file_without_line_ends_is_one_line_in_bounded_memory() -> None:
    """Before: ``--replay /dev/zero`` read one endless line until memory ran out."""
    result = run("--replay", "/dev/zero")
    assert_one_line_error(result, "/dev/zero:1: line longer than 64 MiB")
    # The kernel's peak resident size of the children waited for (this one included): the line was capped.
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mib < 512, peak_mib


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (NESTED, "stopped at line 4: JSON nested too deeply"),
        ('{"common": {"timestamp": 3000000000}, "ovstop": {"kind": "snap\n', "stopped at line 4: not a JSON event"),
        ('{"common": {"timestamp": "x"}}\n', "stopped at line 4: event without an integer common.timestamp"),
    ],
    ids=["nested", "truncated", "bad-timestamp"],
)
def test_a_damaged_line_mid_file_stops_with_the_reason_shown(tmp_path: Path, tail: str, reason: str) -> None:
    """Before: the replay froze at the line before (or its thread died on a RecursionError), with no message."""
    feed, got = play(recording(tmp_path / "rec.jsonl", tail))
    assert feed.snapshots == 2
    last = got[-1]
    assert last.seq == 2  # what was shown stays, with the replay marked down and why
    assert not last.health[REPLAY].up and last.health[REPLAY].reason.startswith(reason)


def test_the_header_says_where_and_why_the_replay_stopped(tmp_path: Path) -> None:
    feed, got = play(recording(tmp_path / "rec.jsonl", '{"common": {"timest\n'))
    header = HeaderBar.render_content(got[-1], ViewState(feed, time.time), False, time.time()).plain
    assert "replay down: stopped at line 4" in header and "STALE since" in header


@pytest.mark.parametrize("mode", [["--headless"], ["snapshot"], ["--check"], ["--sandbox"]])
def test_replay_with_a_live_mode_is_refused(tmp_path: Path, mode: list[str]) -> None:
    """Before: ``snapshot --replay`` wrote a live snapshot and exited 0; ``--headless`` ignored the file."""
    path = recording(tmp_path / "rec.jsonl")
    out = tmp_path / "out.json"
    assert_one_line_error(run(*mode, "--replay", str(path), "-o", str(out)), "--replay", mode[0])
    assert not out.exists()


@pytest.mark.skipif(not PACKETS.exists(), reason=f"Retis fixtures not found in {FIXTURES}")
def test_a_retis_capture_fills_the_event_pane() -> None:
    """Before: a capture without ovstop snapshot lines left the screen at "waiting for the first sample…"."""
    expected = sum(1 for line in PACKETS.read_text().splitlines() if '"ovs":' in line)
    feed = ReplayFeed(str(PACKETS), speed=float("inf"))
    app = OvstopApp(feed)

    async def scenario() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            deadline = time.monotonic() + 30
            while app.shown is None or app.query_one("#events-table", DataTable).row_count < expected:
                assert time.monotonic() < deadline, "the event pane did not fill"
                await pilot.pause(0.05)
            assert app.shown.health[METRICS].off

    asyncio.run(scenario())


def test_events_only_snapshot_when_stepping(tmp_path: Path) -> None:
    if not PACKETS.exists():
        pytest.skip(f"Retis fixtures not found in {FIXTURES}")
    feed = ReplayFeed(str(PACKETS))
    got: list[Snapshot] = []
    feed._deliver = got.append  # stepping without the playback thread, as the app's `n` key does when paused
    assert feed.step(1e6) > 0
    assert got and not got[-1].series and feed.events.stats().accepted > 0


def test_replay_thread_survives_what_it_cannot_decode(tmp_path: Path) -> None:
    path = recording(
        tmp_path / "rec.jsonl",
        json.dumps({"common": {"timestamp": 3_000_000_000}, "ovstop": {"kind": "snapshot", "data": {"format": 1}}})
        + "\n",
    )
    _, got = play(path)
    assert not got[-1].health[REPLAY].up
    assert got[-1].health[REPLAY].reason.startswith("stopped at line 4: not an ovstop snapshot")
