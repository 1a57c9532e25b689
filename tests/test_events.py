"""Events: Retis schema decode/encode, correlation, the bounded store, recording and replay.

Inputs are Retis's own event files (GPL, read in place from ../shared/retis-fixtures, see SOURCE.md there),
plus series built here for the event types no Retis fixture holds (enqueue, recv_upcall, flow_operation,
flow_lookup), with field names and display strings as in Retis's retis-events/src/ovs.rs.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ovstop.errors import OvstopError, ParseError
from ovstop.events.correlator import Correlator
from ovstop.events.holdback import DEFAULT_HOLD_NS, Holdback
from ovstop.events.pipeline import EventPipeline
from ovstop.events.recording import Recorder, read_lines, startup_section
from ovstop.events.replay import Replayer
from ovstop.events.schema import EVENT_TYPES, OvsEvent, decode, encode
from ovstop.events.store import EventStore

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "retis-fixtures"
UNSORTED = sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith("_sorted.json"))
PACKETS = FIXTURES / "retis__test_events_packets.json"
SORTED = FIXTURES / "retis-events__test_events_sorted.json"
PLAIN = FIXTURES / "retis-events__test_events.json"

pytestmark = pytest.mark.skipif(not PACKETS.exists(), reason=f"Retis fixtures not found in {FIXTURES}")


def json_objects(path: Path) -> list[dict[str, Any]]:
    """Every event object of a file by a plain JSON scan (series flattened)."""
    out: list[dict[str, Any]] = []
    for text in path.read_text().splitlines():
        obj = json.loads(text)
        out.extend(obj if isinstance(obj, list) else [obj])
    return out


def decoded(path: Path) -> list[OvsEvent]:
    return [ev for obj in json_objects(path) if (ev := decode(obj)) is not None]


def make(ts: int, ovs: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """A Retis event object with the given ovs section."""
    return {"common": {"timestamp": ts, "smp_id": 0}, "ovs": ovs, **sections}


def ovs_event(ts: int, ovs: dict[str, Any]) -> OvsEvent:
    ev = decode(make(ts, ovs))
    assert ev is not None
    return ev


def tracked_series() -> list[dict[str, Any]]:
    """One upcalled packet with --ovs-track: upcall, enqueue, recv, put, exec, re-injected action, return."""
    up_ts, q = 61096236973661, 3316322986
    return [
        make(up_ts, {"event_type": "upcall", "cmd": 1, "port": 4195744766, "cpu": 0}),
        make(
            up_ts + 1000,
            {
                "event_type": "upcall_enqueue",
                "ret": 0,
                "cmd": 1,
                "port": 4195744766,
                "upcall_ts": up_ts,
                "upcall_cpu": 0,
                "queue_id": q,
            },
        ),
        make(up_ts + 2000, {"event_type": "upcall_return", "upcall_ts": up_ts, "upcall_cpu": 0, "ret": 0}),
        make(
            up_ts + 30000,
            {
                "event_type": "recv_upcall",
                "type": 0,
                "pkt_size": 98,
                "key_size": 200,
                "queue_id": q,
                "batch_ts": up_ts + 29000,
                "batch_idx": 0,
            },
        ),
        make(
            up_ts + 45000,
            {"event_type": "flow_operation", "op_type": "put", "queue_id": q, "batch_ts": up_ts + 29000}
            | {"batch_idx": 0},
        ),
        make(
            up_ts + 46000,
            {"event_type": "flow_operation", "op_type": "exec", "queue_id": q, "batch_ts": up_ts + 29000}
            | {"batch_idx": 0},
        ),
        make(
            up_ts + 50000,
            {"event_type": "action_execute", "action": "output", "port": 2, "recirc_id": 0, "queue_id": q},
        ),
    ]


# --- schema -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_every_ovs_event_decodes_and_round_trips(path: Path) -> None:
    objs = json_objects(path)
    ovs_objs = [o for o in objs if "ovs" in o]
    events = [decode(o) for o in objs]
    assert [e is not None for e in events] == ["ovs" in o for o in objs]
    for obj, ev in zip(objs, events, strict=True):
        if ev is not None:
            assert ev.event_type in EVENT_TYPES
            assert ev.timestamp == obj["common"]["timestamp"]
            assert encode(ev) == obj
    # per-type counts equal a plain scan of the JSON
    assert Counter(e.event_type for e in events if e) == Counter(o["ovs"]["event_type"] for o in ovs_objs)


def test_fixture_type_counts() -> None:
    counts = Counter(ev.event_type for p in UNSORTED for ev in decoded(p))
    # 8 OVS lines in test_events_packets, 12 in ..._invalid_ct, 2 each in test_events and test_events_bench
    assert sum(counts.values()) == 8 + 12 + 2 + 2
    assert counts == {"upcall": 6, "upcall_return": 6, "action_execute": 12}


def test_fields_and_summaries_on_real_events() -> None:
    up, ret, act = decoded(PACKETS)[:3]
    assert (up.cmd, up.port, up.upcall_cpu, up.upcall_ts, up.cpu, up.comm, up.pid) == (
        1,
        3319069055,
        6,
        30419169098548,
        6,
        "ping",
        11330,
    )
    assert up.probe == "openvswitch:ovs_dp_upcall" and up.probe_type == "raw_tracepoint"
    assert up.summary() == "upcall (miss) port 3319069055 cpu 6"
    assert ret.summary() == "upcall_ret (6/30419169098548) ret 0"
    assert act.summary() == "exec oport 4"
    assert act.action is not None and act.action.port == 4
    # the flow key comes from the packet section's frame bytes
    assert up.key is not None
    assert str(up.key) == "icmp 192.168.125.10 > 192.168.125.11 type 8 code 0"
    assert (up.key.eth_type, up.key.ip_proto) == (0x0800, 1)


def test_summaries_of_every_type_and_ct_nat() -> None:
    events = [decode(o) for o in tracked_series()]
    assert [e.summary() for e in events if e] == [
        "upcall (miss) port 4195744766 cpu 0",
        "upcall_enqueue (miss) (0/61096236973661) q 3316322986 ret 0",
        "upcall_ret (0/61096236973661) ret 0",
        "upcall_recv q 3316322986 pkt_size 98",
        "flow_put q 3316322986 ts 61096237002661 (0)",
        "flow_exec q 3316322986 ts 61096237002661 (0)",
        "exec oport 2 q 3316322986",
    ]
    ct = {
        "event_type": "action_execute",
        "action": "ct",
        "flags": 485,
        "zone_id": 20,
        "recirc_id": 34,
        "nat": {"dir": "dst", "min_addr": "10.244.1.3", "max_addr": "10.244.1.30"}
        | {"min_port": 36895, "max_port": 36900},
    }
    ev = ovs_event(1, ct)
    assert ev.summary() == "[recirc_id 0x22] exec ct zone 20 nat(dst=10.244.1.3-10.244.1.30:36895-36900) commit"
    assert encode(ev)["ovs"] == ct
    drop = decode(make(1, {"event_type": "action_execute", "action": "drop", "reason": 0, "recirc_id": 32}))
    assert drop is not None and drop.summary() == "[recirc_id 0x20] exec drop 0"


def test_flow_lookup_hit_and_miss() -> None:
    hit_ovs = {
        "event_type": "flow_lookup",
        "flow": 18446623349161350912,
        "sf_acts": 18446623349161360000,
        "ufid": [305419896, 2863311530, 1431655765, 2863311530],
        "n_mask_hit": 1,
        "n_cache_hit": 0,
        "dpflow": "",
        "ofpflows": [],
    }
    hit = decode(make(5, hit_ovs))
    assert hit is not None and not hit.is_miss
    assert hit.ufid == "12345678-aaaa-aaaa-5555-5555aaaaaaaa"
    assert hit.summary().startswith("flow hit ufid 12345678-aaaa-aaaa-5555-5555aaaaaaaa mask 1 cache 0 flow ")
    assert encode(hit)["ovs"] == hit_ovs
    miss = decode(make(6, {"event_type": "flow_lookup", "flow": 0, "n_mask_hit": 3, "n_cache_hit": 2}))
    assert miss is not None and miss.is_miss
    assert miss.summary() == "flow miss mask 3 cache 2"


def test_live_event_encodes_in_retis_shape() -> None:
    """An event built by the capture thread (no raw JSON) comes out as Retis writes it."""
    live = OvsEvent(
        timestamp=77,
        event_type="upcall",
        cpu=2,
        pid=10,
        comm="ping",
        probe="openvswitch:ovs_dp_upcall",
        probe_type="raw_tracepoint",
        cmd=1,
        port=9,
        upcall_ts=77,
        upcall_cpu=2,
    )
    assert encode(live) == {
        "common": {"timestamp": 77, "smp_id": 2, "task": {"pid": 10, "comm": "ping", "tgid": 10}},
        "kernel": {"symbol": "openvswitch:ovs_dp_upcall", "probe_type": "raw_tracepoint"},
        "ovs": {"event_type": "upcall", "cmd": 1, "port": 9, "cpu": 2},
    }
    assert decode(encode(live)) == live


def test_non_ovs_and_bad_events() -> None:
    assert decode({"common": {"timestamp": 1}, "kernel": {"symbol": "tcp_v4_rcv"}}) is None
    with pytest.raises(ParseError, match=r"ovs\.port should be int"):
        decode(make(1, {"event_type": "upcall", "cmd": 1, "port": "x", "cpu": 0}))
    with pytest.raises(ParseError, match=r"without common\.timestamp"):
        decode({"ovs": {"event_type": "upcall"}})
    with pytest.raises(ParseError, match="without event_type"):
        decode(make(1, {"cmd": 1}))


# --- correlator ---------------------------------------------------------------------------------------


def test_upcall_return_correlates_by_ts_and_cpu_with_latency() -> None:
    corr = Correlator()
    out = [corr.process(ev) for ev in decoded(PACKETS)]
    ups = [e for e in out if e.event_type == "upcall"]
    rets = [e for e in out if e.event_type == "upcall_return"]
    assert len(ups) == len(rets) == 2
    for up, ret in zip(ups, rets, strict=True):
        assert ret.corr_id == up.corr_id
        assert ret.latency_ns == ret.timestamp - up.timestamp > 0
    assert rets[0].latency_ns == 30419169125909 - 30419169098548
    series = corr.series()
    assert [s.latency_ns for s in series] == [r.latency_ns for r in rets]
    assert [[e.event_type for e in s.events] for s in series] == [["upcall", "upcall_return"]] * 2
    assert corr.stats().pending_upcalls == 0 and corr.stats().orphans == 0


def test_series_match_retis_sort() -> None:
    """Grouping the unsorted capture gives the series `retis sort` wrote for the same capture."""
    corr = Correlator()
    ours: dict[int, set[int]] = {}
    for ev in decoded(PLAIN):
        out = corr.process(ev)
        assert out.corr_id is not None
        ours.setdefault(out.corr_id, set()).add(out.timestamp)
    theirs = []
    for text in SORTED.read_text().splitlines():
        stamps = {o["common"]["timestamp"] for o in json.loads(text) if "ovs" in o}
        if stamps:
            theirs.append(stamps)
    assert sorted(map(sorted, ours.values())) == sorted(map(sorted, theirs))


def test_queue_id_links_the_userspace_side() -> None:
    corr = Correlator()
    out = [corr.process(ev) for o in tracked_series() if (ev := decode(o))]
    assert len({e.corr_id for e in out}) == 1
    (series,) = corr.series()
    assert series.latency_ns == 2000
    assert [e.event_type for e in series.events] == [
        "upcall",
        "upcall_enqueue",
        "upcall_return",
        "recv_upcall",
        "flow_operation",
        "flow_operation",
        "action_execute",
    ]
    # a second, unrelated upcall gets its own series
    other = decode(make(61096236973661 + 99, {"event_type": "upcall", "cmd": 1, "port": 1, "cpu": 3}))
    assert other is not None and corr.process(other).corr_id != out[0].corr_id


def test_userspace_events_that_overtook_their_enqueue_are_linked() -> None:
    """Live, recv_upcall and flow_operation can be written before the kernel's enqueue event (it comes from
    the return of queue_userspace_packet, after the handler already has the packet): they wait for it."""
    events = [ev for o in tracked_series() if (ev := decode(o))]
    upcall, enqueue, ret, recv, put, execute, action = events
    store = EventStore()
    pipeline = EventPipeline(Correlator(), store)
    for ev in (upcall, recv, put, execute, enqueue, ret, action):
        pipeline(ev)
    kept = store.snapshot()
    assert [e.event_type for e in kept] == [
        "upcall",
        "upcall_enqueue",
        "recv_upcall",
        "flow_operation",
        "flow_operation",
        "upcall_return",
        "action_execute",
    ]
    assert {e.corr_id for e in kept} == {kept[0].corr_id}
    assert pipeline.correlator.stats().orphans == 0 and pipeline.holdback.released_late == 3
    assert pipeline.holdback.held == 0


def test_userspace_event_without_enqueue_is_passed_on_after_the_hold() -> None:
    recv = decode(tracked_series()[3])
    assert recv is not None
    store = EventStore()
    pipeline = EventPipeline(Correlator(), store)
    pipeline(recv)
    assert store.snapshot() == [] and pipeline.holdback.held == 1
    later = ovs_event(recv.timestamp + DEFAULT_HOLD_NS + 1, {"event_type": "upcall", "cmd": 1, "port": 1, "cpu": 0})
    pipeline(later)
    assert [e.event_type for e in store.snapshot()] == ["recv_upcall", "upcall"]
    assert pipeline.holdback.held == 0 and pipeline.correlator.stats().orphans == 1


def test_held_event_is_released_by_the_clock_when_nothing_arrives() -> None:
    """An idle switch sends no later event: the capture thread's clock releases what waits (on_idle)."""
    recv = decode(tracked_series()[3])
    assert recv is not None
    store = EventStore()
    pipeline = EventPipeline(Correlator(), store)
    pipeline(recv)
    pipeline.release_expired(recv.timestamp + DEFAULT_HOLD_NS)
    assert store.snapshot() == [] and pipeline.holdback.held == 1  # not yet past the hold
    pipeline.release_expired(recv.timestamp + DEFAULT_HOLD_NS + 1)
    assert [e.event_type for e in store.snapshot()] == ["recv_upcall"] and pipeline.holdback.held == 0


