"""The in-guest half of benchmarks/guest_ebpf.py: eBPF capture cost and throughput on the kernel datapath.

Runs as root in the QEMU guest on the switch of tests/guest/kernel_switch.py, one UDP 5-tuple from ns1 to
ns2 (after its first packet, every packet is a datapath flow hit: one flow_lookup and one action_execute
event). It measures, with sampling and rate limiting off:

* datapath cost per packet: wall and CPU time of a fixed-count UDP blast from ns1 without capture, with
  ovstop's default probe set (upcall path only), with the deep set (per-packet hooks too), and after they are
  detached; plus the kernel's own per-program run time
  (``kernel.bpf_stats_enabled``: run_time_ns / run_cnt of each loaded BPF program);
* pipeline throughput: paced floods at rising rates, events delivered through ovstop's pipeline
  (decode + correlator + event store) against ring-buffer losses, the capture thread's CPU time per event
  and the part of it spent in the pipeline (the rest is bcc's ring-buffer poll and ctypes callback).

``send`` is the sender itself (run inside ns1 by this script). Prints human lines and one
``BENCH-RESULT {json}`` line for the host side.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "guest")]

from kernel_switch import kernel_switch, purge  # noqa: E402

from ovstop.ebpf.capture import CaptureThread  # noqa: E402
from ovstop.events.correlator import Correlator  # noqa: E402
from ovstop.events.pipeline import EventPipeline  # noqa: E402
from ovstop.events.schema import OvsEvent  # noqa: E402
from ovstop.events.store import EventStore  # noqa: E402

SRC_PORT = 30000
DST_PORT = 5000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def send(rate: float, count: int) -> None:
    """Send ``count`` 64-byte datagrams, paced at ``rate`` per second (0: as fast as possible)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("10.0.0.1", SRC_PORT))
    payload, dest = b"x" * 64, ("10.0.0.2", DST_PORT)
    cpu0, start = os.times(), time.monotonic()
    for sent in range(count):
        if rate and sent > rate * (time.monotonic() - start):
            time.sleep(max(0.0, sent / rate - (time.monotonic() - start)))
        sock.sendto(payload, dest)
    wall, cpu1 = time.monotonic() - start, os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(json.dumps({"sent": count, "wall": wall, "cpu": cpu}))


