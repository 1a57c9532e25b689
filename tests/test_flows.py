"""The flow follower: typed rows with rates and first-seen, the changes between dumps, and their counters."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from test_headless import dumped_ufids, settle

from ovstop.export import snapshot as snapshot_doc
from ovstop.model.flows import (
    CHANGES,
    FLOWS,
    INSTALLED,
    REMOVED,
    FlowFollower,
    FlowRow,
    completed,
    flow_id,
)
from ovstop.model.store import Snapshot
from ovstop.runtime import Options, open_runtime
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator

DP = "netdev@ovs-netdev"


def _row(ufid: str, packets: int = 0, nbytes: int = 0, pmd: str = "pmd-c01", dp: str = DP) -> dict[str, Any]:
    """A row as the flows collector hands it to the follower: a dump's fields and the datapath."""
    return {
        "datapath": dp,
        "pmd": pmd,
        "ufid": ufid,
        "key": "in_port(1)",
        "actions": "2",
        "packets": packets,
        "bytes": nbytes,
        "used_s": 0.5,
    }


def _counters(f: FlowFollower) -> dict[tuple[str, str], float]:
    return {(s.spec.name, dict(s.labels)["datapath"]): float(s.value) for s in f.samples()}  # type: ignore[arg-type]


def test_changes_installed_and_expired_with_key_actions_and_time() -> None:
    f = FlowFollower()
    assert f.follow([_row("a"), _row("b")], 1.0, 100.0).changes == ()  # the baseline: nothing "installed"
    changes = f.follow([_row("b"), _row("c", 5)], 2.0, 101.0).changes
    assert {(c.change, c.ufid) for c in changes} == {("installed", "c"), ("expired", "a")}
    installed = next(c for c in changes if c.change == "installed")
    assert (installed.key, installed.actions, installed.packets, installed.at) == ("in_port(1)", "2", 5, 101.0)


def test_same_ufid_on_two_pmds_is_two_flows_and_keyless_ufid_falls_back_to_key() -> None:
    assert flow_id(_row("a", pmd="pmd-c01")) != flow_id(_row("a", pmd="pmd-c02"))
    assert flow_id({"datapath": "system@ovs-system", "ufid": None, "key": "k1"})[2] == "k1"
    f = FlowFollower()
    f.follow([_row("a", pmd="pmd-c01")], 1.0, 1.0)
    assert len(f.follow([_row("a", pmd="pmd-c02")], 2.0, 2.0).changes) == 2


def test_rows_are_typed_frozen_with_rates_and_first_seen() -> None:
    f = FlowFollower()
    first = f.follow([_row("a", 10, 1000)], 1.0, 500.0).rows
    assert isinstance(first[0], FlowRow) and first[0].packets_rate is None and first[0].first_seen == 500.0
    rows = {r.ufid: r for r in f.follow([_row("a", 30, 3000), _row("b", 1, 60)], 3.0, 502.0).rows}
    assert rows["a"].packets_rate == 10.0 and rows["a"].bytes_rate == 1000.0
    assert rows["a"].first_seen == 500.0 and rows["b"].first_seen == 502.0 and rows["b"].packets_rate is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        rows["a"].packets = 0  # type: ignore[misc]
    assert rows["a"]["ufid"] == "a" and dict(rows["a"])["used_s"] == 0.5  # read as a mapping too (JSON, frames)


def test_rows_handed_in_are_left_untouched() -> None:
    f, later = FlowFollower(), [_row("a", 30, 3000)]
    f.follow([_row("a", 10, 1000)], 1.0, 1.0)
    f.follow(later, 3.0, 3.0)
    assert later == [_row("a", 30, 3000)]


def test_counter_going_down_gives_no_rate() -> None:
    f = FlowFollower()
    f.follow([_row("a", 100)], 1.0, 1.0)
    again = f.follow([_row("a", 4)], 2.0, 2.0).rows[0]
    later = f.follow([_row("a", 14)], 3.0, 3.0).rows[0]
    assert again.packets_rate is None and later.packets_rate == 10.0


def test_counters_per_datapath_from_the_baseline_on_and_not_across_a_cut_dump() -> None:
    other = "system@ovs-system"
    f = FlowFollower()
    f.follow([_row("a")], 1.0, 1.0, datapaths=[DP, other])
    assert _counters(f) == {(spec.name, dp): 0 for spec in (INSTALLED, REMOVED) for dp in (DP, other)}
    f.follow([_row("b"), _row("c"), _row("x", dp=other)], 2.0, 2.0, datapaths=[DP, other])
    assert _counters(f)[(INSTALLED.name, DP)] == 2 and _counters(f)[(REMOVED.name, DP)] == 1
    assert _counters(f)[(INSTALLED.name, other)] == 1
    # A dump cut at the cap proves nothing: that datapath's counters are left out this round and the next.
    f.follow([_row("c")], 3.0, 3.0, datapaths=[DP, other], partial=[DP])
    assert (INSTALLED.name, DP) not in _counters(f) and _counters(f)[(REMOVED.name, other)] == 1
    f.follow([_row("d")], 4.0, 4.0, datapaths=[DP, other])
    assert (INSTALLED.name, DP) not in _counters(f)
    f.follow([_row("e")], 5.0, 5.0, datapaths=[DP, other])
    assert _counters(f)[(INSTALLED.name, DP)] == 3 and _counters(f)[(REMOVED.name, DP)] == 2