def test_holdback_is_bounded_and_drops_nothing() -> None:
    hold = Holdback(lambda _q: False, max_held=2)
    recvs = [ovs_event(10 + i, {"event_type": "recv_upcall", "queue_id": 100 + i}) for i in range(3)]
    assert hold.push(recvs[0]) == [] and hold.push(recvs[1]) == []
    assert hold.push(recvs[2]) == [recvs[0]] and hold.held == 2


def test_recirc_and_ufid_tracking() -> None:
    corr = Correlator()
    first = corr.process(ovs_event(10, {"event_type": "action_execute", "action": "recirc", "id": 7, "recirc_id": 0}))
    again = corr.process(ovs_event(20, {"event_type": "action_execute", "action": "output", "port": 3, "recirc_id": 7}))
    assert first.corr_id == again.corr_id
    ufid = [1, 2, 3, 4]
    for ts in (30, 40, 50):
        hit = {"event_type": "flow_lookup", "flow": 9, "sf_acts": 8, "ufid": ufid, "n_mask_hit": 1, "n_cache_hit": 0}
        corr.process(ovs_event(ts, hit))
    (flow,) = corr.flows()
    assert (flow.hits, flow.first_ts, flow.last_ts) == (3, 30, 50)


def test_correlator_memory_is_bounded_and_evictions_counted() -> None:
    corr = Correlator(max_pending=10, max_age_ns=1_000_000)
    for i in range(100):  # upcalls that never return
        corr.process(ovs_event(1000 + i, {"event_type": "upcall", "cmd": 1, "port": 1, "cpu": i}))
    stats = corr.stats()
    assert stats.pending_upcalls == 10 and stats.evicted_full == 90
    # a return for an evicted upcall is an orphan, not a crash
    ret = corr.process(ovs_event(2000, {"event_type": "upcall_return", "upcall_ts": 1000, "upcall_cpu": 0, "ret": 0}))
    assert ret.latency_ns == 1000 and corr.stats().orphans == 1
    # ageing out happens in event time
    corr.process(ovs_event(10_000_000, {"event_type": "upcall", "cmd": 1, "port": 1, "cpu": 0}))
    assert corr.stats().pending_upcalls == 1 and corr.stats().evicted_aged == 10