def run_sender(rate: float, count: int) -> dict[str, float]:
    argv = ["ip", "netns", "exec", "ns1", sys.executable, __file__, "send", "--rate", str(rate), "--count", str(count)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def blasts(count: int, rounds: int) -> dict[str, float]:
    """Median per-packet wall and CPU time (µs) of ``rounds`` unpaced blasts of ``count`` packets."""
    runs = [run_sender(0, count) for _ in range(rounds)]
    return {
        "wall_us_per_pkt": statistics.median(r["wall"] for r in runs) / count * 1e6,
        "cpu_us_per_pkt": statistics.median(r["cpu"] for r in runs) / count * 1e6,
        "pps": count / statistics.median(r["wall"] for r in runs),
    }


def thread_cpu(tid: int) -> float:
    """CPU seconds (user + system) of one thread of this process."""
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def bpf_prog_stats() -> dict[str, dict[str, int]]:
    """run_time_ns and run_cnt per BPF program this process holds (needs kernel.bpf_stats_enabled=1)."""
    stats: dict[str, dict[str, int]] = {}
    for info in Path("/proc/self/fdinfo").iterdir():
        try:
            fields = dict(line.split(":\t", 1) for line in info.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if "prog_id" in fields and "run_cnt" in fields:
            runs = {"run_time_ns": int(fields["run_time_ns"]), "run_cnt": int(fields["run_cnt"])}
            stats[fields["prog_id"].strip()] = runs
    return stats


def drain(capture: CaptureThread, quiet: float = 1.0, limit: float = 120.0) -> None:
    """Wait until the capture thread has taken every queued event (none for ``quiet`` seconds)."""
    end = time.monotonic() + limit
    last = -1
    while capture.events_seen != last and time.monotonic() < end:
        last = capture.events_seen
        time.sleep(quiet)


class PipelineTimer:
    """The event sink of the benchmark: ovstop's pipeline (correlator + store), timing only that part (the
    capture thread decodes each poll's records in one batch before handing them here)."""

    def __init__(self) -> None:
        self.pipeline = EventPipeline(Correlator(), EventStore())
        self.seconds = 0.0

    def __call__(self, event: OvsEvent) -> None:
        start = time.thread_time()
        self.pipeline(event)
        self.seconds += time.thread_time() - start


def flood_steps(capture: CaptureThread, timer: PipelineTimer, rates: list[int], seconds: float) -> list[dict[str, Any]]:
    """Paced floods; each step is timed from its start until the ring buffer is drained."""
    steps = []
    tid = capture.native_id
    assert tid is not None
    for rate in rates:
        drain(capture)
        seen0, lost0, cpu0, pipe0 = capture.events_seen, capture.events_lost, thread_cpu(tid), timer.seconds
        start = time.monotonic()
        sent = run_sender(rate, int(rate * seconds))
        drain(capture)
        wall = time.monotonic() - start
        seen, lost = capture.events_seen - seen0, capture.events_lost - lost0
        cpu = thread_cpu(tid) - cpu0
        step = {
            "rate": rate,
            "achieved_pps": sent["sent"] / sent["wall"],
            "events": seen,
            "lost": lost,
            "events_per_s": seen / sent["wall"],
            "capture_cpu_pct": 100 * cpu / wall,
            "capture_us_per_event": 1e6 * cpu / max(seen, 1),
            "pipeline_us_per_event": 1e6 * (timer.seconds - pipe0) / max(seen, 1),
        }
        print(f"flood {rate:>6} pps (achieved {step['achieved_pps']:.0f}): {seen} events, {lost} lost, "
              f"{step['events_per_s']:.0f} events/s; capture thread {step['capture_cpu_pct']:.1f}% CPU, "
              f"{step['capture_us_per_event']:.0f} µs/event ({step['pipeline_us_per_event']:.0f} in the pipeline)",
              flush=True)  # fmt: skip
        steps.append(step)
    return steps


def attach(timer: PipelineTimer, deep: bool) -> CaptureThread:
    capture = CaptureThread(timer, sample_every=1, max_events_per_sec=0, deep=deep)
    capture.start()
    if not capture.ready.wait(600) or capture.error is not None:
        raise SystemExit(f"capture failed: {capture.error}")
    return capture


def blasts_with(capture: CaptureThread, args: argparse.Namespace) -> dict[str, Any]:
    """The blasts with ``capture`` attached, with its thread's CPU and the kernel's BPF run time."""
    tid = capture.native_id
    assert tid is not None
    progs0 = bpf_prog_stats()
    cpu0, seen0 = thread_cpu(tid), capture.events_seen
    on = blasts(args.count, args.rounds)
    on["capture_cpu_s"] = thread_cpu(tid) - cpu0
    on["events"] = capture.events_seen - seen0
    progs1 = bpf_prog_stats()
    runs = sum(p["run_cnt"] - progs0.get(k, {}).get("run_cnt", 0) for k, p in progs1.items())
    ns = sum(p["run_time_ns"] - progs0.get(k, {}).get("run_time_ns", 0) for k, p in progs1.items())
    on["bpf_runs"] = runs
    on["bpf_ns_per_run"] = ns / runs if runs else 0.0
    on["bpf_ns_per_pkt"] = ns / (args.count * args.rounds)
    on["lost"] = capture.events_lost
    return on


def bench(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with kernel_switch():
        purge()
        run_sender(0, 10)  # install the datapath flow for the 5-tuple
        result["off_before"] = blasts(args.count, args.rounds)
        print(f"no capture: {result['off_before']}", flush=True)

        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
        timer = PipelineTimer()
        # The default probe set (upcall path only): established flows should not pay for it.
        capture = attach(timer, deep=False)
        try:
            result["on_default"] = blasts_with(capture, args)
            print(f"default probes attached: {result['on_default']}", flush=True)
        finally:
            capture.stop()
        # Deep capture (per-packet hooks): its cost, and the pipeline's throughput on its events.
        started = time.monotonic()
        capture = attach(timer, deep=True)
        result["attach_seconds"] = time.monotonic() - started
        print(f"deep capture attached in {result['attach_seconds']:.1f} s ({len(capture.attached)} hooks)", flush=True)
        try:
            result["on"] = blasts_with(capture, args)
            print(f"deep capture attached: {result['on']}", flush=True)
            result["flood"] = flood_steps(capture, timer, args.rates, args.seconds)
        finally:
            capture.stop()
        result["off_after"] = blasts(args.count, args.rounds)
        print(f"capture detached: {result['off_after']}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="in-guest eBPF capture benchmark (root, QEMU guest)")
    sub = parser.add_subparsers(dest="cmd")
    s = sub.add_parser("send")
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--count", type=int, required=True)
    parser.add_argument("--count", type=int, default=20000, help="packets per blast")
    parser.add_argument("--rounds", type=int, default=3, help="blasts per configuration (median)")
    parser.add_argument(
        "--rates",
        type=lambda t: [int(x) for x in t.split(",")],
        default=[100, 250, 500, 1000, 2000],
        help="flood steps, packets/s, comma-separated",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each flood step")
    args = parser.parse_args()
    if args.cmd == "send":
        send(args.rate, args.count)
        return 0
    print("BENCH-RESULT " + json.dumps(bench(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
