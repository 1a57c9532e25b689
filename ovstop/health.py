"""Named health checks evaluated on every snapshot: "this is wrong", with the number that says so.

Each check reads metrics the collectors already produce, compares them with a threshold and gives one of
three states: ``ok``, ``fail``, or ``unknown`` when its input is missing (a source down, a first round
without rates, a feature this host does not have) — never a guess. The results become the
``ovstop_health{check}`` series (1 healthy, 0 failing; no series while unknown, like any value ovstop
cannot prove) and the ``health_checks`` table (state, what was seen, threshold, explanation, metric), so
/metrics, the JSON snapshot, recordings and the TUI all show the same verdicts. No Textual here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ovstop import drops
from ovstop.collect import conntrack, coverage, datapath, pmd, upcall
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.model.store import Series, Snapshot

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
TABLE = "health_checks"

HEALTH = MetricSpec(
    "ovstop_health",
    Kind.GAUGE,
    "Health check verdict: 1 healthy, 0 failing (absent while the check cannot tell).",
    ("ovstop", "health"),
    ("check",),
)

COVERAGE = coverage.COVERAGE.name
TUNNEL_UP = "ovs_vswitchd_tunnel_up"
TUNNEL_FLAPS = "ovs_vswitchd_tunnel_flaps_total"
CHASSIS_LAG = "ovn_chassis_nb_cfg_lag"
SB_CONNECTED = "ovn_controller_sb_connected"
RXQ_USAGE = pmd.RXQ_USAGE.name
KERNEL_DROPS = drops.KERNEL_DROPS

NEAR = 0.9
"""Fraction of a limit (datapath flows, conntrack entries) from which it counts as nearly reached."""
PMD_BUSY = 0.95
RXQ_BUSY = 0.95
LAG_SECONDS = 30.0
"""How long an OVN chassis may stay behind nb_cfg (ovn-controller catching up is normal for a moment)."""
FLAP_WINDOW = 60.0
FLAPS = 2
MAX_REVALIDATOR_MS = 500
"""OVS's default other_config:max-revalidator; the configured value wins when OVSDB has one."""


class View:
    """The snapshot indexed once by metric name, with the lookups the checks share."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self._live: dict[str, list[Series]] = {}

    def live(self, name: str) -> list[Series]:
        """The series named ``name`` without the stale ones (kept from a source that is down now), looked up
        in the snapshot's index only for the names the checks ask for."""
        found = self._live.get(name)
        if found is None:
            found = self._live[name] = [s for s in self.snap.by_name.get(name, ()) if not s.stale]
        return found

    def series(self, name: str, **labels: str) -> list[Series]:
        want = set(labels.items())
        return [s for s in self.live(name) if want <= set(s.labels)]

    def source_down(self, source: str) -> str | None:
        """Why ``source`` is down or off, or None when it answered (or is not one ovstop tracks)."""
        h = self.snap.health.get(source)
        if h is None or h.up:
            return None
        return f"{source} {'off' if h.off else 'down'}: {h.reason}" if h.reason else f"{source} down"


Verdict = tuple[str, str]
"""(state, what was seen)"""


@dataclass(frozen=True)
class Check:
    """One named check: what it reads, its threshold and why it matters, and the function that judges."""

    name: str
    reads: tuple[str, ...]
    threshold: str
    explain: str
    judge: Callable[[View], Verdict]


@dataclass(frozen=True)
class Result:
    check: Check
    state: str
    seen: str

    def row(self) -> dict[str, Any]:
        c = self.check
        return {
            "check": c.name,
            "state": self.state,
            "seen": self.seen,
            "threshold": c.threshold,
            "explain": c.explain,
            "metric": ", ".join(c.reads),
        }


def _who(s: Series, *names: str) -> str:
    return "/".join(s.label(n) for n in names if s.label(n)) or "-"


def _failing(bad: Sequence[str], good: str) -> Verdict:
    return (FAIL, "; ".join(bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else "")) if bad else (OK, good)


def _coverage(counter: str, what: str) -> Callable[[View], Verdict]:
    """A coverage counter that must not move: OVS lists only counters that have fired at least once."""

    def judge(v: View) -> Verdict:
        if not v.live(COVERAGE):
            return UNKNOWN, v.source_down("unixctl") or "coverage/show not read"
        found = v.series(COVERAGE, counter=counter)
        if not found:
            return OK, f"no {what} since ovs-vswitchd started"
        rate = found[0].rate
        if rate is None:
            return UNKNOWN, "no rate yet (first round or counter reset)"
        return (FAIL, f"{rate:.3g}/s") if rate > 0 else (OK, "0/s")

    return judge


