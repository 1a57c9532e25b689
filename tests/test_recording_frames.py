"""``--record`` as frames (values that changed; rates and histories rebuilt on replay), gzip and rotation,
recorded from a real sandbox switch and replayed through the same decoder the UI uses."""

from __future__ import annotations

import copy
import functools
import gzip
import json
import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli_errors import assert_one_line_error, run

from ovstop.errors import OvstopError
from ovstop.events.recording import read_lines, recording_parts
from ovstop.events.replay import Replayer
from ovstop.export.frames import VERSION, FrameDecoder, FrameEncoder
from ovstop.model.flows import CHANGES, FLOWS
from ovstop.model.metric import Histogram
from ovstop.model.store import MetricStore, Snapshot, SourceHealth
from ovstop.runtime import Options, open_runtime
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator

ROUNDS = 60
RECORDINGS = Path(__file__).resolve().parent / "data" / "recordings"


def _flows(snap: Snapshot) -> list[tuple[Any, ...]]:
    """Every flow row's identity and counters (one megaflow has a row per PMD thread that installed it)."""
    return sorted(
        (r["datapath"], r["pmd"] or "", r["ufid"], r["key"], r["actions"], r["packets"], r["bytes"])
        for r in snap.tables.get(FLOWS, [])
    )


def _other_tables(snap: Snapshot) -> dict[str, Any]:
    """The tables a frame writes whole or as row edits, as JSON reads them back."""
    return json.loads(json.dumps({k: v for k, v in snap.tables.items() if k not in (FLOWS, CHANGES)}))


def _frames(part: Path) -> list[dict[str, Any]]:
    return [line.snapshot for line in read_lines(part) if line.snapshot is not None]


def _replay(part: Path) -> list[Snapshot]:
    decoder = FrameDecoder()
    replayed: list[Snapshot] = []
    replayer = Replayer(part, lambda ev: None, lambda ts, data: replayed.append(decoder.decode(data)), speed=math.inf)
    replayer.poll(0.0)
    assert replayer.done
    return replayed


def _assert_replayed_as_live(replayed: list[Snapshot], live: list[Snapshot]) -> None:
    """Each replayed snapshot is the live one of its seq: series, values, rates, health, tables and flows."""
    by_seq = {s.seq: s for s in live}
    assert [s.seq for s in replayed] == sorted(by_seq)[-len(replayed) :]
    for n, got in enumerate(replayed):
        want = by_seq[got.seq]
        assert [(s.name, s.labels, s.value, s.stale) for s in got.series] == [
            (s.name, s.labels, s.value, s.stale) for s in want.series
        ]
        assert got.health == want.health and got.timestamp == want.timestamp
        assert _flows(got) == _flows(want)
        assert _other_tables(got) == _other_tables(want)
        if n > 0:  # rates need the previous frame, which the first replayed one lacks
            assert [s.rate for s in got.series] == pytest.approx([s.rate for s in want.series], rel=1e-6)
    last, want = replayed[-1], by_seq[replayed[-1].seq]
    for got_series, want_series in zip(last.series, want.series, strict=True):
        kept = len(got_series.history)
        assert list(got_series.history) == pytest.approx(list(want_series.history)[-kept:] if kept else [], rel=1e-6)


def _record(sandbox: SandboxSwitch, options: Options, rounds: int, between: Callable[[int], None]) -> list[Snapshot]:
    """Record ``rounds`` rounds (after the first) of the switch under 300 packets/s; the live snapshots."""
    traffic = TrafficGenerator(sandbox, rate_pps=300)
    traffic.start()
    rt = open_runtime(replace(options, unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False))
    live: list[Snapshot] = []
    try:
        rt.sampler.listeners.append(live.append)
        live.append(rt.first_sample())  # the recording starts here, with this snapshot
        for n in range(rounds):
            between(n)
            rt.sampler.sample()
    finally:
        rt.close()
        traffic.stop()
    return live


