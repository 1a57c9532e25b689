"""What a collector is: a named producer of samples from one source.

A collector declares its metrics once (``specs``) and turns one source's answers into samples. It
raises :class:`ovstop.errors.SourceError` when its source cannot answer and
:class:`ovstop.errors.ParseError` when the answer makes no sense; the sampler records either as that
collector's health and keeps every other collector's samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol

from ovstop.errors import SourceOff
from ovstop.model.metric import MetricSpec, Sample

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


@dataclass(frozen=True, slots=True, eq=False)
class Parts:
    """A collector's samples in lists that change apart (say, interfaces' identities and their traffic): the
    sampler takes each list as a batch of its own, so one that is the very list of last round's same part
    is skipped whole, by the sampler and the store, while another changed. A list may be a
    :class:`~ovstop.model.block.CounterBlock`. Iterates as all the samples."""

    lists: tuple[Sequence[Sample], ...]

    def __iter__(self) -> Iterator[Sample]:
        return chain.from_iterable(self.lists)


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
        """Read the source once and return samples; may also fill ``tables``.

        A round costs what changed when the collector keeps its last round (:mod:`ovstop.collect.memo`):
        given the same inputs, it returns the very same list as last round, which the sampler and the
        store skip whole; otherwise each sample of a series that reads as before is last round's object,
        which the store skips at next to no cost. ``tables`` is filled every round either way.
        """
        ...
