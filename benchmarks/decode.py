"""Host-side event decoding: raw ring-buffer records to events, on one thread, in batches as the capture
thread does after each poll (``ovstop.ebpf.decode.decode_batch``).

The records are SYNTHETIC but byte-exact: built with ``RawEvent``, the ctypes mirror of ``struct
ovstop_event`` that the verifier-loaded programs write (tests/test_ebpf_host.py checks both sides agree).
Two mixes: the default probe set (upcall, upcall_enqueue, upcall_return per upcalled packet) and the deep
one (plus a flow_lookup and an output action_execute per packet). The rate is events per second of the
thread's own CPU time (``time.thread_time``), so other load on a shared machine does not count against it;
wall-clock rates are printed beside it. The correlator + event store that follow decoding are timed apart.

Run: ``.venv/bin/python benchmarks/decode.py [--events 200000] [--batch 64]``.
"""

from __future__ import annotations

import argparse
import time

from ovstop.ebpf.decode import EVENT_TYPES, PROBE_TYPES, RawEvent, decode_batch
from ovstop.events.correlator import Correlator
from ovstop.events.pipeline import EventPipeline
from ovstop.events.store import EventStore

TARGET = 50_000


def record(kind: str, probe: str, n: int) -> bytes:
    ev = RawEvent()
    ev.type, ev.probe = EVENT_TYPES.index(kind), PROBE_TYPES.index(probe)
    ev.ts = 1_000_000_000 + n * 1000
    ev.upcall_ts, ev.cpu, ev.upcall_cpu = 1_000_000_000 + n * 1000, n % 4, n % 4
    ev.port, ev.pid, ev.tgid, ev.comm = 3, 100 + n % 8, 100, b"handler1"
    ev.queue_id, ev.cmd = n & 0xFFFFFFFF, 1
    ev.flow, ev.n_mask_hit = 0xFFFF888000000000 + n, 1
    ev.ufid[:] = [n, 0xAAAA0000, 0x5555, 0xAAAAAAAA]
    ev.action, ev.action_arg = 1, 2
    return bytes(ev)


MIXES = {
    "default (upcall path)": (
        ("upcall", "raw_tracepoint"),
        ("upcall_enqueue", "kretprobe"),
        ("upcall_return", "kretprobe"),
    ),
    "deep (+ flow_lookup, action_execute)": (
        ("upcall", "raw_tracepoint"),
        ("upcall_enqueue", "kretprobe"),
        ("upcall_return", "kretprobe"),
        ("flow_lookup", "kretprobe"),
        ("action_execute", "raw_tracepoint"),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    for name, mix in MIXES.items():
        records = [record(*mix[n % len(mix)], n // len(mix)) for n in range(args.events)]
        batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
        cpu, wall = time.thread_time(), time.perf_counter()
        events = []
        for batch in batches:
            decoded, errors = decode_batch(batch)
            assert not errors
            events += decoded
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        pipeline = EventPipeline(Correlator(), EventStore())
        pcpu = time.thread_time()
        for event in events:
            pipeline(event)
        pcpu = time.thread_time() - pcpu
        rate = len(events) / cpu
        print(
            f"{name}: decoded {len(events)} events in batches of {args.batch}: {rate:,.0f}/s of thread CPU "
            f"({len(events) / wall:,.0f}/s wall), {rate / TARGET:.2f}x the 50k/s target; "
            f"correlator + store after it: {len(events) / pcpu:,.0f}/s"
        )


if __name__ == "__main__":
    main()
