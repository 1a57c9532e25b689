"""Assembling a running ovstop from options: the switch to watch (local, given, or a sandbox), its
sources, the collectors and the sampler. Shared by the TUI, headless mode and ``snapshot``.

Nothing here imports Textual.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ovstop.collect.base import TREE_ORDER, Collector, Sources, Unavailable
from ovstop.collect.config import CollectConfig
from ovstop.collect.demand import EVERYTHING
from ovstop.collect.registry import default_collectors
from ovstop.collect.sampler import Sampler
from ovstop.cycles import PACED_YOUNG_THRESHOLD, CyclePacer
from ovstop.ebpf.capture import CaptureThread
from ovstop.ebpf.collector import EbpfCollector
from ovstop.ebpf.session import start_capture
from ovstop.errors import OvstopError
from ovstop.events.correlator import Correlator
from ovstop.events.pipeline import EventPipeline
from ovstop.events.recording import DEFAULT_KEEP, Recorder
from ovstop.events.store import EventStore
from ovstop.export.frames import FrameEncoder
from ovstop.model.labels import LabelMap
from ovstop.model.store import MetricStore, Snapshot
from ovstop.sources import discovery
from ovstop.sources.ovsdb import OvsdbSource
from ovstop.sources.unixctl import PathSpec, UnixctlClient

if TYPE_CHECKING:
    from ovstop.sandbox.session import SandboxSession


@dataclass(frozen=True)
class Options:
    """What the user asked for, independent of how it was asked (flags, tests, benchmarks).

    Read-only: the runtime derives each layer's own config from it (:class:`CollectConfig`,
    :class:`~ovstop.sandbox.session.SandboxConfig`) and never writes back into it.
    """

    unixctl: str | None = None
    db: str | None = None
    sandbox: bool = False
    sandbox_ports: int = 4
    sandbox_pmd: bool = True
    traffic_pps: float = 200.0
    labels: str | None = None
    timeout: float = 2.0
    history: int = 120
    max_flows: int = 10_000
    ovn: bool = False
    ovn_nb: str | None = None
    ovn_sb: str | None = None
    ebpf: bool = True
    ebpf_deep: bool = False
    record: str | None = None
    record_rotate: int | None = None
    record_keep: int = DEFAULT_KEEP
    record_overwrite: bool = False
    max_events: int = 10_000
    interval: float = 1.0
    """Seconds between collection rounds (``-d/--delay``)."""
    replay: str | None = None
    """A recording to show instead of a live switch (TUI only)."""
    connect: str | None = None
    """A remote ``ovstop --headless`` to show instead of a live switch (TUI only), with the CA to trust for
    https and the file holding ``user:password`` (else $OVSTOP_CONNECT_AUTH)."""
    connect_ca: str | None = None
    connect_auth_file: str | None = None
    history_depth: float = 300.0
    """Seconds of past snapshots the TUI keeps for time scrub (``--history-depth``)."""
    max_age: float | None = None
    """Headless: the oldest data a scrape is served (``--max-age``; None: the refresher's default bound)."""


@dataclass
class Runtime:
    """Everything a mode needs while it runs; ``close()`` releases it all (sandbox included)."""

    options: Options
    sources: Sources
    sampler: Sampler
    events: EventPipeline
    stack: contextlib.ExitStack
    capture: CaptureThread | None = None
    """The eBPF capture thread when one runs (it feeds ``events``)."""
    events_reason: str = ""
    """Why no capture runs, in the user's terms (empty when one does)."""
    sandbox: SandboxSession | None = None
    """The sandbox this run started (``options.sandbox``), with its endpoints."""
    pacer: CyclePacer = field(default_factory=CyclePacer)
    """Paces the cycle collector from the first round on (see :mod:`ovstop.cycles`)."""

    @property
    def event_store(self) -> EventStore | None:
        """The live event store, or None when nothing captures events."""
        return self.events.store if self.capture is not None else None

    def close(self) -> None:
        self.stack.close()

    def set_deep(self, on: bool) -> tuple[bool, str]:
        """Turn the per-packet eBPF hooks on or off (the capture restarts with the other probe set): whether
        they are now as asked, and what happened in one line."""
        capture = self.capture
        if capture is None:
            return False, f"eBPF capture is off: {self.events_reason}"
        if capture.deep == on:
            return True, f"per-packet hooks already {'on' if on else 'off'}"
        fresh = CaptureThread(capture.on_event, view=capture.view, deep=on, on_idle=capture.on_idle)
        capture.stop()
        fresh.start()
        self.stack.callback(fresh.stop)
        for collector in self.sampler.collectors:
            if isinstance(collector, EbpfCollector):
                collector.capture = fresh
        self.capture = fresh
        return True, (
            "per-packet hooks on (flow_lookup, action_execute): their cost shows as bpf time/s"
            if on
            else "per-packet hooks off: upcall path only"
        )

    def first_sample(self) -> Snapshot:
        """Collect once; fail with one clear line when not a single source answered.

        The run starts here: only then is ``--record``'s file opened (a start-up that fails leaves an
        existing file as it was), and this first snapshot is its first.
        """
        snap = self.sampler.sample()
        present = [h for h in snap.health.values() if not h.off]
        if present and not any(h.up for h in present):
            raise OvstopError("; ".join(f"{h.name}: {h.reason}" for h in present))
        o = self.options
        if o.record and self.events.recorder is None:
            self.events.recorder = start_recording(
                o.record, self.sampler, self.stack, snap, o.record_overwrite, o.record_rotate, o.record_keep
            )
        self.pacer.settle()
        return snap

    def serve_rounds(self) -> None:
        """Rounds for an exporter (no UI in this process): the store makes series only when they change or
        are read (see :attr:`MetricStore.lazy`), and what each round keeps is frozen (see :mod:`ovstop.cycles`).
        """
        self.sampler.store.lazy = True
        if self.pacer.round_done not in self.sampler.listeners:
            self.pacer.settle(PACED_YOUNG_THRESHOLD)
            self.sampler.listeners.append(self.pacer.round_done)


def start_recording(
    path: str,
    sampler: Sampler,
    stack: contextlib.ExitStack,
    first: Snapshot,
    overwrite: bool = False,
    rotate: int | None = None,
    keep: int = DEFAULT_KEEP,
) -> Recorder:
    """``--record``: events as captured plus ``first`` and every later snapshot as a frame (the values that
    changed), in Retis-compatible JSON lines, rotated by size when asked."""
    recorder = Recorder(path, overwrite=overwrite, rotate=rotate, keep=keep)
    stack.callback(recorder.close)
    encoder = FrameEncoder()

    def record(snap: Snapshot) -> None:
        if recorder.rotate_if_due():
            encoder.restart()  # every part starts with a key frame: it replays on its own
        recorder.snapshot(encoder.encode(snap))

    record(first)
    sampler.listeners.append(record)
    return recorder


def _unixctl_path(options: Options) -> PathSpec:
    if options.unixctl:
        path = Path(options.unixctl)
        if not path.exists():
            raise OvstopError(f"--unixctl {path}: no such socket")
        return path
    return discovery.daemon_ctl_path


def open_runtime(options: Options) -> Runtime:
    """Start what ``options`` asks for (a sandbox switch, connections) and return the runtime."""
    stack = contextlib.ExitStack()
    try:
        sandbox: SandboxSession | None = None
        unixctl_path: PathSpec
        if options.sandbox:
            from ovstop.sandbox.session import SandboxConfig, start_sandbox

            sandbox = stack.enter_context(
                start_sandbox(
                    SandboxConfig(options.sandbox_ports, options.traffic_pps, options.ovn, options.sandbox_pmd)
                )
            )
            unixctl_path, db = sandbox.ctl_path, sandbox.db_remote
            ovn_nb, ovn_sb = sandbox.ovn_nb or options.ovn_nb, sandbox.ovn_sb or options.ovn_sb
            ovn_rundir = sandbox.ovn_rundir
        else:
            unixctl_path, db = _unixctl_path(options), options.db or discovery.default_db_remote()
            ovn_nb, ovn_sb, ovn_rundir = options.ovn_nb, options.ovn_sb, None
        label_map = LabelMap.load(options.labels) if options.labels else LabelMap()
        unixctl = UnixctlClient(unixctl_path, timeout=options.timeout)
        stack.callback(unixctl.close)
        ovsdb = OvsdbSource(db, timeout=max(options.timeout, 3.0))
        stack.callback(ovsdb.close)
        sources = Sources(unixctl=unixctl, ovsdb=ovsdb)
        events = EventPipeline(Correlator(), EventStore(max_events=options.max_events))
        config = CollectConfig(options.timeout, options.max_flows, ovn_nb, ovn_sb, ovn_rundir)
        collectors: list[Collector] = default_collectors(config, label_map, sources, stack)
        capture, events_reason = start_capture(
            options.ebpf, options.sandbox, events, stack, options.ebpf_deep, on_idle=events.release_expired
        )
        collectors.append(EbpfCollector(capture) if capture is not None else Unavailable("ebpf", events_reason))
        store = MetricStore(history=options.history, tree_order=TREE_ORDER)
        sampler = Sampler(sources, collectors, store, round_timeout=options.timeout)
        label_map.check_specs(sampler.specs, options.labels or "")
        if options.record:
            sampler.need("record", EVERYTHING)  # a recording replays every pane: it needs everything
        return Runtime(options, sources, sampler, events, stack, capture, events_reason, sandbox)
    except BaseException:
        stack.close()
        raise


@contextlib.contextmanager
def running(options: Options) -> Iterator[Runtime]:
    """``with running(options) as rt:`` — the runtime, always closed (sandbox stopped) on the way out."""
    runtime = open_runtime(options)
    try:
        yield runtime
    finally:
        runtime.close()
