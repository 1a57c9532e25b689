"""The flow-table diff that stands in for upcall events when no eBPF source runs."""

from __future__ import annotations

from ovstop.events.flowdiff import FlowTracker, diff_flows, flow_id
from ovstop.model.flowrates import FlowRates


def _row(ufid: str, packets: int = 0, nbytes: int = 0, pmd: str = "pmd-c01", key: str = "in_port(1)") -> dict:
    return {
        "datapath": "netdev@ovs-netdev",
        "pmd": pmd,
        "ufid": ufid,
        "key": key,
        "actions": "2",
        "packets": packets,
        "bytes": nbytes,
    }


def test_diff_reports_installed_and_expired_with_key_and_actions() -> None:
    changes = diff_flows([_row("a"), _row("b")], [_row("b"), _row("c", 5)], at=10.0)
    assert {(c.change, c.ufid) for c in changes} == {("installed", "c"), ("expired", "a")}
    installed = next(c for c in changes if c.change == "installed")
    assert (installed.key, installed.actions, installed.packets, installed.at) == ("in_port(1)", "2", 5, 10.0)


def test_same_ufid_on_two_pmds_is_two_flows_and_keyless_ufid_falls_back_to_key() -> None:
    assert flow_id(_row("a", pmd="pmd-c01")) != flow_id(_row("a", pmd="pmd-c02"))
    assert flow_id({"datapath": "system@ovs-system", "ufid": None, "key": "k1"})[2] == "k1"
    assert diff_flows([_row("a", pmd="pmd-c01")], [_row("a", pmd="pmd-c02")], 0.0) != []


def _annotated(rates: FlowRates, rows: list[dict], at: float) -> list[dict]:
    """Rows as the sampler hands them on: with per-flow rates from consecutive dumps."""
    return rates.annotate(rows, at)


def test_tracker_baseline_rates_first_seen_and_bounded_log() -> None:
    t, rates = FlowTracker(max_changes=3), FlowRates()
    assert t.observe(_annotated(rates, [_row("a", 10, 1000)], 1.0), at=1.0) == []  # baseline: nothing "installed"
    assert t.stats()[0].packets_rate is None
    changes = t.observe(_annotated(rates, [_row("a", 30, 3000), _row("b", 1, 60)], 3.0), at=3.0)
    assert [c.ufid for c in changes] == ["b"]
    stats = {s.row["ufid"]: s for s in t.stats()}
    assert stats["a"].packets_rate == 10.0 and stats["a"].bytes_rate == 1000.0
    assert stats["a"].first_seen == 1.0 and stats["b"].first_seen == 3.0
    assert stats["b"].packets_rate is None
    for i in range(5):
        t.observe([_row(f"x{i}")], at=4.0 + i)
    assert len(t.changes) == 3 and t.total_changes > 3


def test_rates_leave_the_rows_handed_in_untouched() -> None:
    rates, rows = FlowRates(), [_row("a", 10, 1000)]
    rates.annotate(rows, 1.0)
    later = [_row("a", 30, 3000)]
    out = rates.annotate(later, 3.0)
    assert later == [_row("a", 30, 3000)] and rows == [_row("a", 10, 1000)]
    assert out[0]["packets_rate"] == 10.0 and out[0] is not later[0]


def test_counter_going_down_gives_no_rate() -> None:
    rates = FlowRates()
    first = _annotated(rates, [_row("a", 100)], 1.0)
    again = _annotated(rates, [_row("a", 4)], 2.0)
    later = _annotated(rates, [_row("a", 14)], 3.0)
    assert first[0]["packets_rate"] is None and again[0]["packets_rate"] is None
    assert later[0]["packets_rate"] == 10.0
