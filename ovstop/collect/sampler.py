"""One collection round: every collector once, failures isolated, the result folded into the store.

Rounds never overlap (a lock); readers that must not wait for one (``/metrics``) read what
:mod:`ovstop.collect.refresher` publishes instead of calling the sampler. Consumers state what they
need (:meth:`Sampler.need`); a round runs only the collectors that the union of those demands wants (all
of them when nobody said).
A collector that fails marks its source down (or degraded, for a parse error) with the reason, and the
rest of the round goes on.
"""

from __future__ import annotations

import logging
import operator
import platform
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ovstop import __version__
from ovstop import health as checks
from ovstop.collect.base import TREE_ORDER, Collector, Parts, Sources, Tables
from ovstop.collect.demand import EVERYTHING, Demand
from ovstop.collect.process import read_stat
from ovstop.errors import ParseError, SourceError, SourceOff, describe
from ovstop.model.block import CounterBlock
from ovstop.model.metric import Kind, MetricSpec, Sample, labels_of
from ovstop.model.store import MetricStore, Snapshot, SourceHealth
from ovstop.sources.deadline import round_deadline

SELF = "ovstop"
_spec_name = operator.attrgetter("spec.name")
log = logging.getLogger(__name__)

SOURCE_UP = MetricSpec(
    "ovstop_source_up",
    Kind.GAUGE,
    "Whether a data source answered in the last collection (1) or not (0).",
    ("ovstop", "source_up"),
    ("source",),
)
PARSE_ERRORS = MetricSpec(
    "ovstop_parse_errors_total",
    Kind.COUNTER,
    "Replies a collector could not parse.",
    ("ovstop", "parse_errors"),
    ("collector",),
)
COLLECT_SECONDS = MetricSpec(
    "ovstop_collect_duration_seconds",
    Kind.GAUGE,
    "Time the last full collection took.",
    ("ovstop", "collect_duration"),
    unit="seconds",
)
SELF_CPU = MetricSpec(
    "ovstop_process_cpu_seconds_total",
    Kind.COUNTER,
    "User and system CPU time ovstop itself has used.",
    ("ovstop", "process", "cpu_seconds"),
    unit="seconds",
)
SELF_RSS = MetricSpec(
    "ovstop_process_resident_memory_bytes",
    Kind.GAUGE,
    "Resident memory of ovstop itself.",
    ("ovstop", "process", "resident_memory"),
    unit="bytes",
)
SELF_SPECS = (SOURCE_UP, PARSE_ERRORS, COLLECT_SECONDS, checks.HEALTH, SELF_CPU, SELF_RSS)


@dataclass(frozen=True)
class _Output:
    """A list a collector returned (the whole of it, or one of its :class:`Parts`), handed to the store as
    it is (the collector no longer changes it), and the metric names in it.

    A collector that saw no change since the last round may return the very same list (see
    :mod:`ovstop.collect.base`); the sampler then hands the store the same batch, which it skips whole.
    """

    got: Sequence[Sample]
    names: frozenset[str]


