"""Every drop the host can tell about, from one snapshot, as ranked rates that name their source.

The numbers are ordinary series (interface statistics from OVSDB, datapath and PMD ``lost`` from unixctl,
the userspace datapath's drop coverage counters, conntrack full, kernel drop reasons from eBPF); this module
only gathers them into one list, ranked by rate then total, so the drops pane and the JSON snapshot read
the same rows. No Textual here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ovstop.collect import coverage, datapath, pmd
from ovstop.model.store import Series, Snapshot

KERNEL_DROPS = "ovs_vswitchd_kernel_drops_total"


@dataclass(frozen=True)
class Source:
    """One kind of drop: the series it is read from and how to name a row of it."""

    metric: str
    what: str
    """What dropped, or the label holding it (``{reason}``)."""
    where: tuple[str, ...]
    """Labels that say where (interface, datapath, thread); empty for switch-wide counters."""
    origin: str
    """Where the number comes from, in the operator's terms."""
    counter: str = ""
    """For coverage counters: the counter name's prefix this source takes (the rest is the reason)."""

    def takes(self, s: Series) -> bool:
        return not self.counter or s.label("counter").startswith(self.counter)

    def reason(self, s: Series) -> str:
        return s.label("counter").removeprefix(self.counter) if self.counter else s.label("reason")


def _interface(stat: str, text: str) -> Source:
    return Source(
        f"ovs_vswitchd_interface_{stat}_total", text, ("bridge", "interface"), f"OVSDB Interface statistics:{stat}"
    )


SOURCES: tuple[Source, ...] = (
    _interface("rx_dropped", "rx dropped"),
    _interface("tx_dropped", "tx dropped"),
    _interface("rx_errors", "rx errors"),
    _interface("tx_errors", "tx errors"),
    _interface("rx_missed_errors", "rx missed (NIC)"),
    Source(datapath.LOST.name, "lost upcalls", ("datapath",), "dpctl/show lost"),
    Source(pmd.COUNTERS["lost_upcalls"].name, "lost upcalls", ("datapath", "thread"), "pmd-perf-show lost upcalls"),
    # Read from the coverage series themselves (not their drop-named copies for /metrics), so that
    # recordings made before those copies existed show the same rows.
    Source(coverage.COVERAGE.name, "{reason}", (), "coverage/show datapath_drop_{reason}", "datapath_drop_"),
    Source(coverage.COVERAGE.name, "{reason}", (), "coverage/show drop_action_{reason}", "drop_action_"),
    Source(coverage.COVERAGE.name, "conntrack full", (), "coverage/show conntrack_full", "conntrack_full"),
    Source(KERNEL_DROPS, "{reason}", ("port",), "eBPF skb:kfree_skb (OVS drop reasons)"),
)
INPUTS = frozenset(s.metric for s in SOURCES)
"""Every metric the drops view reads: a consumer showing drops needs these collected."""


@dataclass(frozen=True)
class Drop:
    what: str
    where: str
    origin: str
    metric: str
    rate: float | None
    """Drops per second over the last interval; None on a first round or after a counter reset."""
    total: float


def _drop(src: Source, s: Series) -> Drop | None:
    if s.stale or not isinstance(s.value, float | int) or not src.takes(s):
        return None
    reason = src.reason(s)
    where = "/".join(s.label(n) for n in src.where if s.label(n)) or "switch"
    return Drop(
        src.what.replace("{reason}", reason),
        where,
        src.origin.replace("{reason}", reason),
        src.metric,
        s.rate,
        float(s.value),
    )


def collect(snap: Snapshot, sources: Iterable[Source] = SOURCES) -> list[Drop]:
    """Every drop counter in ``snap``, zero ones included, ranked: highest rate first, then highest total."""
    wanted: dict[str, list[Source]] = {}
    for src in sources:
        wanted.setdefault(src.metric, []).append(src)
    found = [d for s in snap.series for src in wanted.get(s.spec.name, ()) if (d := _drop(src, s))]
    return sorted(found, key=lambda d: (-(d.rate or 0.0), -d.total, d.what, d.where))


def dropping(drops: Iterable[Drop]) -> list[Drop]:
    """The drops that have happened (a total or a rate above zero): what the pane lists."""
    return [d for d in drops if d.total > 0 or (d.rate or 0.0) > 0]