def test_snapshot_json_keeps_typed_rows_and_changes() -> None:
    f = FlowFollower()
    f.follow([_row("a", 1, 10)], 1.0, 1.0)
    found = f.follow([_row("a", 3, 30), _row("b")], 2.0, 2.0)
    snap = Snapshot(1, 2.0, 1.0, (), {}, found.tables())
    back = snapshot_doc.from_dict(snapshot_doc.to_dict(snap))
    assert back.tables[FLOWS] == list(found.rows) and back.tables[CHANGES] == list(found.changes)


def test_a_whole_snapshot_written_before_first_seen_and_changes_is_completed_keeping_its_rates() -> None:
    old = [{**_row("a", 3, 30), "packets_rate": 7.0, "bytes_rate": 70.0}]
    f = FlowFollower()
    first = completed(Snapshot(1, 10.0, None, (), {}, {FLOWS: old}), f)
    second = completed(Snapshot(2, 11.0, 1.0, (), {}, {FLOWS: [*old, _row("b")]}), f)
    assert [r.first_seen for r in second.tables[FLOWS]] == [10.0, 11.0]  # type: ignore[attr-defined]
    assert second.tables[FLOWS][0]["packets_rate"] == 7.0 and first.tables[CHANGES] == []
    assert [(c["change"], c["ufid"]) for c in second.tables[CHANGES]] == [("installed", "b")]


def test_counters_and_changes_follow_the_switch_dumps(fresh_sandbox: SandboxSwitch) -> None:
    """On a real switch: flows injected between two rounds are counted installed, flows deleted are counted
    removed, each exactly as many as ``dpctl/dump-flows`` shows appearing and disappearing."""
    sw = fresh_sandbox
    sw.vsctl("set", "Open_vSwitch", ".", "other_config:max-idle=600000")  # no flow expires by itself here
    traffic = TrafficGenerator(sw, seed=11)
    traffic.inject(4, repeats=1)

    def dumped() -> frozenset[str]:
        return frozenset(dumped_ufids(sw.appctl("dpctl/dump-flows", "-m")))

    def counted(snap: Snapshot) -> tuple[float | None, float | None]:
        return snap.value(INSTALLED.name, datapath=DP), snap.value(REMOVED.name, datapath=DP)

    def changed(snap: Snapshot, change: str, rounds: int = 1) -> set[str]:
        """The ufids of the flow changes the snapshot lists for its last ``rounds`` dumps."""
        times = sorted({c["at"] for c in snap.tables[CHANGES]})[-rounds:]
        return {c["ufid"] for c in snap.tables[CHANGES] if c["change"] == change and c["at"] in times}

    rt = open_runtime(Options(unixctl=str(sw.unixctl_path), db=sw.db_remote, ebpf=False))
    try:
        before = settle(dumped)
        first = rt.sampler.sample()
        assert dumped() == before and len(before) >= 4
        assert counted(first) == (0.0, 0.0) and first.tables[CHANGES] == []

        traffic.inject(7)
        after = settle(dumped)
        second = rt.sampler.sample()
        assert dumped() == after
        new, gone = after - before, before - after
        assert len(new) >= 7
        assert counted(second) == (len(new), len(gone))
        assert changed(second, "installed") == new and changed(second, "expired") == gone

        sw.appctl("dpctl/del-flows")
        emptied = settle(dumped)
        third = rt.sampler.sample()
        assert dumped() == emptied and not emptied
        assert counted(third) == (len(new), len(gone) + len(after))
        assert changed(third, "expired") == after and changed(third, "installed") == set()
        assert changed(third, "installed", rounds=2) == new  # the round before, for a reader that missed it
    finally:
        rt.close()


def test_the_tui_logs_each_change_once_however_often_its_round_arrives_and_if_one_never_does() -> None:
    """A remote polled faster than it collects hands a round over again, one polled slower skips a round:
    each change is logged once either way (snapshots carry the changes of their last few dumps)."""
    from ovstop.tui.view import ChangeLog

    f, log = FlowFollower(), ChangeLog(limit=5)

    def snap(seq: int, *ufids: str) -> Snapshot:
        return Snapshot(
            seq, float(seq), 1.0, (), {}, f.follow([_row(u) for u in ufids], float(seq), float(seq)).tables()
        )

    snap(1, "a")
    second = snap(2, "b", "c")  # +b +c -a
    log.add(second)
    log.add(second)
    assert log.total_changes == 3
    snap(3, "d")  # +d -b -c: never arrives
    log.add(snap(4, "d", "e"))  # +e
    assert log.total_changes == 7 and [(c.change, c.ufid) for c in log.changes][-2:] == [
        ("expired", "c"),
        ("installed", "e"),
    ]
    assert len(log.changes) == 5


def test_the_change_window_keeps_whole_dumps_within_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    from ovstop.model import flows

    f = FlowFollower()
    for n in range(10):  # one flow more each dump: one change each
        found = f.follow([_row(str(i)) for i in range(n + 1)], float(n), float(n))
    assert [c.at for c in found.recent] == [float(n) for n in range(9 - flows.RECENT_DUMPS, 10)]
    monkeypatch.setattr(flows, "RECENT_CHANGES", 2)
    found = f.follow([_row("x"), _row("y"), _row("z")], 10.0, 10.0)  # 3 new, 10 gone: the newest dump stays whole
    assert found.recent == found.changes and len(found.changes) == 13
    found = f.follow([_row("x"), _row("y")], 11.0, 11.0)
    assert found.recent == found.changes and len(found.changes) == 1
