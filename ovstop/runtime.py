"""Assembling a running ovstop from options: the switch to watch (local, given, or a sandbox), its
sources, the collectors and the sampler. Shared by the TUI, headless mode and ``snapshot``.

Nothing here imports Textual.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovstop.collect.base import Collector, Sources, Unavailable
from ovstop.collect.demand import EVERYTHING
from ovstop.collect.registry import default_collectors
from ovstop.collect.sampler import Sampler
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
from ovstop.sources.unixctl import UnixctlClient


@dataclass
class Options:
    """What the user asked for, independent of how it was asked (flags, tests, benchmarks)."""

    unixctl: str | None = None
    db: str | None = None
    sandbox: bool = False
    sandbox_ports: int = 4
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
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Runtime:
    """Everything a mode needs while it runs; ``close()`` releases it all (sandbox included)."""

    options: Options
    sources: Sources
    sampler: Sampler
    events: EventPipeline
    stack: contextlib.ExitStack
    capture: Any = None
    """The eBPF capture thread when one runs (it feeds ``events``)."""
    events_reason: str = ""
    """Why no capture runs, in the user's terms (empty when one does)."""

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
        fresh = CaptureThread(capture.on_event, view=capture.view, deep=on)
        capture.stop()
        fresh.start()
        self.stack.callback(fresh.stop)
        for collector in self.sampler.collectors:
            if isinstance(collector, EbpfCollector):
                collector.capture = fresh
        self.capture = fresh
        return True, ("per-packet hooks on (flow_lookup, action_execute): their cost shows as bpf time/s"
                      if on else "per-packet hooks off: upcall path only")

    def first_sample(self) -> Snapshot:
        """Collect once; fail with one clear line when not a single source answered.

        The run starts here: only then is ``--record``'s file opened (a start-up that fails leaves an
        existing file as it was), and this first snapshot is its first.
        """
        snap = self.sampler.sample()
        present = [h for h in snap.health.values() if not h.off]
        if present and not any(h.up for h in present):
            raise OvstopError("; ".join(f"{h.name}: {h.reason}" for h in present))
        if self.options.record and self.events.recorder is None:
            o = self.options
            self.events.recorder = start_recording(o.record, self.sampler, self.stack, snap, o.record_overwrite,
                                                   o.record_rotate, o.record_keep)
        # What exists now (modules, replicas, caches) lives as long as the run: keep it out of every
        # future garbage collection, which otherwise rescans it each time a round's garbage is collected.
        gc.freeze()
        return snap


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
    recorder.on_rotate.append(encoder.restart)  # every part starts with a key frame: it replays on its own
    recorder.snapshot(encoder.encode(first))
    sampler.listeners.append(lambda snap: recorder.snapshot(encoder.encode(snap)))
    return recorder


def _unixctl_path(options: Options) -> str | Path | Any:
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
        if options.sandbox:
            from ovstop.sandbox.session import start_sandbox

            sandbox = stack.enter_context(start_sandbox(options))
            options.unixctl = None
            options.db = sandbox.db_remote
            unixctl_path: Any = sandbox.ctl_path
            options.extra["sandbox"] = sandbox
        else:
            unixctl_path = _unixctl_path(options)
        label_map = LabelMap.load(options.labels) if options.labels else LabelMap()
        unixctl = UnixctlClient(unixctl_path, timeout=options.timeout)
        stack.callback(unixctl.close)
        ovsdb = OvsdbSource(options.db or discovery.default_db_remote(), timeout=max(options.timeout, 3.0))
        stack.callback(ovsdb.close)
        sources = Sources(unixctl=unixctl, ovsdb=ovsdb)
        events = EventPipeline(Correlator(), EventStore(max_events=options.max_events))
        sources.extra["events"] = events
        collectors: list[Collector] = default_collectors(options, label_map, sources, stack)
        capture, events_reason = start_capture(options.ebpf, options.sandbox, events, stack, options.ebpf_deep)
        collectors.append(EbpfCollector(capture) if capture is not None else Unavailable("ebpf", events_reason))
        sampler = Sampler(sources, collectors, MetricStore(history=options.history), round_timeout=options.timeout)
        label_map.check_specs(sampler.specs, options.labels or "")
        if options.record:
            sampler.need("record", EVERYTHING)  # a recording replays every pane: it needs everything
        return Runtime(options, sources, sampler, events, stack, capture, events_reason)
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
