"""What the time scrub's kept snapshots cost, checked against tracemalloc, and how fast one is rebuilt.

Starts a sandbox switch with ``--ports`` dummy ports, adds ``--rounds`` real snapshots to a
:class:`~ovstop.timeline.Timeline` and compares its ``cost_bytes`` with what tracemalloc sees freed when the
timeline goes (the newest snapshot stays referenced, as the TUI's own). A small ``--history`` makes the
store start new history buffers within the run, so the old buffers the timeline keeps alive are in the
check. Then: the time ``timeline[i]`` takes to rebuild a snapshot, and the span the default cap allows at
one snapshot a second.

Run: ``.venv/bin/python benchmarks/timeline.py [--ports 1000] [--rounds 40] [--history 10]``.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from ovstop.runtime import Options, running
from ovstop.timeline import MAX_BYTES, Timeline


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ports", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--history", type=int, default=10, help="store history length (small: buffers renew)")
    args = p.parse_args()
    options = Options(sandbox=True, sandbox_ports=args.ports, traffic_pps=0.0, ebpf=False, history=args.history)
    with running(options) as rt:
        rt.first_sample()
        tracemalloc.start()
        for _ in range(2 * args.history + 1):  # every series moves to a history buffer made while traced
            rt.sampler.sample()
        timeline = Timeline(depth=3600, max_bytes=2**40)
        for _ in range(args.rounds):
            newest = rt.sampler.sample()
            timeline.add(newest)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        cost, kept, count = timeline.cost_bytes, len(timeline), len(newest.series)
        del timeline
        gc.collect()
        freed = held - tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        print(f"{args.ports} ports, {count} series, {kept} snapshots kept (store history {args.history})")
        print(f"  cost_bytes {cost:,} B, tracemalloc freed {freed:,} B ({(cost - freed) / freed:+.1%})")
        print(f"  per snapshot {cost / kept:,.0f} B, {cost / kept / count:.1f} B a series")
        print(f"  the default cap ({MAX_BYTES / 2**20:.0f} MiB) holds about {MAX_BYTES * kept / cost:,.0f} like these")

        originals = [rt.sampler.sample() for _ in range(3 * args.history)]  # through buffers renewed twice
        timeline = Timeline(depth=3600, max_bytes=2**40)
        for snap in originals:
            timeline.add(snap)
        took = []
        for i in range(len(originals) - 1):
            started = time.perf_counter()
            built = timeline[i]
            took.append(time.perf_counter() - started)
            assert built == originals[i] and built is not originals[i]
        print(f"  timeline[i] rebuilt equal to the original in {max(took) * 1000:.1f} ms (worst of {len(took)})")


if __name__ == "__main__":
    main()
