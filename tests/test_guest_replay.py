"""A recording made in the QEMU guest replays on the host with the correlations the guest saw.

tests/data/recordings/guest-ebpf.jsonl was written by ``ovstop --headless --record`` on Debian 12's 6.1
kernel with the openvswitch module, guest-ebpf-trixie.jsonl on Debian 13's 6.12
(tests/guest/scenario_headless.py --save-fixture [NAME]; how: README.md next to it). Each one's
.summary.json holds what the guest checked on that run without ovstop's correlator: the upcall keys,
each upcall's enqueue queue_id, the ``dpctl/dump-flows`` packet count per ufid, the ct/NAT action, and the
/metrics deltas. Here the file goes through the same Replayer -> EventPipeline
(Correlator + EventStore) as live capture, and the correlator must find exactly those links.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ovstop.events.correlator import Correlator, UpcallSeries
from ovstop.events.pipeline import EventPipeline
from ovstop.events.recording import read_lines
from ovstop.events.replay import Replayer
from ovstop.events.store import EventStore

RECORDINGS = Path(__file__).resolve().parent / "data" / "recordings"
GUESTS = {"debian12": "guest-ebpf", "debian13": "guest-ebpf-trixie"}


@pytest.fixture(scope="module", params=sorted(GUESTS))
def recording(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    """Each guest's recording (Debian 12: Linux 6.1; Debian 13: Linux 6.12) and the summary the guest wrote."""
    name = GUESTS[request.param]
    return RECORDINGS / f"{name}.jsonl", json.loads((RECORDINGS / f"{name}.summary.json").read_text())


@pytest.fixture(scope="module")
def replayed(recording: tuple[Path, dict[str, Any]]) -> tuple[Correlator, EventStore, Replayer]:
    correlator, store = Correlator(), EventStore(max_events=100_000)
    replayer = Replayer(recording[0], EventPipeline(correlator, store), speed=math.inf)
    replayer.poll(0.0)
    assert replayer.done
    return correlator, store, replayer


def key(series: UpcallSeries) -> str:
    return f"{series.upcall.upcall_ts}/{series.upcall.upcall_cpu}"


def test_the_recording_is_the_guest_run(
    replayed: tuple[Correlator, EventStore, Replayer], recording: tuple[Path, dict[str, Any]]
) -> None:
    _, _, replayer = replayed
    path, summary = recording
    assert replayer.startup is not None and replayer.startup["machine"]["kernel_release"].endswith("-amd64")
    assert replayer.startup["retis_version"] == "v1.7.0"
    assert replayer.skipped == 0
    events = [line.event for line in read_lines(path) if line.event is not None]
    assert len(events) == summary["ovs_events"]
    counts: dict[str, int] = {}
    for ev in events:
        counts[ev.event_type] = counts.get(ev.event_type, 0) + 1
    assert counts == summary["event_counts"]


def test_every_upcall_is_linked_to_its_return_with_a_latency(
    replayed: tuple[Correlator, EventStore, Replayer], recording: tuple[Path, dict[str, Any]]
) -> None:
    correlator, _, _ = replayed
    summary = recording[1]
    series = correlator.series()
    assert sorted(key(s) for s in series) == summary["upcalls"]
    assert len(series) == summary["n_tuples"] + 1  # the N new 5-tuples and the NAT packet
    for s in series:
        ret = next(e for e in s.events if e.event_type == "upcall_return")
        assert ret.ret == 0 and s.upcall.cmd == 1  # MISS upcalls
        assert s.latency_ns is not None and s.latency_ns > 0
        assert s.latency_ns == ret.timestamp - s.upcall.timestamp
    # Every re-executed action, the NAT packet's output after the rewrite included, links to its enqueue.
    assert correlator.stats().orphans == summary["unlinked_actions"] == 0


def test_enqueue_queue_ids_link_the_reexecuted_packets(
    replayed: tuple[Correlator, EventStore, Replayer], recording: tuple[Path, dict[str, Any]]
) -> None:
    correlator, _, _ = replayed
    summary = recording[1]
    for s in correlator.series():
        enqueues = [e for e in s.events if e.event_type == "upcall_enqueue"]
        queue_id = summary["queue_ids"][key(s)]
        assert [e.queue_id for e in enqueues] == [queue_id]
        actions = [e for e in s.events if e.event_type == "action_execute"]
        assert all(e.queue_id == queue_id for e in actions)
        kinds = [f"{e.action.kind}:{e.action.port if e.action.port is not None else ''}" for e in actions if e.action]
        assert kinds == summary["reexecuted"][str(queue_id)]
    firsts = sorted(kinds[0] for kinds in summary["reexecuted"].values())
    assert firsts == ["ct:"] + [f"output:{summary['out_port']}"] * summary["n_tuples"]


def test_flow_lookup_hits_per_ufid_match_dump_flows(
    replayed: tuple[Correlator, EventStore, Replayer], recording: tuple[Path, dict[str, Any]]
) -> None:
    correlator, _, _ = replayed
    summary = recording[1]
    assert {f.ufid: f.hits for f in correlator.flows()} == summary["flow_packets"]
    assert set(summary["flow_packets"].values()) == {summary["repeats"]}
    assert len(summary["flow_packets"]) == summary["n_tuples"]


def test_ct_nat_action_in_the_nat_packets_series(
    replayed: tuple[Correlator, EventStore, Replayer], recording: tuple[Path, dict[str, Any]]
) -> None:
    correlator, _, _ = replayed
    summary = recording[1]
    cts = [(s, e) for s in correlator.series() for e in s.events if e.action is not None and e.action.kind == "ct"]
    assert len(cts) == 1
    series, ev = cts[0]
    expected = summary["ct"]
    assert ev.action is not None and ev.action.zone_id == expected["zone_id"] == 5
    assert ev.action.flags == expected["flags"]
    assert ev.action.nat is not None and vars(ev.action.nat) == expected["nat"]
    assert ev.queue_id == expected["queue_id"] == summary["queue_ids"][key(series)]
    assert str(ev.action) == "ct zone 5 nat(dst=10.0.0.2-10.0.0.3:7000-7010) commit"


def test_retis_python_bindings_read_the_guest_recording(recording: tuple[Path, dict[str, Any]]) -> None:
    path, summary = recording
    retis = pytest.importorskip("retis", reason="PyPI retis (Retis's Python bindings) not installed")
    read = list(retis.EventFile(str(path)).events())
    assert "startup" in read[0]
    ovs = [e for e in read if "ovs" in e]
    assert len(ovs) == summary["ovs_events"]
    snapshots = sum(1 for line in read_lines(path) if line.kind == "snapshot")
    assert len(read) == 1 + len(ovs) + snapshots
    assert sorted(f"{e.to_dict()['common']['timestamp']}/{e.to_dict()['ovs']['cpu']}" for e in ovs
                  if e.to_dict()["ovs"]["event_type"] == "upcall") == summary["upcalls"]  # fmt: skip