def test_rotated_gzip_recording_replays_the_values_rates_and_flows_it_saw(
    sandbox: SandboxSwitch, tmp_path: Path
) -> None:
    path = tmp_path / "rec.jsonl.gz"
    options = Options(record=str(path), record_rotate=12 * 1024, record_keep=3)
    live = _record(sandbox, options, ROUNDS, lambda n: None)

    parts = recording_parts(path)
    # The oldest parts were rotated away: the total is bounded.
    assert len(parts) == 3 and path not in parts
    for part in parts:
        assert part.read_bytes()[:2] == b"\x1f\x8b"
        lines = list(read_lines(part))
        assert lines[0].kind == "startup"
        assert "series" in _frames(part)[0], f"{part.name} does not start with a key frame"
    replayed = _replay(recording_parts(parts[-1])[0])
    assert 3 <= len(replayed) < ROUNDS
    _assert_replayed_as_live(replayed, live)


def test_series_that_come_and_go_are_edits_of_the_list(fresh_sandbox: SandboxSwitch, tmp_path: Path) -> None:
    """A port added and deleted mid-recording: its series join and leave the frames' list in place (no key
    frame, whose whole flow table and specs would cost ten delta frames), and the replay follows."""
    path = tmp_path / "rec.jsonl.gz"

    def ports(n: int) -> None:
        if n == 5:
            fresh_sandbox.vsctl("add-port", "br0", "added0", "--", "set", "Interface", "added0", "type=dummy")
        elif n == 12:
            fresh_sandbox.vsctl("del-port", "br0", "added0")

    live = _record(fresh_sandbox, Options(record=str(path)), 18, ports)
    frames = _frames(path)
    assert ["series" in frame for frame in frames] == [True] + [False] * (len(frames) - 1)
    edits = [frame["edit"] for frame in frames if "edit" in frame]
    added = [labels for edit in edits for _, _, labels in edit["added"]]
    gone = [i for edit in edits for i in edit["gone"]]
    assert any(labels.get("interface") == "added0" for labels in added), added
    assert gone, "the deleted port's series did not leave the list"
    assert any(isinstance(rows, dict) for frame in frames for rows in frame.get("tables", {}).values()), (
        "no table was written as row edits"
    )
    _assert_replayed_as_live(_replay(path), live)


def test_one_megaflow_on_two_pmd_threads_is_two_rows_in_the_replay(
    fresh_sandbox: SandboxSwitch, tmp_path: Path
) -> None:
    """A port with two receive queues, one on each PMD thread: the same packet through both queues makes one
    megaflow (one ufid) in each thread's table. Both rows replay with their own counters, and neither is
    written whole again in every frame (version 1 kept flows by ufid alone: one row was lost)."""
    sandbox = fresh_sandbox
    sandbox.vsctl("set", "Interface", "p1", "options:n_rxq=2")
    path = tmp_path / "rec.jsonl"
    packet = (
        "in_port(1),eth(src=50:54:00:00:00:01,dst=50:54:00:00:00:02),eth_type(0x0800),"
        "ipv4(src=10.9.0.1,dst=10.9.0.2,proto=17,tos=0,ttl=64,frag=no),udp(src=4242,dst=4243)"
    )

    def send(n: int) -> None:
        for qid, count in (("0", 1), ("1", 2 + n % 3)):
            for _ in range(count):
                sandbox.appctl("netdev-dummy/receive", "p1", "--qid", qid, packet)

    live = _record(sandbox, Options(record=str(path)), 8, send)
    dumped = sandbox.appctl("dpctl/dump-flows", "-m")
    ufids = {line.split(",", 1)[0] for line in dumped.splitlines() if "udp(src=4242,dst=4243)" in line}
    assert len(ufids) == 1, dumped  # one megaflow...
    assert sum(line.startswith(next(iter(ufids))) for line in dumped.splitlines()) == 2, dumped  # ...in 2 threads
    ufid = next(iter(ufids)).removeprefix("ufid:")
    rows = [r for r in live[-1].tables[FLOWS] if r["ufid"] == ufid]
    assert sorted(r["pmd"] for r in rows) == ["pmd-c0", "pmd-c1"] and len({r["packets"] for r in rows}) == 2
    frames = _frames(path)
    sent_whole = [sum(row.get("ufid") == ufid for row in frame["tables"][FLOWS]["new"]) for frame in frames]
    assert sum(sent_whole) == 2, sent_whole  # each row once, when it appeared
    _assert_replayed_as_live(_replay(path), live)