def _ratio(name: str, limit: str, who: tuple[str, ...], fraction: float) -> Callable[[View], Verdict]:
    """``name`` at or above ``fraction`` of ``limit`` for any series (matched on the ``who`` labels)."""

    def judge(v: View) -> Verdict:
        limits = {tuple(s.label(n) for n in who): s.value for s in v.series(limit)}
        pairs = [(s, limits.get(tuple(s.label(n) for n in who))) for s in v.series(name)]
        pairs = [(s, lim) for s, lim in pairs if isinstance(s.value, float) and isinstance(lim, float) and lim > 0]
        if not pairs:
            return UNKNOWN, "no value and limit to compare"
        bad = [f"{_who(s, *who)} {s.value:.0f}/{lim:.0f}" for s, lim in pairs if s.value >= fraction * lim]  # type: ignore[operator]
        return _failing(bad, ", ".join(f"{_who(s, *who)} {s.value:.0f}/{lim:.0f}" for s, lim in pairs))

    return judge


def _lost_upcalls(v: View) -> Verdict:
    found = v.series(datapath.LOST.name)
    if not found:
        return UNKNOWN, v.source_down("unixctl") or "dpctl/show not read"
    if any(s.rate is None for s in found):
        return UNKNOWN, "no rate yet (first round or counter reset)"
    return _failing([f"{_who(s, 'datapath')} {s.rate:.3g}/s" for s in found if s.rate], "0/s")


def _max_revalidator_ms(v: View) -> float:
    for row in v.snap.tables.get("system", ()):
        configured = row.get("max_revalidator_ms")
        if isinstance(configured, int | float) and configured > 0:
            return float(configured)
    return float(MAX_REVALIDATOR_MS)


def _revalidator(v: View) -> Verdict:
    found = v.series(upcall.DUMP.name)
    if not found:
        return UNKNOWN, v.source_down("unixctl") or "upcall/show not read"
    limit = _max_revalidator_ms(v) / 1000.0
    durations = [(s, float(s.value)) for s in found if isinstance(s.value, float)]
    return _failing(
        [f"{_who(s, 'datapath')} {d * 1000:.0f} ms" for s, d in durations if d > limit],
        ", ".join(f"{d * 1000:.0f} ms" for _, d in durations),
    )


def _pmd_busy(v: View) -> Verdict:
    busy = {s.labels: s.rate for s in v.series(pmd.COUNTERS["busy_cycles"].name) if s.label("thread") != "main"}
    idle = {s.labels: s.rate for s in v.series(pmd.COUNTERS["idle_cycles"].name)}
    if not busy:
        return UNKNOWN, "no PMD threads (no userspace datapath, or pmd-stats not read)"
    loads: list[tuple[str, float]] = []
    for labels, b in busy.items():
        i = idle.get(labels)
        if b is None or i is None or b + i <= 0:
            return UNKNOWN, "no cycle rates yet"
        loads.append((dict(labels).get("thread", "-"), b / (b + i)))
    return _failing(
        [f"{t} {load:.0%}" for t, load in loads if load > PMD_BUSY],
        " ".join(f"{t} {load:.0%}" for t, load in sorted(loads)),
    )


def _rxq(v: View) -> Verdict:
    found = v.series(RXQ_USAGE)
    if not found:
        return UNKNOWN, "no PMD rx queues (no userspace datapath, or pmd-rxq-show not read)"
    return _failing(
        [
            f"{_who(s, 'thread', 'port', 'queue')} {s.value:.0%}"
            for s in found
            if isinstance(s.value, float) and s.value > RXQ_BUSY
        ],
        f"{len(found)} queues, busiest "
        f"{max((float(s.value) for s in found if isinstance(s.value, int | float)), default=0.0):.0%}",
    )


def _ovsdb(v: View) -> Verdict:
    h = v.snap.health.get("ovsdb")
    if h is None:
        return UNKNOWN, "no OVSDB source"
    return (OK, "connected") if h.up else (FAIL, h.reason or "down")


