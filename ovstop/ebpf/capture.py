"""The eBPF capture thread: compiles the program, attaches what the system allows, streams events.

A plain thread with a stop flag and a poll timeout (not a Textual worker). Compiling takes a few
seconds, so it happens in the thread and :meth:`CaptureThread.start` returns at once; ``ready`` is
set once probes are attached (or setup failed, then ``error`` says why). Every probe is detached
when the thread ends, whatever ends it.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ovstop.ebpf import kernel_drops
from ovstop.ebpf.bcc_import import import_bcc
from ovstop.ebpf.bpfstats import enable_run_time_stats, program_stats
from ovstop.ebpf.capability import SystemView, drops_missing, plan_hooks, probe_system
from ovstop.ebpf.decode import COUNTERS, LOOKUP_TOTALS, decode_batch, ufid_str
from ovstop.ebpf.hooks import Hook, Kind
from ovstop.ebpf.program import compile_program, fexit_defines
from ovstop.errors import OvstopError, SourceError, describe
from ovstop.events.schema import OvsEvent
from ovstop.model.metric import Histogram

log = logging.getLogger(__name__)
_T = TypeVar("_T")
LATENCY_SLOTS = 33
"""Latency buckets: bcc's log2 slot ``i`` holds values below 2**i ns; slots 0..32 (up to ~4.3 s) get
their own bucket, longer upcalls fall in +Inf."""
LATENCY_BOUNDS = (*(2.0**i / 1e9 for i in range(LATENCY_SLOTS)), math.inf)


@dataclass(frozen=True)
class Aggregates:
    """Contents of the in-kernel maps at one moment (counters since attach)."""

    latency: dict[int, Histogram] = field(default_factory=dict)
    """Upcall latency in seconds per datapath in_port."""
    latency_total: Histogram = field(default_factory=lambda: _histogram({}, 0))
    lookup: dict[str, int] = field(default_factory=dict)
    """Totals: hit, miss, mask_hit, cache_hit."""
    flow_hits: dict[str, int] = field(default_factory=dict)
    """Lookup hits per UFID (``dpctl/dump-flows`` spelling)."""
    flow_misses: dict[tuple[int, int], int] = field(default_factory=dict)
    """Lookup misses per (in_port, skb hash)."""
    counters: dict[str, int] = field(default_factory=dict)
    """events_lost, sampled_out."""


def _histogram(slots: dict[int, int], total_ns: int) -> Histogram:
    counts = [0] * (LATENCY_SLOTS + 1)
    for slot, n in slots.items():
        counts[min(slot, LATENCY_SLOTS)] += n
    return Histogram(LATENCY_BOUNDS, tuple(counts), total_ns / 1e9)


def _percpu_sum(value: Any) -> int:
    return sum(int(v) for v in value)


class CaptureThread(threading.Thread):
    """Capture OVS events with eBPF and hand each one, decoded, to ``on_event``.

    Records are copied out of the ring buffer during a poll and decoded together after it, in one pass
    (:func:`~ovstop.ebpf.decode.decode_batch`).

    ``on_event`` runs on this thread and must not block; when it raises (a recorder on a full disk), the
    event is counted in ``delivery_errors``, ``delivery_error`` says why, and capture goes on with the next
    one. ``on_idle``, when given, is called after every poll with the monotonic clock in ns (the clock of
    the events' timestamps), so a sink that holds events back can release them while nothing arrives.
    ``sample_every`` keeps 1 event in N and
    ``max_events_per_sec`` caps the rate (0 = no cap); the in-kernel aggregates always count every
    packet.
    """

    def __init__(
        self,
        on_event: Callable[[OvsEvent], None],
        *,
        view: SystemView | None = None,
        sample_every: int = 1,
        max_events_per_sec: int = 10000,
        ringbuf_pages: int = 64,
        poll_timeout_ms: int = 100,
        deep: bool = False,
        on_idle: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(name="ovstop-ebpf", daemon=True)
        if sample_every < 1 or max_events_per_sec < 0:
            raise SourceError("eBPF sampling needs sample_every >= 1 and max_events_per_sec >= 0")
        self.on_event = on_event
        self.on_idle = on_idle
        self.deep = deep
        """Attach the per-packet hooks too (flow_lookup, action_execute); off by default."""
        self.view = view
        self.sample_every = sample_every
        self.max_events_per_sec = max_events_per_sec
        self.ringbuf_pages = ringbuf_pages
        self.poll_timeout_ms = poll_timeout_ms
        self.ready = threading.Event()
        self.error: OvstopError | None = None
        self.attached: list[Hook] = []
        self.missing: dict[str, str] = {}
        self.events_seen = 0
        self.decode_errors = 0
        self.delivery_errors = 0
        self.delivery_error = ""
        self.perf_lost = 0
        self._stop_flag = threading.Event()
        self._lock = threading.Lock()
        self._bpf: Any = None
        self._usdt_path = ""
        self._batch: list[bytes] = []
        self._stats_fd: int | None = None
        self.stats_reason = ""
        """Why the kernel's per-program run-time statistics are not available (empty when they are)."""
        self._drops: Any = None
        self.drops_reason = "capture not started"
        """Why kernel drops by reason are not counted (empty while bpf/drops.c is attached)."""

    # --- owner side -------------------------------------------------------------------------
    def stop(self, timeout: float | None = 5.0) -> None:
        """Ask the thread to detach and end; waits up to ``timeout`` unless called from the thread."""
        self._stop_flag.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    @property
    def events_lost(self) -> int:
        return self._counters().get("events_lost", 0) + self.perf_lost

    @property
    def sampled_out(self) -> int:
        return self._counters().get("sampled_out", 0)

    def program_stats(self) -> dict[str, tuple[int, int]]:
        """``{program: (run_time_ns, run_cnt)}`` from the kernel, while capture runs with statistics on."""
        with self._lock:
            if self._bpf is None or self._stats_fd is None:
                return {}
            return program_stats({name.decode(): fn.fd for name, fn in self._bpf.funcs.items()})

    def read_kernel_drops(self) -> dict[tuple[int, int], int] | None:
        """(reason, ifindex) -> packets dropped since attach; None while not counted (``drops_reason``)."""
        with self._lock:
            return kernel_drops.read_counts(self._drops) if self._drops is not None else None

    def read_aggregates(self) -> Aggregates:
        """Read the in-kernel maps; raises :class:`SourceError` when capture is not running."""
        with self._lock:
            if self._bpf is None:
                raise SourceError(self._not_running())
            return self._read_maps(self._bpf)

    # --- thread side ------------------------------------------------------------------------
    def run(self) -> None:
        try:
            view = self._setup()
            self.ready.set()
            poll = self._bpf.ring_buffer_poll if view.ringbuf else self._bpf.perf_buffer_poll
            while not self._stop_flag.is_set():
                poll(self.poll_timeout_ms)
                self._deliver_batch()
                if self.on_idle is not None:
                    self._deliver(self.on_idle, time.monotonic_ns())
        except OvstopError as exc:
            self.error = exc
        except Exception as exc:  # bcc raises bare Exception on attach/load failures
            self.error = SourceError(f"eBPF capture failed: {exc}")
        finally:
            self._teardown()
            self.ready.set()

    def _not_running(self) -> str:
        if self.error is not None:
            return str(self.error)
        return "eBPF capture is not running"

    def _setup(self) -> SystemView:
        """Compile, load and attach; returns what the system offered."""
        if self.view is None:
            self.view = probe_system()
        self.attached, self.missing = plan_hooks(self.view, self.deep)
        if not self.attached:
            reasons = sorted(set(self.missing.values()))
            raise SourceError(f"no eBPF hook can attach: {'; '.join(reasons)}")
        bcc = import_bcc()
        usdt_hooks = [h for h in self.attached if h.kind is Kind.USDT]
        contexts = []
        if usdt_hooks:
            ctx = bcc.USDT(pid=self.view.vswitchd_pid)
            for hook in usdt_hooks:
                ctx.enable_probe(probe=hook.target, fn_name=hook.fn)
            contexts.append(ctx)
            self._usdt_path = self.view.vswitchd_exe
        # First: the main program's fexit and USDT probes fire once it is loaded, and their events must be
        # read at once (the ring is opened right after the hooks attach), not after another compile.
        self._attach_drops(bcc, self.view)
        bpf = compile_program(
            {h.group for h in self.attached},
            ringbuf=self.view.ringbuf,
            ringbuf_pages=self.ringbuf_pages,
            usdt_contexts=contexts,
            defines={**self.view.layout.defines(), **fexit_defines(self.attached)},
        )
        with self._lock:
            self._bpf = bpf  # from here on _teardown() detaches whatever got attached
            self._stats_fd, self.stats_reason = enable_run_time_stats()
        settings = bpf[b"settings"]
        value = settings[ctypes.c_int(0)]
        value.sample_every = self.sample_every
        value.max_per_sec = self.max_events_per_sec
        settings[ctypes.c_int(0)] = value
        for hook in self.attached:
            self._attach(bpf, hook)
        if self.view.ringbuf:
            bpf[b"events"].open_ring_buffer(self._on_raw)
        else:
            bpf[b"events"].open_perf_buffer(self._on_raw, page_cnt=self.ringbuf_pages, lost_cb=self._on_lost)
        return self.view

    @staticmethod
    def _attach(bpf: Any, hook: Hook) -> None:
        if hook.kind is Kind.RAW_TRACEPOINT:
            bpf.attach_raw_tracepoint(tp=hook.target.encode(), fn_name=hook.fn.encode())
        elif hook.kind is Kind.KPROBE:
            bpf.attach_kprobe(event=hook.target.encode(), fn_name=hook.fn.encode())
        elif hook.kind is Kind.KRETPROBE:
            bpf.attach_kretprobe(event=hook.target.encode(), fn_name=hook.fn.encode(), maxactive=64)
        # USDT probes were attached by bcc when the program was built with their context, fexit programs
        # (kretfunc__*) when it was loaded.

    def _attach_drops(self, bcc: Any, view: SystemView) -> None:
        """bpf/drops.c on skb:kfree_skb when this kernel has OVS drop reasons; else ``drops_reason`` says why.
        Capture goes on without it either way."""
        self.drops_reason = drops_missing(view)
        if self.drops_reason or view.drop_layout is None:
            return
        try:
            drops = kernel_drops.compile_drops(bcc, view.drop_layout)
            with self._lock:
                self._drops = drops  # from here on _teardown() cleans it up
            drops.attach_raw_tracepoint(tp=kernel_drops.TRACEPOINT.encode(), fn_name=kernel_drops.FUNCTION.encode())
        except SourceError as exc:
            self.drops_reason = str(exc)
        except Exception as exc:  # bcc raises bare Exception on attach failures
            self.drops_reason = f"attaching skb:kfree_skb failed: {exc}"
        if self.drops_reason:
            self._detach_drops()

    def _detach_drops(self) -> None:
        with self._lock:
            drops, self._drops = self._drops, None
        if drops is not None:
            try:
                drops.cleanup()
            except Exception as exc:  # bcc raises bare Exception; the probe dies with our fds at exit anyway
                log.warning("detaching the kernel drops program failed: %s", exc)

    def _teardown(self) -> None:
        self._detach_drops()
        if not self.drops_reason:
            self.drops_reason = "capture stopped"
        with self._lock:
            bpf, self._bpf = self._bpf, None
            if self._stats_fd is not None:
                os.close(self._stats_fd)  # the kernel stops timing BPF programs (unless someone else asked)
                self._stats_fd = None
        if bpf is None:
            return
        try:
            bpf.cleanup()  # detaches kprobes, raw tracepoints and uprobes, frees the buffers
        except Exception as exc:  # bcc raises bare Exception; the probes die with our fds at exit anyway
            if self.error is None:
                self.error = SourceError(f"detaching eBPF probes failed: {exc}")

    def _on_raw(self, _ctx: Any, data: Any, size: int) -> int:
        self._batch.append(ctypes.string_at(data, size))
        return 0

    def _deliver_batch(self) -> None:
        if not self._batch:
            return
        records, self._batch = self._batch, []
        events, errors = decode_batch(records, self._usdt_path)
        self.decode_errors += errors
        self.events_seen += len(events)
        for event in events:
            self._deliver(self.on_event, event)

    def _deliver(self, sink: Callable[[_T], object], item: _T) -> None:
        try:
            sink(item)
        except Exception as exc:  # a delivery bug must not end capture; it is counted and shown
            if not self.delivery_errors:
                log.exception("eBPF event delivery failed")
            self.delivery_errors += 1
            self.delivery_error = describe(exc)

    def _on_lost(self, count: int) -> None:
        self.perf_lost += count

    def _counters(self) -> dict[str, int]:
        with self._lock:
            if self._bpf is None:
                return {}
            table = self._bpf[b"counters"]
            return {name: _percpu_sum(table[ctypes.c_int(i)]) for i, name in enumerate(COUNTERS)}

    def _read_maps(self, bpf: Any) -> Aggregates:
        groups = {h.group for h in self.attached}
        slots: dict[int, dict[int, int]] = {}
        if "upcall" in groups:
            for key, value in bpf[b"upcall_latency"].items():
                port_slots = slots.setdefault(key.in_port, {})
                port_slots[key.slot] = port_slots.get(key.slot, 0) + _percpu_sum(value)
            sums = {k.value: _percpu_sum(v) for k, v in bpf[b"upcall_latency_sum"].items()}
        else:
            sums = {}
        latency = {port: _histogram(s, sums.get(port, 0)) for port, s in sorted(slots.items())}
        all_slots: dict[int, int] = {}
        for s in slots.values():
            for slot, n in s.items():
                all_slots[slot] = all_slots.get(slot, 0) + n
        lookup: dict[str, int] = {}
        hits: dict[str, int] = {}
        misses: dict[tuple[int, int], int] = {}
        if "lookup" in groups:
            totals = bpf[b"lookup_totals"]
            lookup = {name: _percpu_sum(totals[ctypes.c_int(i)]) for i, name in enumerate(LOOKUP_TOTALS)}
            hits = {ufid_str(tuple(k.ufid)): int(v.value) for k, v in bpf[b"flow_hits"].items()}
            misses = {(k.in_port, k.skb_hash): int(v.value) for k, v in bpf[b"flow_misses"].items()}
        table = bpf[b"counters"]
        return Aggregates(
            latency=latency,
            latency_total=_histogram(all_slots, sum(sums.values())),
            lookup=lookup,
            flow_hits=hits,
            flow_misses=misses,
            counters={name: _percpu_sum(table[ctypes.c_int(i)]) for i, name in enumerate(COUNTERS)},
        )