V1_RECORDING = RECORDINGS / "sandbox-frames-v1.jsonl.gz"
"""Frames of version 1 (absolute flow indices, every moved counter, a key frame for every new series), recorded
by the ovstop of 2026-12-07 (see the README there); the live run's series and flows were saved beside them."""


def _v1_truth() -> dict[str, Any]:
    return json.loads(gzip.decompress((RECORDINGS / "sandbox-frames-v1.live.json.gz").read_bytes()))


def _assert_as_saved(replayed: list[Snapshot], truth: dict[str, Any]) -> None:
    assert [str(s.seq) for s in replayed] == list(truth)
    for got in replayed:
        want = truth[str(got.seq)]
        values = [
            [s.name, dict(s.labels), None if isinstance(s.value, Histogram) else s.value, s.stale] for s in got.series
        ]
        assert values == want["series"]
        assert {r["ufid"]: [r["packets"], r["bytes"]] for r in got.tables.get(FLOWS, [])} == want["flows"]
        assert sorted(got.tables) == want["tables"]


@functools.cache
def _v1_as_v2() -> list[dict[str, Any]]:
    """The version 1 recording decoded and encoded again: real frames of this version, with series edits (its
    key frames for new coverage counters), row edits and moved flows."""
    decoder, encoder = FrameDecoder(), FrameEncoder()
    return [json.loads(json.dumps(encoder.encode(decoder.decode(frame)))) for frame in _frames(V1_RECORDING)]


def test_a_version_1_recording_still_replays() -> None:
    _assert_as_saved(_replay(V1_RECORDING), _v1_truth())


def test_a_version_1_recording_encoded_again_replays_what_was_live() -> None:
    """The version 2 frames replay what was live, and all that the version 1 replay shows: histograms and
    tables (written as row edits now) included."""
    frames = copy.deepcopy(_v1_as_v2())
    assert {frame["version"] for frame in frames} == {VERSION}
    assert "series" in frames[0] and not any("series" in frame for frame in frames[1:])
    assert any("edit" in frame for frame in frames)
    assert any(isinstance(rows, dict) for frame in frames for rows in frame.get("tables", {}).values())
    decoder = FrameDecoder()
    replayed = [decoder.decode(frame) for frame in frames]
    _assert_as_saved(replayed, _v1_truth())
    for got, want in zip(replayed, _replay(V1_RECORDING), strict=True):
        assert [(s.name, s.labels, s.value, s.rate) for s in got.series] == [
            (s.name, s.labels, s.value, s.rate) for s in want.series
        ]
        assert _other_tables(got) == _other_tables(want) and _flows(got) == _flows(want)


def test_a_recording_that_starts_without_series_starts_with_a_key_frame() -> None:
    """Every source down in the first round: no series, yet the first frame is a key frame (a delta frame
    first is refused as damaged, and so was the whole recording)."""
    store, encoder, decoder = MetricStore(), FrameEncoder(), FrameDecoder()
    down = {"unixctl": SourceHealth("unixctl", False, "connection refused")}
    first = store.update([], 1.0, 1000.0, down)
    assert not first.series
    frame = encoder.encode(first)
    assert "series" in frame
    got = decoder.decode(json.loads(json.dumps(frame)))
    assert not got.series and got.health == first.health


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document, as the keys and indices that lead there."""
    yield at
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from _paths(value, (*at, key))


GARBAGE = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(), st.text(max_size=5), st.just([]), st.just({})
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_damaged_frame_is_one_line_error(data: st.DataObject) -> None:
    """Any one place of a real frame (key frame, series edit, row edit, moved flow) replaced with garbage:
    decoding says so in one line (OvstopError) or goes on; never another exception."""
    frames = _v1_as_v2()
    n = data.draw(st.integers(0, len(frames) - 1))
    where = data.draw(st.sampled_from([p for p in _paths(frames[n]) if p]))
    damaged = copy.deepcopy(frames[n])
    parent = functools.reduce(operator.getitem, where[:-1], damaged)
    parent[where[-1]] = data.draw(GARBAGE)
    decoder = FrameDecoder()
    for frame in [*frames[:n], damaged, *frames[n + 1 :]]:
        try:
            decoder.decode(frame)
        except OvstopError as exc:
            assert "\n" not in str(exc)


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
