"""What the consumers of a collection round need: which collectors run.

Each consumer (the TUI by its visible panes, the /metrics exporter, ``snapshot``, ``--record``) states a
:class:`Demand`; the sampler runs a round for the union of the current demands and skips every collector
nobody needs. A demand is either a closed set of collector names or "every collector but these", a form
that stays closed under union.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Demand:
    """``only`` names the collectors wanted (None: all of them); ``but`` the ones excluded from "all"."""

    only: frozenset[str] | None = None
    but: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *names: str) -> Demand:
        return cls(frozenset(names))

    @classmethod
    def all_but(cls, *names: str) -> Demand:
        return cls(None, frozenset(names))

    def wants(self, collector: str) -> bool:
        if self.only is not None:
            return collector in self.only
        return collector not in self.but

    def __or__(self, other: Demand) -> Demand:
        if self.only is not None and other.only is not None:
            return Demand(self.only | other.only)
        if self.only is None and other.only is None:
            return Demand(None, self.but & other.but)
        # One side is "all but X", the other a closed set S: all but the part of X that S wants.
        closed = self.only if self.only is not None else other.only or frozenset()
        excluded = other.but if self.only is not None else self.but
        return Demand(None, excluded - closed)


EVERYTHING = Demand()
NOTHING = Demand(frozenset())

FLOW_DUMP = "flows"
"""The collector behind ``dpctl/dump-flows``: by far the largest reply, needed only where flows are shown."""

INTERFACES = "interface"
"""The per-interface collector: 10 series an interface, 10,000 of the 11,300 series of a 1,000-port switch."""

METRICS = Demand.all_but(FLOW_DUMP)
"""What /metrics exports: every metric, no per-flow series, so no flow dump (flow counts come from
``dpctl/show``)."""

SUMMARY = Demand.all_but(FLOW_DUMP, INTERFACES)
"""Everything but the per-flow and per-interface series: what the TUI's header (headline figures, health
checks) needs whatever pane is shown."""