def _ovn(v: View) -> Verdict:
    present = [h for name, h in v.snap.health.items() if name.startswith("ovn") and not h.off]
    if not present:
        return UNKNOWN, "no OVN here"
    bad = [f"{h.name}: {h.reason or 'down'}" for h in present if not h.up]
    bad += [
        f"ovn-controller on {s.label('chassis')} not connected to SB" for s in v.series(SB_CONNECTED) if s.value == 0.0
    ]
    return _failing(bad, ", ".join(f"{h.name} up" for h in present))


def _sustained(history: Sequence[float], interval: float | None, seconds: float) -> bool:
    """Every value of the last ``seconds`` of ``history`` is above zero (and the history covers them)."""
    if not interval or interval <= 0:
        return False
    n = max(2, math.ceil(seconds / interval))
    return len(history) >= n and all(x > 0 for x in history[-n:])


def _ovn_lag(v: View) -> Verdict:
    found = v.series(CHASSIS_LAG)
    if not found:
        return UNKNOWN, v.source_down("ovn_sb") or "no OVN chassis lag known"
    behind = [s for s in found if isinstance(s.value, float) and s.value > 0]
    bad = [
        f"{s.label('chassis')} {s.value:.0f} behind"
        for s in behind
        if _sustained(s.history, v.snap.interval, LAG_SECONDS)
    ]
    return _failing(bad, f"{len(found) - len(behind)}/{len(found)} chassis current")


def _flapping(v: View) -> Verdict:
    found = v.series(TUNNEL_FLAPS)
    if not found:
        return UNKNOWN, "no BFD or CFM on any tunnel"
    interval = v.snap.interval
    if not interval:
        return UNKNOWN, "no rate yet"
    n = max(1, math.ceil(FLAP_WINDOW / interval))
    flaps = [(s, sum(s.history[-n:]) * interval) for s in found]
    return _failing(
        [f"{s.label('tunnel')} {f:.0f} flaps" for s, f in flaps if f >= FLAPS],
        f"{len(found)} monitored, no flaps in {FLAP_WINDOW:.0f}s",
    )


def _tunnels(v: View) -> Verdict:
    found = v.series(TUNNEL_UP)
    if not found:
        return UNKNOWN, v.source_down("ovsdb") or "no tunnels"
    return _failing(
        [f"{s.label('tunnel')} ({s.label('remote_ip')})" for s in found if s.value == 0.0], f"{len(found)} up"
    )


def _deferred(v: View) -> Verdict:
    found = v.series(KERNEL_DROPS, reason="OVS_DROP_DEFERRED_LIMIT")
    if not v.live(KERNEL_DROPS):
        status = v.snap.tables.get("kernel_drops")  # the eBPF collector's word: counted (none yet), or why not
        if status and status[0].get("counted"):
            return OK, "0/s (no kernel drop counted yet)"
        why = f": {status[0].get('reason')}" if status else ""
        return UNKNOWN, f"needs kernel drop reasons (eBPF capture on Linux 6.6+){why}"
    rate = sum(s.rate or 0.0 for s in found)
    return (FAIL, f"{rate:.3g}/s") if rate > 0 else (OK, "0/s")