# --- store --------------------------------------------------------------------------------------------


def test_store_ring_bounds_and_overflow() -> None:
    store = EventStore(max_events=5)
    events = decoded(PACKETS)
    for ev in events:
        assert store.add(ev)
    assert store.snapshot() == events[-5:]
    assert store.stats().overflowed == len(events) - 5 and store.stats().dropped == len(events) - 5
    assert store.totals() == dict(Counter(e.event_type for e in events))
    assert (
        store.snapshot(filter=lambda e: e.event_type == "action_execute", limit=2)
        == [e for e in events[-5:] if e.event_type == "action_execute"][-2:]
    )


def test_store_since_gives_each_event_once_while_producers_add() -> None:
    """A reader following ``since`` sees every event once and in order, even with a producer adding between
    (and during) its reads; a reader that fell behind the ring gets the newest ``limit``."""
    store, n = EventStore(max_events=100_000), 20_000
    events = [ovs_event(ts, {"event_type": "upcall", "cmd": 1, "port": 1, "cpu": 0}) for ts in range(1, n + 1)]
    producer = threading.Thread(target=lambda: [store.add(ev) for ev in events])
    producer.start()
    got: list[int] = []
    seen, reads = 0, 0
    while producer.is_alive() or seen < n:
        batch, stats = store.since(seen, limit=n)
        got += [ev.timestamp for ev in batch]
        seen, reads = stats.accepted, reads + 1
    producer.join()
    assert got == list(range(1, n + 1)) and reads > 1
    small = EventStore(max_events=5)
    for ev in events[:12]:
        small.add(ev)
    batch, stats = small.since(0, limit=3)
    assert [ev.timestamp for ev in batch] == [10, 11, 12] and stats.accepted == 12 and stats.held == 5


