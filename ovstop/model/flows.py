"""Datapath flows followed from dump to dump: typed rows with rates and first-seen time, and what changed.

Comparing consecutive ``dpctl/dump-flows`` tables shows which megaflows were installed (after an upcall) and
which expired (revalidated or deleted) in between. It is coarser than upcall events: a flow installed and
expired within one interval is never seen. One :class:`FlowFollower` does it for a live run (the flows
collector) and one for a replay (the frame decoder), so a replay shows what the live run showed; the
results travel in the snapshot (:data:`FLOWS` and :data:`CHANGES` tables), where the TUI, the JSON snapshot
and /metrics (the per-datapath counters :data:`INSTALLED` and :data:`REMOVED`) read them.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.model.store import Snapshot

FLOWS = "dp_flows"
"""Snapshot table of the datapath flows of the round's dump (:class:`FlowRow`)."""
CHANGES = "flow_changes"
"""Snapshot table of the flows installed and expired over the last dumps (:class:`FlowChange`, oldest first;
a change's ``at`` is the time of the dump that saw it): the round's own changes and those of up to
:data:`RECENT_DUMPS` dumps before it (fewer past :data:`RECENT_CHANGES`), so a reader that missed a round
(a remote viewer polling) still gets its changes, taking those with an ``at`` newer than it has seen."""
RECENT_DUMPS = 5
RECENT_CHANGES = 2000

INSTALLED = MetricSpec(
    "ovs_vswitchd_datapath_flows_seen_installed_total",
    Kind.COUNTER,
    "Datapath flows found in a flow dump that the dump before did not list (flows installed and expired "
    "between two dumps are not seen). Only while ovstop dumps flows (a pane or client needs them; headless "
    "/metrics alone does not), and not for a datapath whose dump hit the --max-flows cap.",
    ("datapath", "flows", "seen_installed"),
    ("datapath",),
)
REMOVED = MetricSpec(
    "ovs_vswitchd_datapath_flows_seen_removed_total",
    Kind.COUNTER,
    "Datapath flows listed by a flow dump that the next dump no longer listed (expired or deleted). Only "
    "while ovstop dumps flows, and not for a datapath whose dump hit the --max-flows cap.",
    ("datapath", "flows", "seen_removed"),
    ("datapath",),
)
SPECS = (INSTALLED, REMOVED)

FlowId = tuple[str, str, str]
"""(datapath, pmd, ufid or key): what identifies one datapath flow across dumps."""


class _Fields(Mapping[str, Any]):
    """A frozen dataclass read as a read-only mapping of its fields (JSON, frames and generic table readers)."""

    __slots__ = ()
    __dataclass_fields__: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict, read in one call (10,000 flow rows: 10 ms rather than 25 through
        the mapping)."""
        names, get = _getter(type(self))
        return dict(zip(names, get(self), strict=True))


@functools.cache
def _getter(cls: type) -> tuple[tuple[str, ...], operator.attrgetter[Any]]:
    names = tuple(f.name for f in fields(cls))
    return names, operator.attrgetter(*names)


def plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """A table row as a plain dict (to write it): a typed row's fields, a dict as it is, others copied."""
    if isinstance(row, _Fields):
        return row.as_dict()
    return row if isinstance(row, dict) else dict(row)


@dataclass(frozen=True, slots=True)
class FlowRow(_Fields):
    """One datapath flow of a dump (the fields of :class:`ovstop.parsers.dump_flows.DpFlow` and its
    datapath), with its rates over the last interval (None on its first dump or after its counters went
    down) and the wall time of the first dump that listed it."""

    datapath: str
    ufid: str | None
    key: str
    actions: str
    packets: int
    bytes: int
    used_s: float | None = None
    dp: str | None = None
    offloaded: str | None = None
    flags: str | None = None
    pmd: str | None = None
    packets_rate: float | None = None
    bytes_rate: float | None = None
    first_seen: float | None = None

    @property
    def id(self) -> FlowId:
        return flow_id(self)


_ROW_FIELDS = tuple(f.name for f in fields(FlowRow))
_DUMP_FIELDS = _ROW_FIELDS[: _ROW_FIELDS.index("packets_rate")]
_dump_getter = operator.attrgetter(*_DUMP_FIELDS)