CHECKS: tuple[Check, ...] = (
    Check(
        "long_poll_interval",
        (f"{COVERAGE}{{counter=long_poll_interval}}",),
        "> 0/s",
        "the main thread went >1 s without polling (OVS logs 'Unreasonably long poll interval')",
        _coverage("long_poll_interval", "long poll interval"),
    ),
    Check(
        "flow_limit_near",
        (upcall.CURRENT.name, upcall.LIMIT.name),
        f">= {NEAR:.0%} of limit",
        "datapath flows near the flow limit: new flows will not be installed, packets go to userspace",
        _ratio(upcall.CURRENT.name, upcall.LIMIT.name, ("datapath",), NEAR),
    ),
    Check(
        "flow_limit_hit",
        (f"{COVERAGE}{{counter=upcall_flow_limit_hit}}",),
        "> 0/s",
        "upcalls were handled without installing a flow because the flow limit was reached",
        _coverage("upcall_flow_limit_hit", "flow limit hit"),
    ),
    Check(
        "lost_upcalls",
        (datapath.LOST.name,),
        "> 0/s",
        "upcalls the datapath could not queue to userspace (handler threads overloaded): packets dropped",
        _lost_upcalls,
    ),
    Check(
        "revalidator_slow",
        (upcall.DUMP.name,),
        "> max-revalidator",
        "a flow dump took longer than the revalidation interval: stats and flow expiry fall behind",
        _revalidator,
    ),
    Check(
        "pmd_busy",
        (pmd.COUNTERS["busy_cycles"].name, pmd.COUNTERS["idle_cycles"].name),
        f"> {PMD_BUSY:.0%}",
        "a PMD thread spends nearly all its cycles processing: it is at capacity, queues will overflow",
        _pmd_busy,
    ),
    Check(
        "pmd_rxq_overloaded",
        (RXQ_USAGE,),
        f"> {RXQ_BUSY:.0%} of a PMD",
        "one rx queue uses almost all of its PMD: rebalance (pmd-rxq-rebalance) or add PMDs",
        _rxq,
    ),
    Check(
        "ovsdb_connection",
        ("ovstop_source_up{source=ovsdb}",),
        "down",
        "the switch's database does not answer: configuration changes and statistics stop",
        _ovsdb,
    ),
    Check(
        "ovn_connection",
        ("ovstop_source_up{source=ovn_*}", SB_CONNECTED),
        "down",
        "OVN databases or the local ovn-controller's SB connection lost: logical changes stop arriving",
        _ovn,
    ),
    Check(
        "ovn_nb_cfg_lag",
        (CHASSIS_LAG,),
        f"> 0 for {LAG_SECONDS:.0f}s",
        "a chassis has not applied the latest northbound configuration",
        _ovn_lag,
    ),
    Check(
        "bfd_cfm_flapping",
        (TUNNEL_FLAPS,),
        f">= {FLAPS} flaps in {FLAP_WINDOW:.0f}s",
        "a tunnel's BFD/CFM session keeps going up and down: traffic fails over back and forth",
        _flapping,
    ),
    Check("tunnel_down", (TUNNEL_UP,), "any 0", "a tunnel is down (BFD, else CFM, else carrier)", _tunnels),
    Check(
        "conntrack_near_max",
        (conntrack.N_CONNECTIONS.name, conntrack.LIMIT.name),
        f">= {NEAR:.0%} of limit",
        "the connection tracker is nearly full: new connections will be dropped",
        _ratio(conntrack.N_CONNECTIONS.name, conntrack.LIMIT.name, ("datapath",), NEAR),
    ),
    Check(
        "deferred_action_limit",
        (f"{KERNEL_DROPS}{{reason=OVS_DROP_DEFERRED_LIMIT}}",),
        "> 0/s",
        "the kernel datapath dropped packets: too many deferred (recirculation) actions",
        _deferred,
    ),
)
INPUTS: frozenset[str] = frozenset(
    {
        datapath.LOST.name,
        upcall.CURRENT.name,
        upcall.LIMIT.name,
        upcall.DUMP.name,
        COVERAGE,
        pmd.COUNTERS["busy_cycles"].name,
        pmd.COUNTERS["idle_cycles"].name,
        RXQ_USAGE,
        conntrack.N_CONNECTIONS.name,
        conntrack.LIMIT.name,
        TUNNEL_UP,
        TUNNEL_FLAPS,
        CHASSIS_LAG,
        SB_CONNECTED,
        KERNEL_DROPS,
    }
)
"""Every metric some check reads: a consumer that wants health checks needs these collected."""


def evaluate(snap: Snapshot, checks: Iterable[Check] = CHECKS) -> list[Result]:
    view = View(snap)
    results = []
    for check in checks:
        state, seen = check.judge(view)
        results.append(Result(check, state, seen))
    return results


def samples(results: Iterable[Result]) -> list[Sample]:
    return [
        Sample(HEALTH, labels_of(check=r.check.name), 1.0 if r.state == OK else 0.0)
        for r in results
        if r.state != UNKNOWN
    ]


def derive(snap: Snapshot) -> tuple[list[Sample], dict[str, list[dict[str, Any]]]]:
    """What the store adds to each round: the verdict series and the ``health_checks`` table."""
    results = evaluate(snap)
    return samples(results), {TABLE: [r.row() for r in results]}


def rows(snap: Snapshot) -> list[dict[str, Any]]:
    """The snapshot's check table; evaluated on the spot for a snapshot recorded without one."""
    table = snap.tables.get(TABLE)
    return [dict(r) for r in table] if table is not None else [r.row() for r in evaluate(snap)]


def failing(table: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(r["check"]) for r in table if r.get("state") == FAIL]
