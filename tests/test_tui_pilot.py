"""The Textual app driven by Pilot against a REAL sandbox switch (tests/conftest.py ``sandbox``), plus a
replay of a recording made from that switch."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from ovstop.collect.datapath import HIT, MISSED
from ovstop.collect.sampler import Sampler
from ovstop.collect.upcall import CURRENT, LIMIT
from ovstop.events.recording import Recorder
from ovstop.export import snapshot as snapshot_doc
from ovstop.model.metric import Histogram, Kind
from ovstop.runtime import Options, Runtime, open_runtime
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator
from ovstop.tui.app import OvstopApp
from ovstop.tui.feed import LiveFeed, ReplayFeed
from ovstop.tui.format import num, pct
from ovstop.tui.header import HeaderBar
from ovstop.tui.help import HelpScreen
from ovstop.tui.histograms_pane import HistogramsPane
from ovstop.tui.lookup_pane import LookupPane
from ovstop.tui.metrics_pane import MetricsPane

LARGE = (200, 50)
SMALL = (80, 24)


@pytest.fixture(scope="module")
def runtime(sandbox: SandboxSwitch) -> Iterator[Runtime]:
    """A live runtime on the shared sandbox, with traffic so that datapath flows and rates exist."""
    traffic = TrafficGenerator(sandbox, rate_pps=300)
    traffic.start()
    rt = open_runtime(Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote))
    try:
        yield rt
    finally:
        rt.close()
        traffic.stop()


async def _until(pilot, predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _ready(app: OvstopApp) -> bool:
    """Three rounds in (rates, interval histograms, flow rates all exist) and flows dumped."""
    snap = app.shown
    return snap is not None and app.snapshots_received >= 3 and bool(snap.tables.get("dp_flows"))


def _plain(widget: Static) -> str:
    return str(widget.render())


def test_every_pane_shows_the_values_of_the_snapshot(runtime: Runtime) -> None:
    app = OvstopApp(LiveFeed(runtime.sampler, 1.0))

    async def run() -> None:
        async with app.run_test(size=LARGE) as pilot:
            await _until(pilot, lambda: _ready(app))
            await pilot.press("p")  # freeze the view so that the snapshot compared is the one shown
            snap = app.shown
            assert snap is not None and app.showing_all()

            header = _plain(app.query_one(HeaderBar))
            hit = snap.rate_total("ovs_vswitchd_datapath_hit_total")
            miss = snap.rate_total("ovs_vswitchd_datapath_missed_total")
            assert f"#{snap.seq}" in header and "PAUSED" in header
            assert f"OVS {snap.meta['ovs_version']}" in header
            assert f"hit {num(hit)}/s miss {num(miss)}/s" in header
            assert pct(hit, (hit or 0) + (miss or 0)) in header
            assert "unixctl up" in header and "ovsdb up" in header and "ebpf off" in header

            metrics = app.query_one(MetricsPane)
            [dp_hit] = snap.find("ovs_vswitchd_datapath_hit_total")
            leaf = metrics._leaves[(dp_hit.name, dp_hit.labels)][0]
            assert leaf.parent is not None
            leaf.parent.expand()  # hidden leaves are labelled when their branch opens
            await pilot.pause()
            _, text = metrics._leaves[(dp_hit.name, dp_hit.labels)]
            assert num(dp_hit.value) in text and f"{num(dp_hit.rate)}/s" in text
            assert len(metrics._leaves) == len(snap.series)

            hist = app.query_one(HistogramsPane)
            histos = [s for s in snap.series if s.spec.kind is Kind.HISTOGRAM]
            assert histos and len(hist._items) == len(histos)
            first = histos[0]
            assert isinstance(first.interval_histogram, Histogram)
            assert f"count {num(first.interval_histogram.count)}" in hist._items[(first.name, first.labels)][1]

            events = app.query_one("#events-table", DataTable)
            status = _plain(app.query_one("#events-status", Static))
            # no capture on this host's sandbox: the pane says why (the runtime's reason) and shows flow changes
            assert status.startswith(f"no upcall events: {runtime.events_reason}. Showing datapath flows installed/")
            # (the tracker goes on while the view is paused: compare the pane with itself, as rendered)
            match = re.search(r"\(dpctl/dump-flows diff\): (\d+) changes so far$", status)
            assert match, status
            assert events.row_count == min(int(match[1]), 500) > 0

            lookup = app.query_one("#lookup-table", DataTable)
            row = [str(c) for c in lookup.get_row(dp_hit.label("datapath"))]
            assert row[-4] == num(dp_hit.rate) and row[-3] == num(miss)
            pmd = snap.find("ovs_vswitchd_poll_threads_megaflow_hit_total")[0]
            scope = f"{pmd.label('thread')}@{pmd.label('datapath').partition('@')[2]}"
            assert str(lookup.get_row(scope)[3]).startswith(num(pmd.rate))

            flows = app.query_one("#flows-table", DataTable)
            stats = snap.tables["dp_flows"]
            assert flows.row_count == min(len(stats), 200)
            top = str(flows.get_row_at(0)[1])
            assert top == num(max(s["packets_rate"] or 0.0 for s in stats))

    asyncio.run(run())


def test_keys_do_what_the_help_says(runtime: Runtime, tmp_path: Path) -> None:
    feed = LiveFeed(runtime.sampler, 0.5)
    app = OvstopApp(feed, snapshot_dir=tmp_path)

    async def run() -> None:
        async with app.run_test(size=LARGE) as pilot:
            await _until(pilot, lambda: _ready(app))

            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            help_text = _plain(app.screen.query_one("#help-text", Static))
            for binding in app.BINDINGS:
                assert binding.description in help_text  # type: ignore[union-attr]
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)

            # pause: the view stays on one snapshot while collection goes on
            await pilot.press("p")
            frozen = app.shown
            received = app.snapshots_received
            await _until(pilot, lambda: app.snapshots_received >= received + 2)
            assert app.shown is frozen and app.latest is not frozen
            assert "PAUSED" in _plain(app.query_one(HeaderBar))
            await pilot.press("p")
            assert app.shown is app.latest and "PAUSED" not in _plain(app.query_one(HeaderBar))

            # filter: only matching series stay in the tree
            await pilot.press("slash", *"missed", "enter")
            metrics = app.query_one(MetricsPane)
            # (the filter matches names and label values: coverage counter=revalidate_missed_dp_flow stays too)
            assert metrics._leaves and all("missed" in f"{name} {labels}" for name, labels in metrics._leaves)
            assert any("missed" in name for name, _ in metrics._leaves)
            await pilot.press("slash", "escape")
            assert app.view.filter == "" and len(metrics._leaves) == len(app.shown.series)  # type: ignore[union-attr]

            # sort: s cycles the column, < and > the direction; the table follows (view paused: stable data)
            await pilot.press("p")
            lookup = app.query_one(LookupPane)
            await pilot.press("s")
            assert app.view.sort == "bytes"
            by_bytes = {str(k): s["bytes_rate"] or 0.0 for k, s in _flow_rows(app).items()}
            shown = [by_bytes[k] for k in lookup.order]
            assert shown == sorted(shown, reverse=True)
            await pilot.press("less_than_sign")
            shown = [by_bytes[k] for k in lookup.order]
            assert shown == sorted(shown)
            await pilot.press("greater_than_sign", "s", "s", "s")
            assert app.view.sort == "packets" and not app.view.reverse
            await pilot.press("p")

            # pane switch: 1-4 zoom one pane, 0 shows all four
            await pilot.press("3")
            assert [n for n in (1, 2, 3, 4) if app.pane(n).display] == [3]
            await pilot.press("0")
            assert all(app.pane(n).display for n in (1, 2, 3, 4))

            # snapshot writing: what is shown (paused, so that it is still shown when compared)
            await pilot.press("p", "w")
            written = list(tmp_path.glob("ovstop-snapshot-*.json"))
            assert len(written) == 1
            doc = json.loads(written[0].read_text())
            assert snapshot_doc.from_dict(doc).seq == app.shown.seq  # type: ignore[union-attr]
            await pilot.press("p")

            # interval: + and - step through the intervals; the sampler thread follows
            await pilot.press("plus")
            assert feed.interval == 1.0 and "every 1s" in _plain(app.query_one(HeaderBar))
            await pilot.press("minus", "minus")
            assert feed.interval == 0.25
            rounds = feed.rounds

            def scheduled() -> float:
                return feed.next_round_at - feed.round_started

            await _until(pilot, lambda: feed.rounds >= rounds + 4 and scheduled() == 0.25, timeout=60.0)

            # space: refresh now, even with a long interval (once the thread waits on it)
            await pilot.press("plus", "plus", "plus", "plus")
            assert feed.interval == 5.0
            await _until(pilot, lambda: scheduled() == 5.0, timeout=60.0)
            rounds = feed.rounds
            await pilot.press("space")
            await _until(pilot, lambda: feed.rounds > rounds, timeout=3.0)

            await pilot.press("q")
        assert app.return_value in (None, 0)

    asyncio.run(run())


def _flow_rows(app: OvstopApp) -> dict[str, Mapping[str, Any]]:
    """The shown snapshot's flow rows by the flow table's row key: the datapath, pmd and ufid of each."""
    assert app.shown is not None
    return {"\x1f".join((r["datapath"], r["pmd"] or "", r["ufid"])): r for r in app.shown.tables["dp_flows"]}


def test_small_terminal_shows_one_readable_pane_at_a_time(runtime: Runtime) -> None:
    app = OvstopApp(LiveFeed(runtime.sampler, 1.0))

    async def run() -> None:
        async with app.run_test(size=SMALL) as pilot:
            await _until(pilot, lambda: app.snapshots_received >= 3)
            assert [n for n in (1, 2, 3, 4) if app.pane(n).display] == [1]
            await pilot.press("4")
            assert [n for n in (1, 2, 3, 4) if app.pane(n).display] == [4]
            await _until(pilot, lambda: _ready(app))  # flows are dumped once a pane shows them
            flows = app.query_one("#flows-table", DataTable)
            assert flows.size.height >= 3 and flows.row_count > 0
            header = _plain(app.query_one(HeaderBar))
            snap = app.shown
            assert snap is not None
            hit, miss = snap.rate_total(HIT.name), snap.rate_total(MISSED.name)
            flows, limit = snap.total(CURRENT.name), snap.total(LIMIT.name)
            assert None not in (hit, miss, flows, limit)
            assert f"dp hit {num(hit)}/s miss {num(miss)}/s" in header
            assert f"flows {num(flows)}/{num(limit)}" in header

    asyncio.run(run())


def test_replay_of_a_recording_drives_the_same_ui(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    with Recorder(path) as rec:
        snaps = []
        for _ in range(3):
            snaps.append(runtime.sampler.sample())
            rec.snapshot(snapshot_doc.to_dict(snaps[-1]))
    feed = ReplayFeed(str(path), speed=float("inf"))
    app = OvstopApp(feed)

    async def run() -> None:
        async with app.run_test(size=LARGE) as pilot:
            # at infinite speed the three snapshots arrive at once: the app may skip to the newest
            await _until(pilot, lambda: feed.snapshots == 3 and app.shown is not None)
            await _until(pilot, lambda: app.shown.seq == snaps[-1].seq)  # type: ignore[union-attr]
            header = _plain(app.query_one(HeaderBar))
            assert "replay" in header and f"#{snaps[-1].seq}" in header
            assert len(app.query_one(MetricsPane)._leaves) == len(snaps[-1].series)
            assert not app.check_action("interval", (1,)) and app.check_action("step", ())

    asyncio.run(run())


def test_a_failing_round_shows_collection_stopped_and_recovers(runtime: Runtime) -> None:
    """A listener failing on a full disk (a recorder, say) fails the round: the header says so over the last
    good snapshot, the feed keeps retrying, and the first good round clears it."""
    sampler = Sampler(runtime.sources, runtime.sampler.collectors)
    full = open("/dev/full", "wb", buffering=0)  # noqa: SIM115 - closed below; every write is ENOSPC
    broken = threading.Event()

    def record(snap: object) -> None:
        if broken.is_set():
            full.write(b"{}\n")

    sampler.listeners.append(record)
    feed = LiveFeed(sampler, 0.25)
    app = OvstopApp(feed)

    async def run() -> None:
        async with app.run_test(size=LARGE) as pilot:
            await _until(pilot, lambda: app.shown is not None)
            broken.set()
            header = app.query_one(HeaderBar)
            await _until(pilot, lambda: "collection stopped" in _plain(header))
            text = _plain(header)
            assert "STALE since" in text and "No space left on device" in text
            shown = app.shown.seq  # type: ignore[union-attr]
            failing_rounds = sampler.latest.seq  # type: ignore[union-attr]
            await _until(pilot, lambda: sampler.latest.seq >= failing_rounds + 2)  # type: ignore[union-attr]
            assert app.shown.seq == shown and "collection stopped" in _plain(header)  # type: ignore[union-attr]
            broken.clear()
            await _until(pilot, lambda: "collection stopped" not in _plain(header))
            assert app.shown.seq > shown and feed.failure == ""  # type: ignore[union-attr]

    try:
        asyncio.run(run())
    finally:
        full.close()