def test_store_rate_limit_and_rate_from_virtual_clock() -> None:
    now = [100.0]
    store = EventStore(max_events=1000, max_rate=10, clock=lambda: now[0])
    ev = decoded(PACKETS)[0]
    accepted = sum(store.add(ev) for _ in range(25))  # a burst in one instant
    assert accepted == 10 and store.stats().rate_dropped == 15
    for _ in range(4):  # four more seconds at 5 events/s: all within the limit
        now[0] += 1.0
        assert all(store.add(ev) for _ in range(5))
    now[0] += 1.0
    assert store.rate(window=4) == 5.0


def test_store_concurrent_producers() -> None:
    store = EventStore(max_events=100)
    ev = decoded(PACKETS)[0]

    def produce() -> None:
        for _ in range(2000):
            store.add(ev)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = store.stats()
    assert stats.accepted == 8000 and stats.held == 100 and stats.overflowed == 7900


def test_missed_keys_top() -> None:
    store = EventStore()
    base = json_objects(PACKETS)[3]  # an upcall with a packet section (ICMP echo request)
    reply = json_objects(PACKETS)[10]  # the echo reply
    miss = {"event_type": "flow_lookup", "flow": 0, "n_mask_hit": 1, "n_cache_hit": 0}
    for i, src in enumerate([base] * 3 + [reply]):
        store.add(decode({**src, "common": {"timestamp": i}, "ovs": miss}))
    store.add(decode({**base, "ovs": {**miss, "flow": 5, "ufid": [1, 2, 3, 4]}}))  # a hit: not counted
    assert store.missed_keys_top(5) == [
        ("icmp 192.168.125.10 > 192.168.125.11 type 8 code 0", 3),
        ("icmp 192.168.125.11 > 192.168.125.10 type 0 code 0", 1),
    ]


