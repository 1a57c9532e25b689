"""Time scrub on a real sandbox: keys move the whole UI back through the kept snapshots and back to live;
a tunnel taken down for real is found again with B (live) and, in a recording of it, with F (replay)."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ovstop import health
from ovstop.events.recording import Recorder
from ovstop.export import snapshot as snapshot_doc
from ovstop.model.metric import Histogram
from ovstop.runtime import Options, Runtime, open_runtime
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.timeline import Timeline
from ovstop.tui.app import OvstopApp
from ovstop.tui.feed import LiveFeed, ReplayFeed
from ovstop.tui.header import HeaderBar
from ovstop.tui.headline import clock_text


async def until(predicate: Callable[[], bool], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.05)


def header(app: OvstopApp) -> str:
    return str(app.query_one(HeaderBar).render())


def failing(app: OvstopApp) -> list[str]:
    assert app.shown is not None
    return health.failing(health.rows(app.shown))


def test_scrub_back_forward_live_and_to_a_real_failure(fresh_sandbox: SandboxSwitch, tmp_path: Path) -> None:
    sw = fresh_sandbox
    record = tmp_path / "rec.jsonl"
    rt: Runtime = open_runtime(Options(unixctl=str(sw.unixctl_path), db=sw.db_remote, ebpf=False))
    recorder = Recorder(record)
    rt.sampler.listeners.append(lambda snap: recorder.snapshot(snapshot_doc.to_dict(snap)))
    app = OvstopApp(LiveFeed(rt.sampler, 0.3), history_depth=60)

    async def run() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            await until(lambda: len(app.timeline) >= 3 and app.timeline.span >= 2.5)  # replay steps 1 s below
            sw.vsctl("set", "Interface", "geneve0", "bfd:enable=true")  # a real failure, then recovery
            await until(lambda: "✗ tunnel_down" in header(app))
            sw.vsctl("remove", "Interface", "geneve0", "bfd", "enable")
            await until(lambda: "tunnel_down" not in header(app))
            received = app.snapshots_received
            await until(lambda: app.snapshots_received >= received + 3)

            await pilot.press("b", "b")
            kept = app.timeline
            assert app.scrub_at is not None and app.shown is not None
            viewed = app.shown
            assert viewed.timestamp == app.scrub_at and viewed is not app.latest
            shown_seq = viewed.seq
            assert f"#{shown_seq}" in header(app) and f"viewing {clock_text(viewed.timestamp)}" in header(app)
            received = app.snapshots_received
            await until(lambda: app.snapshots_received >= received + 2)
            assert app.shown is viewed  # collection goes on, the view stays in the past

            await pilot.press("f")
            assert app.shown is not None and app.shown.seq > shown_seq

            await pilot.press("B")  # back to the newest moment the tunnel was down
            assert "tunnel_down" in failing(app) and "✗ tunnel_down" in header(app)
            index = kept.index_at(app.shown.timestamp)
            assert all("tunnel_down" not in health.failing(health.rows(kept[i])) for i in range(index + 1, len(kept)))

            await pilot.press("t")
            assert app.scrub_at is None and app.shown is app.latest and "viewing" not in header(app)
            app.feed.stop()  # no round may land while the app shuts down

    try:
        asyncio.run(run())
    finally:
        rt.close()
        recorder.close()

    # the recording of that run, replayed: F plays on to the first snapshot where the tunnel was down
    replay = ReplayFeed(str(record))
    replay.replayer.pause()
    app2 = OvstopApp(replay)

    async def run_replay() -> None:
        async with app2.run_test(size=(200, 50)) as pilot:
            await pilot.press("n")
            await until(lambda: app2.shown is not None)
            assert not failing(app2)
            await pilot.press("F")
            await until(lambda: app2.shown is not None and "tunnel_down" in failing(app2))
            first = app2.shown
            assert "✗ tunnel_down" in header(app2)
            # every snapshot played on the way is kept (the UI may skip drawing some): none failed before
            assert app2.timeline[-1] is first and len(app2.timeline) == replay.snapshots
            assert not any(
                "tunnel_down" in health.failing(health.rows(app2.timeline[i])) for i in range(len(app2.timeline) - 1)
            )
            await pilot.press("b")  # the moment before, kept in the replay's timeline, was healthy
            assert app2.shown is not first and "tunnel_down" not in failing(app2)
            await pilot.press("t")
            assert app2.shown is first

    asyncio.run(run_replay())


def test_seek_to_a_time_and_the_memory_cost(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    rt = open_runtime(Options(unixctl=str(sw.unixctl_path), db=sw.db_remote, ebpf=False))
    app = OvstopApp(LiveFeed(rt.sampler, 0.5), history_depth=60)

    async def run() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            await until(lambda: len(app.timeline) >= 3 and app.timeline.span >= 1.0)
            target = app.timeline[0]
            await pilot.press("g", *time.strftime("%H:%M:%S", time.localtime(target.timestamp + 0.999)), "enter")
            assert app.shown is not None and app.timeline.index_at(app.shown.timestamp) <= 2
            assert abs(app.shown.timestamp - target.timestamp) < 1.0
            badge = header(app)
            cost = re.search(r"≈ (\S+)B", badge)
            assert cost, badge
            await pilot.press("g", *"nonsense", "enter")
            assert app.shown is not None  # a bad time is a notice, not a crash
            assert not app.query_one("#seek").display
            app.feed.stop()  # no round may land while the app shuts down

    try:
        asyncio.run(run())
    finally:
        rt.close()


def test_timeline_keeps_its_depth_and_counts_its_cost(fresh_sandbox: SandboxSwitch) -> None:
    rt = open_runtime(Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False))
    try:
        snaps = [rt.sampler.sample() for _ in range(3)]
    finally:
        rt.close()
    timeline = Timeline(depth=0.0)
    for snap in snaps:
        timeline.add(snap)
    assert len(timeline) == 1 and timeline[0] is snaps[-1] and timeline.cost_bytes > 0
    deep = Timeline(depth=3600)
    costs = []
    for snap in snaps:
        deep.add(snap)
        costs.append(deep.cost_bytes)
    assert len(deep) == 3 and 0 < costs[0] < costs[1] < costs[2]
    assert deep.index_at(snaps[1].timestamp) == 1 and deep.index_at(0.0) == 0
    capped = Timeline(depth=3600, max_bytes=deep.cost_bytes - 1)
    for snap in snaps:
        capped.add(snap)
    assert [capped[i] for i in range(len(capped))] == snaps[1:]


def test_kept_snapshots_come_back_equal(fresh_sandbox: SandboxSwitch) -> None:
    """Kept in columns, every snapshot is rebuilt equal to the one added: real rounds (a history of 3, so the
    store moves its series to new buffers on the way), and one with stale series, a NaN, an int and a
    replayed history (a tuple)."""
    options = Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False, history=3)
    rt = open_runtime(options)
    try:
        snaps = [rt.sampler.sample() for _ in range(14)]
    finally:
        rt.close()
    last = snaps[-1]
    odd = [replace(s, stale=True) for s in last.series[:3]]
    odd += [replace(last.series[3], value=math.nan), replace(last.series[4], value=7, rate=0.0, history=(1.0, 2))]
    snaps.append(replace(last, seq=last.seq + 1, timestamp=last.timestamp + 1, series=(*odd, *last.series[5:])))
    timeline = Timeline(depth=3600, max_bytes=2**40)
    for snap in snaps:
        timeline.add(snap)
    assert any(isinstance(s.value, Histogram) for s in last.series)  # kept aside, as objects
    for i, snap in enumerate(snaps[:-1]):
        built = timeline[i]
        assert built == snap and built is not snap and timeline[i] is built
        assert [type(s.value) for s in built.series] == [type(s.value) for s in snap.series]
        assert [list(s.history) for s in built.series] == [list(s.history) for s in snap.series]
    assert timeline[-1] is snaps[-1]
    timeline.add(replace(last, seq=last.seq + 2, timestamp=last.timestamp + 2))
    built = timeline[-2]
    nan = built.series[3].value
    assert built == snaps[-1] and isinstance(nan, float) and math.isnan(nan)
    assert [s.stale for s in built.series[:5]] == [True, True, True, False, False]
    assert type(built.series[4].value) is int and built.series[4].history == (1.0, 2)
