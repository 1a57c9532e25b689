"""``--record`` as frames (values that changed; rates and histories rebuilt on replay), gzip and rotation,
recorded from a real sandbox switch and replayed through the same decoder the UI uses."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from test_cli_errors import assert_one_line_error, run

from ovstop.events.recording import read_lines, recording_parts
from ovstop.events.replay import Replayer
from ovstop.export.frames import FrameDecoder
from ovstop.model.store import Snapshot
from ovstop.runtime import Options, open_runtime
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator

ROUNDS = 60


def _flows(snap: Snapshot) -> dict[str, tuple[int, int, str]]:
    return {r["ufid"]: (r["packets"], r["bytes"], r["key"]) for r in snap.tables.get("dp_flows", [])}


def test_rotated_gzip_recording_replays_the_values_rates_and_flows_it_saw(
    sandbox: SandboxSwitch, tmp_path: Path
) -> None:
    path = tmp_path / "rec.jsonl.gz"
    traffic = TrafficGenerator(sandbox, rate_pps=300)
    traffic.start()
    rt = open_runtime(
        Options(
            unixctl=str(sandbox.unixctl_path),
            db=sandbox.db_remote,
            ebpf=False,
            record=str(path),
            record_rotate=12 * 1024,
            record_keep=3,
        )
    )
    live: list[Snapshot] = []
    try:
        rt.sampler.listeners.append(live.append)
        live.append(rt.first_sample())  # the recording starts here, with this snapshot
        for _ in range(ROUNDS):
            rt.sampler.sample()
    finally:
        rt.close()
        traffic.stop()

    parts = recording_parts(path)
    recorder = rt.events.recorder
    assert recorder is not None and recorder.parts == parts
    # The oldest parts were rotated away: the total is bounded.
    assert len(parts) == 3 and path not in parts and recorder.written > 3 * 12 * 1024
    for part in parts:
        assert part.read_bytes()[:2] == b"\x1f\x8b"
        lines = list(read_lines(part))
        assert lines[0].kind == "startup"
        first = next(line for line in lines if line.kind == "snapshot")
        assert "series" in (first.snapshot or {}), f"{part.name} does not start with a key frame"

    decoder = FrameDecoder()
    replayed: list[Snapshot] = []
    replayer = Replayer(
        recording_parts(parts[-1])[0],
        lambda ev: None,
        lambda ts, data: replayed.append(decoder.decode(data)),
        speed=math.inf,
    )
    replayer.poll(0.0)
    assert replayer.done and 3 <= len(replayed) < ROUNDS
    by_seq = {s.seq: s for s in live}
    assert [s.seq for s in replayed] == sorted(by_seq)[-len(replayed) :]
    for n, got in enumerate(replayed):
        want = by_seq[got.seq]
        assert [(s.name, s.labels, s.value, s.stale) for s in got.series] == [
            (s.name, s.labels, s.value, s.stale) for s in want.series
        ]
        assert got.health == want.health and got.timestamp == want.timestamp
        assert _flows(got) == _flows(want)
        if n > 0:  # rates need the previous frame, which the first replayed one lacks
            assert [s.rate for s in got.series] == pytest.approx([s.rate for s in want.series], rel=1e-6)
    last, want = replayed[-1], by_seq[replayed[-1].seq]
    for got_series, want_series in zip(last.series, want.series, strict=True):
        kept = len(got_series.history)
        assert list(got_series.history) == pytest.approx(list(want_series.history)[-kept:] if kept else [], rel=1e-6)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--record", "x.jsonl", "--record-rotate", "lots"], "expected a size"),
        (["--record", "x.jsonl", "--record-rotate", "1k"], "too small"),
        (["--record-rotate", "10M"], "needs --record"),
        (["--record", "x.jsonl", "--record-keep", "0"], "at least 1"),
        (["--record", "/dev/null", "--record-rotate", "1M"], "needs a regular file"),
    ],
)
def test_bad_rotation_flags(args: list[str], fragment: str) -> None:
    assert_one_line_error(run("--headless", "--unixctl", "/nonexistent", *args), fragment)