# --- recording and replay -----------------------------------------------------------------------------


def test_record_then_read_back(tmp_path: Path) -> None:
    events = decoded(PACKETS) + [e for o in tracked_series() if (e := decode(o))]
    path = tmp_path / "rec.jsonl"
    with Recorder(path) as rec:
        for ev in events:
            rec.event(ev)
        rec.snapshot({"datapath": {"hit": 5}}, timestamp=events[-1].timestamp + 1)
    lines = list(read_lines(path))
    assert lines[0].kind == "startup" and lines[0].obj["startup"]["retis_version"] == "v1.7.0"
    assert [line.event for line in lines if line.kind == "event"] == events
    assert lines[-1].kind == "snapshot" and lines[-1].snapshot == {"datapath": {"hit": 5}}


def test_retis_python_bindings_read_an_ovstop_recording(tmp_path: Path) -> None:
    retis = pytest.importorskip("retis", reason="PyPI retis (Retis's Python bindings) not installed")
    events = decoded(PACKETS) + [e for o in tracked_series() if (e := decode(o))]
    path = tmp_path / "rec.jsonl"
    with Recorder(path, startup=startup_section("ovstop --record rec.jsonl")) as rec:
        for ev in events:
            rec.event(ev)
        rec.snapshot({"x": 1}, timestamp=events[-1].timestamp + 1)
    read = list(retis.EventFile(str(path)).events())
    assert "startup" in read[0]
    ovs = [e.to_dict()["ovs"] for e in read if "ovs" in e]
    assert ovs == [encode(ev)["ovs"] for ev in events]
    # Retis ignores ovstop's snapshot section: the line reads as an event with only a common section
    assert read[-1].sections() == ["common"]
    assert len(read) == 1 + len(events) + 1


