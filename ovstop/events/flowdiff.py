"""Datapath flows installed and expired between two flow dumps, and per-flow rates.

Where no eBPF source runs, this is the event stream unixctl can give: comparing consecutive
``dpctl/dump-flows`` tables (``Snapshot.tables["dp_flows"]``) shows which megaflows were installed (after an
upcall) and which expired (revalidated away) in between. It is coarser than upcall events: a flow installed
and expired within one interval is never seen, and it says so by being labelled as a flow diff.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

FlowId = tuple[str, str, str]
"""(datapath, pmd, ufid or key): what identifies one datapath flow across dumps."""

DEFAULT_MAX_CHANGES = 2000


def flow_id(row: Mapping[str, Any]) -> FlowId:
    """A flow's identity; flows without a ufid (old kernels) are identified by their key."""
    return (str(row.get("datapath") or ""), str(row.get("pmd") or ""), str(row.get("ufid") or row.get("key") or ""))


@dataclass(frozen=True)
class FlowChange:
    """A flow that appeared (``installed``) or disappeared (``expired``) between two dumps at ``at``."""

    at: float
    change: str
    datapath: str
    pmd: str
    ufid: str
    key: str
    actions: str
    packets: int


@dataclass(frozen=True)
class FlowStat:
    """One current flow with its rates over the last interval (None on its first dump) and first-seen time."""

    row: Mapping[str, Any]
    packets_rate: float | None
    bytes_rate: float | None
    first_seen: float


def _change(at: float, change: str, row: Mapping[str, Any]) -> FlowChange:
    return FlowChange(
        at,
        change,
        str(row.get("datapath") or ""),
        str(row.get("pmd") or ""),
        str(row.get("ufid") or ""),
        str(row.get("key") or ""),
        str(row.get("actions") or ""),
        int(row.get("packets") or 0),
    )


def diff_flows(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]], at: float) -> list[FlowChange]:
    """Flows of ``after`` not in ``before`` (installed) and of ``before`` not in ``after`` (expired)."""
    old = {flow_id(r): r for r in before}
    new = {flow_id(r): r for r in after}
    changes = [_change(at, "installed", r) for k, r in new.items() if k not in old]
    changes.extend(_change(at, "expired", r) for k, r in old.items() if k not in new)
    return changes


class FlowTracker:
    """Follows the flow table dump after dump: a bounded log of changes and when each flow was first seen.

    The first dump is the baseline (its flows are not reported as installed). Per-flow rates are the ones
    the sampler put on each row (``packets_rate``/``bytes_rate``, see :mod:`ovstop.model.flowrates`).
    """

    def __init__(self, max_changes: int = DEFAULT_MAX_CHANGES) -> None:
        self.changes: deque[FlowChange] = deque(maxlen=max_changes)
        self.total_changes = 0
        self._rows: dict[FlowId, Mapping[str, Any]] | None = None
        self._first_seen: dict[FlowId, float] = {}

    def observe(self, rows: Iterable[Mapping[str, Any]], at: float) -> list[FlowChange]:
        """Fold in the dump taken at ``at`` (seconds); returns this round's changes."""
        new = {flow_id(r): r for r in rows}
        changes: list[FlowChange] = []
        if self._rows is not None:
            changes = diff_flows(self._rows.values(), new.values(), at)
            self.changes.extend(changes)
            self.total_changes += len(changes)
        self._first_seen = {k: self._first_seen.get(k, at) for k in new}
        self._rows = new
        return changes

    def stats(self) -> list[FlowStat]:
        """The flows of the last dump with their rates."""
        if self._rows is None:
            return []
        return [
            FlowStat(row, row.get("packets_rate"), row.get("bytes_rate"), self._first_seen[k])
            for k, row in self._rows.items()
        ]

    def stats_of(self, rows: Iterable[Mapping[str, Any]], at: float) -> list[FlowStat]:
        """Rates of an earlier dump's flows (time scrub); a flow no longer followed counts from ``at``."""
        return [
            FlowStat(
                row, row.get("packets_rate"), row.get("bytes_rate"), min(self._first_seen.get(flow_id(row), at), at)
            )
            for row in rows
        ]