class Sampler:
    """Runs the collectors over the sources; ``latest`` is the newest snapshot.

    ``listeners`` are called with every new snapshot (in the collecting thread), e.g. to record it.
    ``round_timeout`` (seconds) is the deadline of a whole round: every source call in it shares it (see
    :mod:`ovstop.sources.deadline`), so a hung daemon costs one timeout per round, not one per call.
    """

    def __init__(
        self,
        sources: Sources,
        collectors: Sequence[Collector],
        store: MetricStore | None = None,
        round_timeout: float | None = None,
    ) -> None:
        self.sources = sources
        self.round_timeout = round_timeout
        self.collectors = list(collectors)
        self.store = store or MetricStore(tree_order=TREE_ORDER)
        self.latest: Snapshot | None = None
        self._lock = threading.Lock()
        self._parse_errors: Counter[str] = Counter()
        self._last_ok: dict[str, float] = {}
        self.listeners: list[Callable[[Snapshot], None]] = []
        self._demands: dict[str, tuple[Demand, float | None]] = {}
        self._health: dict[str, SourceHealth] = {}
        self._outputs: dict[tuple[str, int], _Output] = {}
        """Last round's list from each collector that returns one, and the batch made of it."""
        self.calls: Counter[str] = Counter()
        """Rounds in which each collector ran (its cost is paid only when someone needs it)."""

    def need(self, consumer: str, demand: Demand | None, ttl: float | None = None) -> None:
        """``consumer`` needs ``demand`` from the next rounds on (None: it needs nothing any more); with
        ``ttl``, only for that many seconds unless renewed (a remote viewer that may go away unannounced)."""
        with self._lock:
            if demand is None:
                self._demands.pop(consumer, None)
            else:
                self._demands[consumer] = (demand, None if ttl is None else time.monotonic() + ttl)

    @property
    def demand(self) -> Demand:
        """The union of what the consumers need; everything while none has said."""
        now = time.monotonic()
        demands = [d for d, until in self._demands.values() if until is None or until > now]
        if not demands:
            return EVERYTHING
        total = demands[0]
        for d in demands[1:]:
            total = total | d
        return total

    @property
    def specs(self) -> tuple[MetricSpec, ...]:
        """Every metric this sampler can produce, described once."""
        specs: list[MetricSpec] = list(SELF_SPECS)
        for collector in self.collectors:
            specs.extend(collector.specs)
        return tuple(specs)

    def sample(self) -> Snapshot:
        """Run one round (after the one in flight, if any) within the sampler's ``round_timeout``."""
        with self._lock:
            if self.round_timeout is not None:
                with round_deadline(self.round_timeout):
                    self.latest = self._round()
            else:
                self.latest = self._round()
            for listener in self.listeners:
                listener(self.latest)
            return self.latest

    def _round(self) -> Snapshot:
        started = time.monotonic()
        failures: dict[str, str] = {}
        degraded: dict[str, str] = {}
        off: dict[str, str] = {}
        batches: list[tuple[str, Sequence[Sample]]] = []  # (source, samples) per collector, in order
        tables = Tables()
        if self.sources.ovsdb is not None:
            try:
                self.sources.ovsdb.refresh()
            except SourceError as exc:
                failures["ovsdb"] = describe(exc)
        # metric name -> the collector's part that produced it first this round: a series comes in one batch
        owner: dict[str, tuple[str, int]] = {}
        demand = self.demand
        ran = [c for c in self.collectors if demand.wants(c.name)]
        outputs: dict[tuple[str, int], _Output] = {}
        for collector in ran:
            if collector.source in failures:
                continue
            name = collector.name
            self.calls[name] += 1
            try:
                got = collector.collect(self.sources, tables)
                for index, part in enumerate(got.lists if type(got) is Parts else (got,)):
                    self._take(part, (name, index), collector.source, owner, batches, outputs)
            # A reason is one line whatever a source answered (an error text may run over several).
            except SourceOff as exc:
                off[collector.source] = describe(exc)
            except SourceError as exc:
                failures[collector.source] = describe(exc)
            except ParseError as exc:
                self._parse_errors[name] += 1
                degraded.setdefault(collector.source, describe(exc))
            except Exception as exc:  # a collector bug must not lose the other collectors' data
                log.exception("collector %s failed", name)
                self._parse_errors[name] += 1
                degraded.setdefault(collector.source, f"{name}: internal error: {describe(exc)}")
        self._outputs = outputs
        for source, warning in tables.warnings.items():
            degraded.setdefault(source, warning)
        # A source that failed part-way through the round is down: what its other collectors read before
        # is not exported as fresh (the store carries the last values over as stale).
        if failures:
            batches = [(source, batch) for source, batch in batches if source not in failures]
        own_samples: list[Sample] = []
        batches.append((SELF, own_samples))
        now = time.monotonic()
        wall = time.time()
        health: dict[str, SourceHealth] = {}
        asked = dict.fromkeys(c.source for c in ran)
        for source in dict.fromkeys(c.source for c in self.collectors):
            if source not in asked:  # nobody needed it this round: what was last known of it
                if source in self._health:
                    health[source] = self._health[source]
                continue
            if source in off:
                health[source] = SourceHealth(source, False, off[source], None, off=True)
                continue
            up = source not in failures
            if up:
                self._last_ok[source] = wall
            reason = failures.get(source) or degraded.get(source, "")
            health[source] = SourceHealth(source, up, reason, self._last_ok.get(source))
            own_samples.append(Sample(SOURCE_UP, labels_of(source=source), 1.0 if up else 0.0))
        self._health = health
        for collector in ran:
            errors = float(self._parse_errors[collector.name])
            own_samples.append(Sample(PARSE_ERRORS, labels_of(collector=collector.name), errors))
        elapsed = now - started
        own_samples.append(Sample(COLLECT_SECONDS, (), elapsed))
        own = read_stat("self")  # the observer's own cost, next to what it observes
        if own is not None:
            own_samples += [Sample(SELF_CPU, (), own[1]), Sample(SELF_RSS, (), own[2])]
        return self.store.update(
            batches, now, wall, health, tables.rows, self._meta(), collect_seconds=elapsed, derive=checks.derive
        )

    def _take(
        self,
        got: Iterable[Sample],
        key: tuple[str, int],
        source: str,
        owner: dict[str, tuple[str, int]],
        batches: list[tuple[str, Sequence[Sample]]],
        outputs: dict[tuple[str, int], _Output],
    ) -> None:
        """Add one part of what a collector returned to the round's batches (each metric name kept for the
        collector's part that produced it first: a series is in one batch of a round); the very list of last
        round's same part gives last round's batch."""
        last = self._outputs.get(key)
        if last is not None and got is last.got and all(owner.setdefault(n, key) == key for n in last.names):
            # The part saw no change: the same batch, which the store skips as a whole.
            batches.append((source, last.got))
            outputs[key] = last
            return
        if type(got) is not list and type(got) is not CounterBlock:
            # A generator: what it yields before it raises is kept all the same.
            batch: list[Sample] = []
            batches.append((source, batch))
            for sample in got:
                if owner.setdefault(sample.spec.name, key) == key:
                    batch.append(sample)
            return
        # A few names for thousands of samples, read at C speed (a block knows its own).
        names = got.names if type(got) is CounterBlock else frozenset(map(_spec_name, got))
        mine = {n for n in names if owner.setdefault(n, key) == key}
        if len(mine) == len(names):  # kept whole: can be the same next round
            batches.append((source, got))
            outputs[key] = _Output(got, names)
        else:
            batches.append((source, [sample for sample in got if sample.spec.name in mine]))

    def _meta(self) -> dict[str, Any]:
        unixctl = self.sources.unixctl
        meta: dict[str, Any] = {
            "ovstop_version": __version__,
            "hostname": platform.node(),
        }
        if unixctl is not None:
            meta["ovs_version"] = unixctl.version
            meta["unixctl"] = unixctl.connected_path
            meta["capabilities"] = sorted(unixctl.commands)
            meta["unixctl_format"] = unixctl.output_format
            meta["unixctl_format_reason"] = unixctl.format_reason
            meta["unixctl_formats"] = dict(sorted(unixctl.formats.items()))
        return meta