def test_replay_timing_in_virtual_time() -> None:
    got: list[OvsEvent] = []
    rp = Replayer(PACKETS, got.append, speed=2.0)
    assert rp.startup is not None and rp.startup["retis_version"] == "v1.6.0"
    stamps = [e.timestamp for e in decoded(PACKETS)]
    t0 = 500.0
    assert rp.poll(t0) == 1  # the first event is due at once
    expected_due = [t0 + (ts - stamps[0]) / 1e9 / 2.0 for ts in stamps]
    while not rp.done:
        due = rp.due_at()
        assert due == pytest.approx(expected_due[len(got)], abs=1e-9)
        assert rp.poll(due - 1e-6) == 0  # nothing early
        assert rp.poll(due) >= 1
    assert [e.timestamp for e in got] == stamps
    assert rp.skipped == 27 - 1 - 8  # the capture's non-OVS events (27 lines: startup, 8 OVS)
    total_virtual = expected_due[-1] - t0
    assert total_virtual == pytest.approx((stamps[-1] - stamps[0]) / 2e9)


def test_replay_pause_step_and_resume() -> None:
    got: list[OvsEvent] = []
    rp = Replayer(PACKETS, got.append, speed=1.0)
    rp.poll(0.0)
    rp.pause()
    assert rp.due_at() is None and rp.poll(1e6) == 0
    assert rp.step() == 1 and len(got) == 2
    # the next half second of event time: the rest of the first burst, not the events one second later
    assert rp.step_seconds(0.5) == 4 and len(got) == 6
    assert all(e.timestamp <= got[1].timestamp + 0.5e9 for e in got)
    rp.resume(10.0)
    due = rp.due_at()
    assert due is not None and due == pytest.approx(10.0 + (decoded(PACKETS)[6].timestamp - rp.position) / 1e9)
    assert rp.poll(math.inf) == 2 and rp.done


def test_replay_sorted_file_feeds_pipeline() -> None:
    corr, store = Correlator(), EventStore()
    rp = Replayer(SORTED, EventPipeline(corr, store), speed=math.inf)
    rp.poll(0.0)
    assert rp.done and [e.event_type for e in store.snapshot()] == ["upcall", "upcall_return"]
    (series,) = corr.series()
    assert series.latency_ns == 23868955276361 - 23868955262984


def test_replay_run_thread_with_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    events = decoded(PACKETS)[:3]
    with Recorder(path) as rec:
        rec.event(events[0])
        rec.snapshot({"n": 1}, timestamp=events[0].timestamp + 1)
        rec.event(events[1])
    got: list[Any] = []
    snaps: list[tuple[int, dict[str, Any]]] = []
    rp = Replayer(path, got.append, lambda ts, data: snaps.append((ts, data)), speed=1000.0)
    rp.run(threading.Event())
    assert got == events[:2] and snaps == [(events[0].timestamp + 1, {"n": 1})]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"common":{"timestamp":1},"startup":{}}\nnot json\n', r":2: not a JSON event line"),
        ('{"common":{"timestamp":1},"startup":{}}\n\n42\n', r":3: expected a JSON object"),
        ('{"common":{"timestamp":"x"}}\n', r":1: event without an integer common.timestamp"),
        ('{"common":{"timestamp":1},"ovs":{"event_type":"upcall","port":[1]}}\n', r":1: ovs\.port should be int"),
        ('{"common":{"timestamp":1},"ovstop":{"kind":"nope"}}\n', r":1: unknown ovstop line"),
    ],
)
def test_garbage_lines_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(OvstopError, match=message) as info:
        Replayer(path, lambda ev: None, speed=math.inf).poll(0.0)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_files_and_speed(tmp_path: Path) -> None:
    with pytest.raises(OvstopError, match="cannot read event file"):
        Replayer(tmp_path / "missing.json", lambda ev: None)
    with pytest.raises(OvstopError, match="replay speed must be a positive number"):
        Replayer(PACKETS, lambda ev: None, speed=0)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(OvstopError, match="not a UTF-8 text file"):
        Replayer(binary, lambda ev: None)
    with pytest.raises(OvstopError, match="cannot write recording"):
        Recorder(tmp_path / "no" / "such" / "dir.jsonl")