def dumped(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the dump said of a flow, without what the follower adds (rates, first-seen): what a recording
    keeps, the follower of its replay working out the rest again."""
    if isinstance(row, FlowRow):
        return dict(zip(_DUMP_FIELDS, _dump_getter(row), strict=True))
    return {k: row[k] for k in _DUMP_FIELDS if k in row}


@dataclass(frozen=True, slots=True)
class FlowChange(_Fields):
    """A flow that appeared (``installed``) or disappeared (``expired``) between two dumps, the later at
    ``at`` (wall time)."""

    at: float
    change: str
    datapath: str
    pmd: str
    ufid: str
    key: str
    actions: str
    packets: int


def flow_id(row: Mapping[str, Any]) -> FlowId:
    """A flow's identity; flows without a ufid (old kernels) are identified by their key."""
    return (str(row.get("datapath") or ""), str(row.get("pmd") or ""), str(row.get("ufid") or row.get("key") or ""))


def _change(at: float, change: str, row: FlowRow) -> FlowChange:
    return FlowChange(at, change, row.datapath, row.pmd or "", row.ufid or "", row.key, row.actions, row.packets)


def flow_rows(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[FlowRow]:
    """The typed flow rows of a snapshot's tables (none while flows were not dumped)."""
    return [r for r in tables.get(FLOWS, ()) if isinstance(r, FlowRow)]


def flow_changes(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[FlowChange]:
    """The flow changes of a snapshot's tables (none on a first dump or while flows were not dumped)."""
    return [c for c in tables.get(CHANGES, ()) if isinstance(c, FlowChange)]


def newest_changes(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows of a :data:`CHANGES` table that its newest dump saw (the earlier ones are listed again)."""
    newest = max((r["at"] for r in rows), default=None)
    return [r for r in rows if r["at"] == newest]


def row_of(data: Mapping[str, Any]) -> FlowRow:
    """A typed row from a mapping with a dump's fields (and any of the follower's, as a snapshot file has)."""
    return FlowRow(**{k: data[k] for k in _ROW_FIELDS if k in data})


def change_of(data: Mapping[str, Any]) -> FlowChange:
    """A flow change from its JSON form."""
    return FlowChange(**{f.name: data[f.name] for f in fields(FlowChange)})


@dataclass(frozen=True)
class FlowRound:
    """What one dump gave: its rows (rates and first-seen filled in), the changes since the dump before,
    and ``recent``: those and the changes of the dumps before it (see :data:`CHANGES`)."""

    rows: tuple[FlowRow, ...]
    changes: tuple[FlowChange, ...]
    recent: tuple[FlowChange, ...]

    def tables(self) -> dict[str, list[Mapping[str, Any]]]:
        return {FLOWS: list(self.rows), CHANGES: list(self.recent)}


class FlowFollower:
    """Follows the flow table dump after dump.

    The first dump is the baseline (its flows are not reported as installed). A flow's rates come from its
    counters in consecutive dumps: a flow seen for the first time, or whose counters went down (deleted and
    re-installed under the same ufid), gets no rate rather than a wrong one. ``installed``/``removed`` count
    changes per datapath for as long as the follower lives.
    """

    def __init__(self) -> None:
        self._last: dict[FlowId, FlowRow] | None = None
        self._at = 0.0
        self._whole: set[str] = set()
        self._counted: set[str] = set()
        self._recent: deque[tuple[FlowChange, ...]] = deque(maxlen=RECENT_DUMPS + 1)
        self.installed: Counter[str] = Counter()
        self.removed: Counter[str] = Counter()

    def follow(
        self,
        dumped: Iterable[Mapping[str, Any]],
        now: float,
        wall: float,
        datapaths: Iterable[str] = (),
        partial: Iterable[str] = (),
    ) -> FlowRound:
        """Fold in one dump taken at ``now`` (monotonic seconds, for rates) and ``wall`` (for times shown).
        A row that comes with rates (a snapshot written whole, replayed) keeps them.

        ``datapaths`` are those dumped (a datapath without flows still gets its counters); ``partial`` those
        whose dump was cut at the flow cap: their changes are not counted, this round and the next, since
        flows past the cap would count as removed or installed.
        """
        last = self._last
        seconds = now - self._at
        rows: dict[FlowId, FlowRow] = {}
        for data in dumped:
            fid = flow_id(data)
            prev = last.get(fid) if last is not None else None
            packets_rate, bytes_rate = data.get("packets_rate"), data.get("bytes_rate")
            packets, nbytes = int(data["packets"]), int(data["bytes"])
            if prev is None:
                first_seen: float | None = wall
            else:
                first_seen = prev.first_seen
                if "packets_rate" not in data and seconds > 0 and packets >= prev.packets and nbytes >= prev.bytes:
                    packets_rate = (packets - prev.packets) / seconds
                    bytes_rate = (nbytes - prev.bytes) / seconds
            get = data.get
            rows[fid] = FlowRow(
                data["datapath"],
                get("ufid"),
                data["key"],
                data["actions"],
                packets,
                nbytes,
                get("used_s"),
                get("dp"),
                get("offloaded"),
                get("flags"),
                get("pmd"),
                packets_rate,
                bytes_rate,
                first_seen,
            )
        changes: list[FlowChange] = []
        whole = set(datapaths) | {r.datapath for r in rows.values()}
        whole -= set(partial)
        counted = whole  # the baseline: nothing seen yet, zero is true
        if last is not None:
            changes = [_change(wall, "installed", r) for k, r in rows.items() if k not in last]
            changes += [_change(wall, "expired", r) for k, r in last.items() if k not in rows]
            counted = whole & self._whole
            for c in changes:
                if c.datapath in counted:
                    (self.installed if c.change == "installed" else self.removed)[c.datapath] += 1
        self._last, self._at, self._whole, self._counted = rows, now, whole, counted
        self._recent.append(tuple(changes))
        return FlowRound(tuple(rows.values()), tuple(changes), self._window())

    def _window(self) -> tuple[FlowChange, ...]:
        """The newest dump's changes whole, and earlier dumps' whole while the total stays within bounds."""
        kept: list[tuple[FlowChange, ...]] = []
        total = 0
        for dump in reversed(self._recent):
            if kept and total + len(dump) > RECENT_CHANGES:
                break
            kept.append(dump)
            total += len(dump)
        return tuple(c for dump in reversed(kept) for c in dump)

    def samples(self) -> Iterator[Sample]:
        """The change counters of the datapaths whose last two dumps were whole (or whose first one was)."""
        for dp in sorted(self._counted):
            labels = labels_of(datapath=dp)
            yield Sample(INSTALLED, labels, float(self.installed[dp]))
            yield Sample(REMOVED, labels, float(self.removed[dp]))


def completed(snap: Snapshot, follower: FlowFollower) -> Snapshot:
    """``snap`` with first-seen times and flow changes, when it is a whole snapshot written before they were
    part of one (read back from a file, so its own time is the only clock there is)."""
    if FLOWS not in snap.tables or CHANGES in snap.tables:
        return snap
    found = follower.follow(snap.tables[FLOWS], snap.timestamp, snap.timestamp)
    return dataclasses.replace(snap, tables={**snap.tables, **found.tables()})
