"""What a collector is: a named producer of samples from one source.

A collector declares its metrics once (``specs``) and turns one source's answers into samples. It
raises :class:`ovstop.errors.SourceError` when its source cannot answer and
:class:`ovstop.errors.ParseError` when the answer makes no sense; the sampler records either as that
collector's health and keeps every other collector's samples.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ovstop.errors import SourceOff
from ovstop.model.metric import Labels, MetricSpec, Sample, Value

if TYPE_CHECKING:
    from ovstop.sources.ovn import OvnLink
    from ovstop.sources.ovsdb import OvsdbSource
    from ovstop.sources.unixctl import UnixctlClient


TREE_ORDER = (
    "datapath",
    "poll_threads",
    "upcall",
    "handler",
    "revalidator",
    "flow_lookup",
    "interface",
    "bridge",
    "flow_table",
    "tunnel",
    "conntrack",
    "memory",
    "coverage",
    "process",
    "system",
    "ovn",
    "ovstop",
)
"""Tree order of the top-level subsystems collectors produce (the first element of a spec's path): what an
operator reads first comes first; others follow by name. Handed to the store, which knows no subsystem."""


@dataclass
class Sources:
    """The live connections a collection round may use; any of them may be absent."""

    unixctl: UnixctlClient | None = None
    ovsdb: OvsdbSource | None = None
    ovn: OvnLink | None = None
    """OVN's databases, when the run looks for them (the tunnel collector names chassis from them)."""


@dataclass
class Tables:
    """Non-metric results of a round (datapath flows, OVN chassis list …), keyed by table name."""

    rows: dict[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)
    """Source -> why its samples this round are incomplete (shown as degraded, samples kept)."""


def renewed(old: Sample | None, spec: MetricSpec, labels: Labels, value: Value | None) -> Sample:
    """``old`` (last round's sample of the series, if any) when its labels and value are unchanged, else a new
    one. The store skips a sample that is the very object it had last round, at next to no cost,
    so a collector that keeps its unchanged samples makes a round cost what changed."""
    if old is not None and old.value == value and old.labels == labels:
        return old
    return Sample(spec, labels, value)


@dataclass(frozen=True, slots=True)
class Part:
    """One object's (an interface's, a bridge's …) part of a collector's round, kept for the next round."""

    made_of: tuple[Any, ...]
    """What the part is made of, compared with ``==``: for the OVSDB replica's rows, which are the same dicts
    while unchanged, mostly an identity check."""
    samples: tuple[Sample, ...]
    row: Mapping[str, Any]
    """The object's row of the collector's table (``Tables.rows``)."""

    def previous(self) -> dict[str, Sample]:
        """The part's samples by metric name, for :func:`renewed`."""
        return {s.spec.name: s for s in self.samples}


P = TypeVar("P", bound=Part)


class Memo(Generic[P]):
    """A collector's last round, part by part (only the last: what a round drops is let go).

    A round over the inputs of the last one (:meth:`renew` False) returns the last ``samples`` and ``rows``
    lists themselves; otherwise the collector puts each object's part, last round's (:meth:`known`)
    when it is made of the same, and :meth:`close` lays them out in order.
    """

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.rows: list[Mapping[str, Any]] = []
        self._inputs: tuple[object, tuple[object, ...]] | None = None
        self._last: dict[Hashable, P] = {}
        self._parts: dict[Hashable, P] = {}

    def renew(self, same: object, *equal: object) -> bool:
        """Start a round over ``same`` (compared by identity: the topology join, the same list while the replica
        is unchanged) and ``equal`` (compared by value); False when they are the last round's."""
        if self._inputs is not None and self._inputs[0] is same and self._inputs[1] == equal:
            return False
        self._inputs, self._last, self._parts = (same, equal), self._parts, {}
        return True

    def known(self, key: Hashable) -> P | None:
        """Last round's part of ``key``, if any."""
        return self._last.get(key)

    def put(self, key: Hashable, part: P) -> None:
        self._parts[key] = part

    def close(self) -> None:
        """Lay this round's parts out as its samples and rows, in the order they were put."""
        self._last = {}
        self.samples = [s for part in self._parts.values() for s in part.samples]
        self.rows = [part.row for part in self._parts.values()]


class Unavailable:
    """Stands for a source this run does not have, so its health says why (e.g. eBPF without root)."""

    name: str
    specs: tuple[MetricSpec, ...] = ()

    def __init__(self, source: str, reason: str) -> None:
        self.name = self.source = source
        self.reason = reason

    def collect(self, sources: Sources, tables: Tables) -> Iterable[Sample]:
        raise SourceOff(self.reason)


class Collector(Protocol):
    """A producer of samples. ``source`` names the source whose health its failures affect."""

    name: str
    source: str

    @property
    def specs(self) -> tuple[MetricSpec, ...]:
        """Every metric the collector can produce, described once."""
        ...

    def collect(self, sources: Sources, tables: Tables) -> Iterable[Sample]:
        """Read the source once and return samples; may also fill ``tables``."""
        ...
